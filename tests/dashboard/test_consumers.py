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
from tests.conftest import private_channel_prefix
from tests.executions.conftest import Driver, simple_pipeline

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


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


# --- who may listen ---------------------------------------------------------------


def test_a_stranger_an_outsider_and_another_origin_are_refused(client, viewer, outsider):
    pipeline = simple_pipeline("web")
    viewer_cookie = session_cookie(client, viewer)
    from django.test import Client

    outsider_cookie = session_cookie(Client(), outsider)

    async def attempt(path, cookie, origin=b"http://testserver"):
        comm = communicator(path, cookie, origin)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    path = f"/ws/pipelines/{pipeline.name}/"
    assert async_to_sync(attempt)(path, viewer_cookie) is True
    assert async_to_sync(attempt)(path, None) is False
    assert async_to_sync(attempt)(path, outsider_cookie) is False
    assert async_to_sync(attempt)(path, viewer_cookie, b"http://evil.example") is False
    assert async_to_sync(attempt)("/ws/pipelines/no-such-pipeline/", viewer_cookie) is False


# --- resuming and cross-process ------------------------------------------------------


def test_a_reconnecting_browser_gets_everything_after_the_last_sequence_it_saw(
        client, viewer, driver):
    pipeline = simple_pipeline("web")
    cookie = session_cookie(client, viewer)
    from executions.models import ExecutionEvent

    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    seen = ExecutionEvent.objects.filter(pipeline=pipeline).order_by("id").last().id
    driver.run()  # what happened while the browser was away
    missed = list(ExecutionEvent.objects.filter(pipeline=pipeline, id__gt=seen)
                  .order_by("id").values_list("id", flat=True))
    assert len(missed) >= 6

    async def reconnect():
        comm = communicator(f"/ws/executions/{ex.execution_id}/?after={seen}", cookie)
        assert (await comm.connect())[0]
        await comm.receive_json_from()  # hello
        events = await collect(comm, lambda ev: ev and ev[-1]["seq"] >= missed[-1])
        await comm.disconnect()
        return events

    events = async_to_sync(reconnect)()
    assert [e["seq"] for e in events] == missed
    assert events[-1]["kind"] == "PipelineExecution" and events[-1]["status"] == "Succeeded"
    assert all(e["pipelineExecutionId"] == str(ex.execution_id) for e in events)


def test_an_event_committed_by_another_process_arrives_through_the_tailer(client, viewer):
    """No doorbell rings in this process: the embedded tailer must notice the row."""
    from channels.db import database_sync_to_async

    from executions.models import ExecutionEvent

    pipeline = simple_pipeline("web")
    cookie = session_cookie(client, viewer)

    def other_process_commits():
        # What a worker process does: append the row and commit. Its doorbell
        # (the in-memory layer) cannot reach this process, so none is rung here.
        return ExecutionEvent.objects.create(pipeline=pipeline, kind="Transition",
                                             stage_name="Build", status="Disabled",
                                             previous_status="Enabled", summary="freeze").id

    async def scenario():
        comm = communicator(f"/ws/pipelines/{pipeline.name}/", cookie)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        seq = await database_sync_to_async(other_process_commits)()
        events = await collect(comm, lambda ev: bool(ev), timeout=3)
        await comm.disconnect()
        return seq, events

    seq, events = async_to_sync(scenario)()
    assert [e["seq"] for e in events] == [seq]
    assert events[0]["kind"] == "Transition" and events[0]["summary"] == "freeze"


def test_the_pipelines_page_gets_an_event_committed_after_a_higher_sequence(client, viewer):
    """On PostgreSQL two pipelines' transactions may commit out of sequence order:
    174 after 177. The row with the lower sequence is written here after the
    higher one, as that late commit makes it appear, and must still arrive."""
    from channels.db import database_sync_to_async

    from dashboard import live
    from executions.models import ExecutionEvent

    first, second = simple_pipeline("web"), simple_pipeline("api")
    cookie = session_cookie(client, viewer)
    base = live.last_sequence() + 1

    def commit(pipeline, seq, summary):
        # bulk_create: an explicit sequence number (save() refuses a set id: append-only).
        ExecutionEvent.objects.bulk_create([ExecutionEvent(
            id=seq, pipeline=pipeline, kind="Transition", stage_name="Build",
            status="Disabled", previous_status="Enabled", summary=summary)])
        live.ring(pipeline_id=pipeline.pk)

    async def scenario():
        comm = communicator("/ws/pipelines/", cookie)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        await database_sync_to_async(commit)(second, base + 3, "later sequence, first commit")
        early = await collect(comm, lambda ev: bool(ev), timeout=3)
        await database_sync_to_async(commit)(first, base, "earlier sequence, late commit")
        late = await collect(comm, lambda ev: bool(ev), timeout=3)
        await comm.disconnect()
        return early, late

    early, late = async_to_sync(scenario)()
    assert [(e["seq"], e["pipelineName"]) for e in early] == [(base + 3, "api")]
    assert [(e["seq"], e["pipelineName"]) for e in late] == [(base, "web")]


def test_a_far_behind_browser_is_told_to_resync_instead_of_replaying(client, viewer, settings):
    from dashboard import live
    from executions.models import ExecutionEvent

    pipeline = simple_pipeline("web")
    cookie = session_cookie(client, viewer)
    ExecutionEvent.objects.bulk_create([
        ExecutionEvent(pipeline=pipeline, kind="Transition", stage_name="Build",
                       status="Enabled") for _ in range(live.MAX_REPLAY + 5)])

    async def scenario():
        comm = communicator(f"/ws/pipelines/{pipeline.name}/?after=0", cookie)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        message = await comm.receive_json_from(timeout=3)
        await comm.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["type"] == "resync"
    assert message["last"] == ExecutionEvent.objects.order_by("-id").first().id


# --- logs ------------------------------------------------------------------------------


def test_the_log_of_a_running_action_streams_line_by_line(client, viewer, settings):
    from channels.db import database_sync_to_async

    from executions import services, tasks
    from executions.models import ActionExecution
    from runners.base import LogWriter

    pipeline = simple_pipeline("web")

    pending: list[int] = []
    original = tasks.enqueue
    tasks.enqueue = pending.append
    try:
        ex = services.execution_start(pipeline=pipeline)
    finally:
        tasks.enqueue = original
    ae = ActionExecution.objects.get(execution=ex, stage_name="Source")
    log_path = f"web/{ex.execution_id}/{ae.action_execution_id}.log"
    ActionExecution.objects.filter(pk=ae.pk).update(log_path=log_path)
    writer = LogWriter(settings.LOG_ROOT / log_path)
    writer.line("line 1")
    cookie = session_cookie(client, viewer)

    async def scenario():
        comm = communicator(f"/ws/executions/{ex.execution_id}/", cookie)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        await comm.send_json_to({"log": str(ae.action_execution_id), "offset": 0})
        texts = []

        async def next_log():
            while True:
                m = await comm.receive_json_from(timeout=3)
                if m["type"] == "log":
                    return m

        texts.append((await next_log())["text"])
        for n in (2, 3):
            writer.line(f"line {n}")
            texts.append((await next_log())["text"])
        writer.close()
        await database_sync_to_async(ActionExecution.objects.filter(pk=ae.pk).update)(
            status="Succeeded")
        final = await next_log()
        await comm.disconnect()
        return texts, final

    texts, final = async_to_sync(scenario)()
    assert [t.split(" ", 1)[1] for t in texts] == ["line 1\n", "line 2\n", "line 3\n"]
    assert final["ended"] is True


def test_read_log_never_cuts_a_line_while_the_action_runs(settings, tmp_path):
    from dashboard.consumers import read_log

    path = settings.LOG_ROOT / "a.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("one\ntwo é".encode())
    assert read_log("a.log", 0) == ("one\n", 4, True)
    assert read_log("a.log", 4, final=True) == ("two é", len("one\ntwo é".encode()), True)


# --- Redis: the doorbell across processes, and an idle socket that survives ------------


def _redis_available(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:
        return False


REDIS_TEST_URL = "redis://127.0.0.1:6379/9"
IDLE = 7


@pytest.fixture
def redis_layer(settings):
    import os

    url = os.environ.get("REDIS_URL") or REDIS_TEST_URL
    if not _redis_available(url):
        pytest.skip(f"no Redis at {url}")
    if not os.environ.get("REDIS_URL"):
        # The project's configuration for REDIS_URL (config/settings.py), on db 9.
        # With this test process's own key prefix (tests/conftest.py): the doorbell
        # group is shared by every process on that Redis database.
        settings.CHANNEL_LAYERS = {"default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": url, "socket_timeout": None}],
                       "prefix": private_channel_prefix()}}}
    # The safety-net tailer must not be what delivers here.
    settings.CONVEYOR_LIVE_SAFETY_SECONDS = 60
    from dashboard import live

    live._the_sender = None
    yield url
    live._the_sender = None


def test_an_idle_websocket_survives_more_than_6_seconds_on_redis_and_hears_the_doorbell(
        client, viewer, redis_layer):
    """channels-redis with redis-py 8 dropped idle connections after ~5 s (STACK.md)."""
    import time

    from channels.db import database_sync_to_async

    from dashboard import live
    from executions.models import ExecutionEvent

    pipeline = simple_pipeline("web")
    cookie = session_cookie(client, viewer)

    def worker_commits_and_rings():
        # A worker elsewhere: the row, then the doorbell through channels-redis only
        # (live.ring would also wake this process's hub directly).
        seq = ExecutionEvent.objects.create(pipeline=pipeline, kind="Transition",
                                            stage_name="Build", status="Disabled").id
        live._sender().send_and_wait({"type": "events.ring", "pipeline": pipeline.pk,
                                      "executions": [], "last": seq})
        return seq, time.monotonic()

    async def scenario():
        comm = communicator(f"/ws/pipelines/{pipeline.name}/", cookie)
        assert (await comm.connect())[0]
        await comm.receive_json_from()
        await asyncio.sleep(IDLE)  # idle past redis-py's old 5 s socket timeout
        seq, sent = await database_sync_to_async(worker_commits_and_rings)()
        events = await collect(comm, lambda ev: bool(ev), timeout=3)
        received = time.monotonic()
        await comm.disconnect()
        return seq, events, received - sent

    seq, events, latency = async_to_sync(scenario)()
    assert [e["seq"] for e in events] == [seq]
    assert latency < 1.0  # the doorbell, not the 60 s safety net
