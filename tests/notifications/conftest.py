"""Notification fixtures: the engine's driver, and the notification queue run by hand."""

import pytest

from notifications import queue as queued_tasks
from notifications import services, tasks
from tests.executions.conftest import _quiet_heartbeat, driver  # noqa: F401
from tests.runners.receiver import start_receiver


class NotifyQueue:
    """Stands in for django-q2: records the tasks and retries, runs them on ``run()``."""

    def __init__(self, capture):
        self.capture = capture
        self.queued: list[tuple[str, tuple]] = []
        self.retries: list[tuple[int, object]] = []

    def run(self) -> None:
        while self.queued:
            name, args = self.queued.pop(0)
            with self.capture(execute=True):  # a scan queues its deliveries on commit
                getattr(tasks, name)(*args)


@pytest.fixture
def notify(monkeypatch, settings, django_capture_on_commit_callbacks):
    queue = NotifyQueue(django_capture_on_commit_callbacks)
    monkeypatch.setattr(queued_tasks, "enqueue",
                        lambda name, *args: queue.queued.append((name, args)))
    monkeypatch.setattr(queued_tasks, "retry_at", lambda pk, when: queue.retries.append((pk, when)))
    services._rules_cache.clear()
    settings.CONVEYOR_BASE_URL = "https://conveyor.example.com"
    yield queue
    services._rules_cache.clear()


@pytest.fixture
def receiver():
    """A local HTTP server standing in for a webhook or Slack target."""
    r, server = start_receiver()
    r.answer = (200, {"ok": True}, {})
    yield r
    server.shutdown()
