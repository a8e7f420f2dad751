"""The live websockets: authentication, permission, origin, events, resume, logs.

The consumers run in-process through ``channels.testing.WebsocketCommunicator``
against the real ASGI application (origin validator and session auth included);
the engine is driven directly, as in the execution tests, with the queue held.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from config.asgi import application
from tests.executions.conftest import Driver, simple_pipeline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def driver(monkeypatch, django_capture_on_commit_callbacks, transactional_db):
    from executions import tasks

    d = Driver(django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks, "enqueue", d.pending.append)
    return d


@pytest.fixture(autouse=True)
def _fast_tail(settings):
    settings.CONVEYOR_LIVE_TAIL_SECONDS = 0.01
    settings.CONVEYOR_HEARTBEAT_SECONDS = 3600


def session_cookie(client, user: User) -> bytes:
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def communicator(path: str, cookie: bytes | None = None, origin: bytes = b"http://testserver"):
    headers = [(b"origin", origin), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


async def collect(comm, until, timeout=5.0) -> list[dict]:
    """Receive events until ``until(events)`` is true."""
    events: list[dict] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not until(events):
        message = await comm.receive_json_from(timeout=max(0.01, deadline - loop.time()))
        if message["type"] == "events":
            events.extend(message["events"])
    return events


def statuses(events, kind="StageExecution"):
    return [(e["stageName"], e["status"]) for e in events if e["kind"] == kind]


def test_a_viewer_sees_every_stage_of_a_release_succeed_as_it_happens(client, viewer, driver):
    pipeline = simple_pipeline("web")
    cookie = session_cookie(client, viewer)

    async def scenario():
        comm = communicator(f"/ws/pipelines/{pipeline.name}/", cookie)
        connected, _ = await comm.connect()
        assert connected
        hello = await comm.receive_json_from()
        assert hello["type"] == "hello"
        from channels.db import database_sync_to_async

        def release():
            driver.start(pipeline)
            driver.run()

        await database_sync_to_async(release)()
        events = await collect(comm, lambda ev: ("Deploy", "Succeeded") in statuses(ev))
        await comm.disconnect()
        return events

    events = async_to_sync(scenario)()
    assert statuses(events) == [("Source", "InProgress"), ("Source", "Succeeded"),
                                ("Build", "InProgress"), ("Build", "Succeeded"),
                                ("Deploy", "InProgress"), ("Deploy", "Succeeded")]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
