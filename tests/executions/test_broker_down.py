"""The broker (Redis) is down when the engine queues an action.

The broker is the edge of the world here: ``django_q.tasks.async_task`` is
replaced by one raising the error redis-py raises for a refused connection
(the drill in docs/reliability.md stops a real Redis for the same case).
"""

import pytest
import redis
from django.utils import timezone

from executions import engine, services
from executions.models import ActionExecution
from tests.executions.conftest import simple_pipeline


@pytest.fixture
def broker(monkeypatch):
    state = {"down": True, "queued": []}

    def async_task(func, *args, **kwargs):
        if state["down"]:
            raise redis.ConnectionError(
                "Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        state["queued"].append(args[0])

    import django_q.tasks

    monkeypatch.setattr(django_q.tasks, "async_task", async_task)
    return state


def test_a_start_while_the_broker_is_down_succeeds_and_the_next_sweep_queues_it(
        db, broker, django_capture_on_commit_callbacks):
    pipeline = simple_pipeline()
    with django_capture_on_commit_callbacks(execute=True):
        ex = services.execution_start(pipeline=pipeline)     # no exception for the caller
    ex.refresh_from_db()
    action = ActionExecution.objects.get(execution=ex)
    assert (ex.status, action.status, action.worker) == ("InProgress", "InProgress", "")
    assert action.lease_expires_at <= timezone.now()        # due at the next sweep
    broker["down"] = False
    with django_capture_on_commit_callbacks(execute=True):
        report = engine.sweep()
    assert report.redispatched == 1 and report.lost == 0
    assert broker["queued"] == [action.pk]
    assert ActionExecution.objects.get(pk=action.pk).lease_expires_at > timezone.now()


def test_a_sweep_while_the_broker_is_still_down_leaves_the_action_due(
        db, broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ex = services.execution_start(pipeline=simple_pipeline())
    with django_capture_on_commit_callbacks(execute=True):
        assert engine.sweep().redispatched == 1          # tried, and failed again
    action = ActionExecution.objects.get(execution=ex)
    assert action.lease_expires_at <= timezone.now() and action.worker == ""
    assert broker["queued"] == []
