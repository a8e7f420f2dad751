"""Websockets: a foreign Origin is refused on every websocket route (walked from
``config.routing``), as is a connection without an Origin or without a session; the
same origin with a session connects (the positive control)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from config.asgi import application
from config.routing import websocket_urlpatterns
from tests.executions.conftest import simple_pipeline

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def ws_paths(execution_id: str) -> list[str]:
    samples = {"name": "web", "execution_id": execution_id}
    paths = []
    for pattern in websocket_urlpatterns:
        route = str(pattern.pattern)
        for key, value in samples.items():
            route = route.replace(f"<str:{key}>", value)
        assert "<" not in route, f"no sample value for {pattern.pattern}"
        paths.append("/" + route)
    return paths


async def _connects(path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=5)
    if connected:
        await comm.disconnect()
    return connected


def test_only_the_same_origin_with_a_session_connects(client, viewer, monkeypatch,
                                                     django_capture_on_commit_callbacks):
    from executions import services, tasks

    monkeypatch.setattr(tasks, "enqueue", lambda pk: None)    # the queue: held
    pipeline = simple_pipeline("web")
    with django_capture_on_commit_callbacks(execute=True):
        execution = services.execution_start(pipeline=pipeline)
    client.force_login(viewer)
    cookie = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    host = (b"host", b"testserver")
    paths = ws_paths(str(execution.execution_id))
    assert len(paths) == len(websocket_urlpatterns) == 3
    for path in paths:
        assert async_to_sync(_connects)(path, [(b"origin", b"http://testserver"), host,
                                               cookie]), path
        for origin in (b"https://evil.example.com", b"http://testserver.evil.example.com",
                       b"null"):
            assert not async_to_sync(_connects)(path, [(b"origin", origin), host, cookie]), \
                (path, origin)
        assert not async_to_sync(_connects)(path, [host, cookie]), (path, "no origin")
        assert not async_to_sync(_connects)(path, [(b"origin", b"http://testserver"), host]), \
            (path, "anonymous")
