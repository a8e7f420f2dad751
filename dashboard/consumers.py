"""Websocket consumers of the live dashboard.

``/ws/pipelines/`` (every pipeline), ``/ws/pipelines/{name}/`` and
``/ws/executions/{id}/`` push the ExecutionEvents of what they watch, in
sequence order, as ``{"type": "events", "events": [...], "last": SEQ}``. A
browser that reconnects passes ``?after=SEQ`` (the last sequence it saw) and
first receives everything after it; one that was away too long receives
``{"type": "resync"}`` and reloads the affected parts instead.

On an execution socket the browser may also follow one action's log:
``{"log": "<actionExecutionId>", "offset": N}`` starts ``{"type": "log",
"offset": N, "text": ...}`` messages from byte ``N`` of the log until the
action has ended and its log is read to the end.

Only a signed-in user holding a role on some pipeline group may connect (the
origin is checked by ``AllowedHostsOriginValidator`` in ``config.asgi``); a socket
for a pipeline or an execution one may not view is refused like an unknown one
(4403), and the all-pipelines socket sends only the events of pipelines one may
view (``teams.access``, read when the socket opens). Consumers hold
no rules: they read events and logs; the hub (``dashboard.live``) tells them
when to read.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from dashboard import live
from teams.access import group_allows, holds_any_role, pipeline_allows, visible_group_ids
from teams.choices import Act

LOG_POLL_SECONDS = 0.15
LOG_CHUNK = 64 * 1024


class _LiveConsumer(AsyncJsonWebsocketConsumer):
    """Common part: authenticate, resolve what is watched, subscribe to the hub."""

    key: tuple = live.ALL
    last: int = 0

    async def connect(self) -> None:
        self.hub = None
        self.log_task: asyncio.Task | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        allowed = await database_sync_to_async(holds_any_role)(user)
        key = await database_sync_to_async(self.resolve)() if allowed else None
        if key is None:
            # Unknown and forbidden look alike: nothing to learn by probing names.
            await self.close(code=4403)
            return
        self.key = key
        after = self.after()
        if after is None:
            after = await database_sync_to_async(live.last_sequence)(key)
        self.last = after
        await self.accept()
        await self.send_json({"type": "hello", "last": self.last})
        self.hub = live.hub()
        self.hub.subscribe(self)

    def after(self) -> int | None:
        from urllib.parse import parse_qs

        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            return max(0, int(query["after"][0]))
        except (KeyError, ValueError, IndexError):
            return None

    def resolve(self) -> tuple | None:
        return live.ALL

    async def disconnect(self, code) -> None:
        if self.hub is not None:
            self.hub.unsubscribe(self)
            self.hub = None
        if self.log_task is not None:
            self.log_task.cancel()

    async def deliver(self, rows: list[dict], *, resync: bool = False,
                      text: str | None = None) -> None:
        """Called by the hub: ``text`` is the message already encoded for ``rows``."""
        if resync:
            await self.send_json({"type": "resync", "last": self.last})
            return
        if text is None:
            text = json.dumps({"type": "events", "last": self.last,
                               "events": [live.event_json(r) for r in rows]})
        await self.send(text_data=text)

    async def receive_json(self, content, **kwargs) -> None:
        """Browsers only talk to follow a log (execution sockets)."""


class PipelinesConsumer(_LiveConsumer):
    """``/ws/pipelines/``: the events of every pipeline one may view (the Pipelines page)."""

    visible_groups: set[int] | None = None   # (``groups`` is Channels' own attribute)

    def resolve(self) -> tuple | None:
        # None: every group (an administrator); else the ids of the visible groups.
        self.visible_groups = visible_group_ids(self.scope["user"])
        return live.ALL

    async def deliver(self, rows: list[dict], *, resync: bool = False,
                      text: str | None = None) -> None:
        if self.visible_groups is not None and not resync:
            mine = [r for r in rows if r["pipeline__group_id"] in self.visible_groups]
            if not mine:
                return
            if len(mine) != len(rows):
                rows, text = mine, None     # the shared text holds others' events
        await super().deliver(rows, resync=resync, text=text)


class PipelineConsumer(_LiveConsumer):
    """``/ws/pipelines/{name}/``: the events of one pipeline."""

    def resolve(self) -> tuple | None:
        from pipelines.models import Pipeline

        name = self.scope["url_route"]["kwargs"]["name"]
        pipeline = Pipeline.objects.filter(name=name).only("pk", "group_id").first()
        if pipeline is None or not pipeline_allows(self.scope["user"], pipeline, Act.VIEW):
            return None
        return live.pipeline_key(pipeline.pk)


class ExecutionConsumer(_LiveConsumer):
    """``/ws/executions/{id}/``: the events of one execution, and one action's log."""

    def resolve(self) -> tuple | None:
        from executions.models import PipelineExecution

        try:
            execution_id = uuid.UUID(str(self.scope["url_route"]["kwargs"]["execution_id"]))
        except ValueError:
            return None
        row = PipelineExecution.objects.filter(execution_id=execution_id).values_list(
            "pk", "pipeline__group_id").first()
        if row is None or not group_allows(self.scope["user"], row[1], Act.VIEW):
            return None
        return live.execution_key(row[0])

    async def receive_json(self, content, **kwargs) -> None:
        if not isinstance(content, dict) or "log" not in content:
            return
        try:
            action_execution_id = uuid.UUID(str(content["log"]))
            offset = max(0, int(content.get("offset") or 0))
        except (TypeError, ValueError):
            return
        found = await database_sync_to_async(self._action)(action_execution_id)
        if found is None:
            await self.send_json({"type": "error", "detail": "No such action execution here."})
            return
        if self.log_task is not None:
            self.log_task.cancel()
        self.log_task = asyncio.create_task(self._follow(found, action_execution_id, offset))

    def _action(self, action_execution_id: uuid.UUID) -> int | None:
        from executions.models import ActionExecution

        return ActionExecution.objects.filter(
            action_execution_id=action_execution_id, execution_id=self.key[1],
        ).values_list("pk", flat=True).first()

    async def _follow(self, pk: int, action_execution_id: uuid.UUID, offset: int) -> None:
        """Send the log from ``offset`` as it grows, until the action ended and all is sent."""
        from executions.models import ActionExecution

        def state() -> tuple[str, bool]:
            row = ActionExecution.objects.filter(pk=pk).values_list(
                "log_path", "status").first()
            if row is None:
                return "", True
            return row[0], row[1] in ("Succeeded", "Failed", "Abandoned")

        checked = 0.0
        path, ended = "", False
        while True:
            now = asyncio.get_running_loop().time()
            if now - checked > 0.5 or not path:
                path, ended = await database_sync_to_async(state)()
                checked = now
            text, offset, complete = (read_log(path, offset, final=ended)
                                      if path else ("", offset, ended))
            if text:
                await self.send_json({"type": "log", "action": str(action_execution_id),
                                      "offset": offset, "text": text})
            if ended and complete:
                await self.send_json({"type": "log", "action": str(action_execution_id),
                                      "offset": offset, "text": "", "ended": True})
                return
            if not text:
                await asyncio.sleep(LOG_POLL_SECONDS)


def read_log(log_path: str, offset: int, *, final: bool = False,
             limit: int = LOG_CHUNK) -> tuple[str, int, bool]:
    """Log text from byte ``offset``, each line with its timestamp (``runners.logfile``):
    (text, next offset, reached the end).

    Only whole lines are returned while the action runs (``final`` False), so a
    multi-byte character or a line is never cut in two between messages.
    """
    if not log_path:
        return "", offset, True
    from runners import logfile

    try:
        piece = logfile.read(Path(settings.LOG_ROOT) / log_path, offset, limit, final=final)
    except logfile.OffsetBeyondEnd:
        return "", offset, True
    return piece.text, piece.next_offset, piece.at_end
