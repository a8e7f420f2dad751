"""The live dashboard's doorbell, and the hub that fans it out inside a web process.

Events are rows (``ExecutionEvent``): the database is the source of truth and
the channel layer only rings a doorbell (README, Architecture).

- **Ringing.** The engine sends ``signals.events_appended`` once the transaction
  that appended events has committed; ``ring`` (connected in ``apps.ready``)
  wakes the hubs of this process at once and, when the channel layer crosses
  processes (channels-redis, ``REDIS_URL``), sends one group message that every
  web process's hub hears. It goes through one sender thread with its own
  long-lived event loop: ``async_to_sync(layer.group_send)`` from a worker
  creates and closes a loop per call, and channels-redis then fails with
  "Event loop is closed" (STACK.md).
- **Tailing.** The in-memory channel layer does not cross processes, so in the
  embedded default the hub notices new rows itself: one tailer task per process
  (started by the first subscriber, stopped with the last) reads the event ids
  above the last one it saw every ``CONVEYOR_LIVE_TAIL_SECONDS`` (30 ms). With
  Redis it still runs, once a second, as a safety net for a dropped doorbell
  (channels-redis drops messages over capacity silently).
- **Fanning out.** Subscribers (websocket consumers) register under a key —
  a pipeline, an execution, or every pipeline. When a key is rung the hub reads
  the events after the lowest sequence its subscribers have sent, once for all
  of them, and hands each subscriber the rows after its own last sequence.
  A subscriber registers *before* its first read, so no event slips between
  "caught up" and "listening".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings

from config.loops import of_running_loop

logger = logging.getLogger("conveyor.live")

GROUP = "conveyor.events"
ALL = ("all",)
# A subscriber further behind than this gets "resync" (reload everything) rather
# than a replay of every event it missed.
MAX_REPLAY = 500
# Sequence numbers below the tailer's watermark that have not appeared yet: on
# PostgreSQL two pipelines' transactions may commit out of id order, so a hole
# is looked at again for this long (a rolled-back insert leaves one forever).
GAP_SECONDS = 10.0


def tail_seconds() -> float:
    if cross_process_layer():
        return float(getattr(settings, "CONVEYOR_LIVE_SAFETY_SECONDS", 1.0))
    return float(getattr(settings, "CONVEYOR_LIVE_TAIL_SECONDS", 0.03))


def cross_process_layer() -> bool:
    """True when the channel layer reaches other processes (channels-redis)."""
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(backend) and not backend.endswith("InMemoryChannelLayer")


def pipeline_key(pipeline_id: int) -> tuple:
    return ("pipeline", pipeline_id)


def execution_key(execution_pk: int) -> tuple:
    return ("execution", execution_pk)


# --- ringing ------------------------------------------------------------------------


def ring(*, pipeline_id: int, execution_ids: Iterable[int] = (), last_event_id: int = 0,
         **_: Any) -> None:
    """Events of a pipeline were committed: wake the hubs here and, across processes, there."""
    executions = sorted({e for e in execution_ids if e})
    for hub in list(_hubs.values()):
        hub.ring_threadsafe(pipeline_id, executions)
    if cross_process_layer():
        _sender().send({"type": "events.ring", "pipeline": pipeline_id,
                        "executions": executions, "last": last_event_id})


def _on_events_appended(sender, *, pipeline_id, execution_ids=(), last_event_id=0, **kwargs):
    try:
        ring(pipeline_id=pipeline_id, execution_ids=execution_ids, last_event_id=last_event_id)
    except Exception:  # the doorbell must never break the engine's caller
        logger.exception("ringing the live doorbell failed")


def connect() -> None:
    """Connect ``ring`` to the engine's ``events_appended`` signal (``apps.ready``)."""
    from executions import signals

    signals.events_appended.connect(_on_events_appended, dispatch_uid="conveyor.live.ring")


class _Sender:
    """The one way this process sends to the channel layer from sync code.

    A daemon thread owns one event loop for the life of the process and one
    channel layer instance bound to it; ``send`` hands it a message without
    waiting (the worker must not pay a round trip to Redis per status change).
    """

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="conveyor-live-sender",
                                       daemon=True)
        self.thread.start()
        self.ready.wait(5)
        from channels.layers import channel_layers

        # Its own instance: a layer made in a parent process before a fork (the
        # django-q2 cluster forks its workers) holds connections of another loop.
        self.layer = channel_layers.make_backend("default")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self.ready.set)
        self.loop.run_forever()

    def send(self, message: dict) -> None:
        future = asyncio.run_coroutine_threadsafe(self.layer.group_send(GROUP, message),
                                                  self.loop)
        future.add_done_callback(_log_failure)

    def send_and_wait(self, message: dict, timeout: float = 5.0) -> None:
        asyncio.run_coroutine_threadsafe(self.layer.group_send(GROUP, message),
                                         self.loop).result(timeout)


def _log_failure(future) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("the live doorbell could not be sent: %s", future.exception())


_sender_lock = threading.Lock()
_the_sender: _Sender | None = None


def _sender() -> _Sender:
    global _the_sender
    with _sender_lock:
        if _the_sender is None or _the_sender.pid != os.getpid():
            _the_sender = _Sender()
        return _the_sender


# --- reading events -------------------------------------------------------------------

EVENT_FIELDS = ("id", "kind", "stage_name", "action_name", "status", "previous_status",
                "summary", "created_at", "execution_id", "execution__execution_id",
                "execution__number", "pipeline__name", "action_execution_id", "data",
                "pipeline__group_id")


def event_json(row: dict) -> dict:
    """An ExecutionEvent as the browser receives it (no database ids but the sequence)."""
    return {
        "seq": row["id"],
        "kind": row["kind"],
        "pipelineName": row["pipeline__name"],
        "pipelineExecutionId": str(row["execution__execution_id"])
        if row["execution__execution_id"] else None,
        "executionNumber": row["execution__number"],
        # An inbound wait is an execution's event about a stage: name the stage.
        "stageName": row["stage_name"] or (row["data"] or {}).get("stageName", ""),
        "actionName": row["action_name"],
        "status": row["status"],
        "previousStatus": row["previous_status"],
        "summary": row["summary"],
        "time": row["created_at"].isoformat() if row["created_at"] else None,
        # A condition's or a rule's status change: what it is about (conditions.records).
        **({"condition": row["data"] or {}} if row["kind"] == "condition" else {}),
    }


def _filter(key: tuple) -> dict:
    if key[0] == "pipeline":
        return {"pipeline_id": key[1]}
    if key[0] == "execution":
        return {"execution_id": key[1]}
    return {}


def read_events(key: tuple, after: int, limit: int = MAX_REPLAY + 1,
                also: Iterable[int] = ()) -> list[dict]:
    """The events of a key after a sequence number (and those of ``also``, sequence
    numbers below it not seen yet), oldest first (raw rows)."""
    from django.db.models import Q

    from executions.models import ExecutionEvent

    condition = Q(id__gt=after)
    also = list(also)
    if also:
        condition |= Q(id__in=also)
    return list(ExecutionEvent.objects.filter(condition, **_filter(key))
                .order_by("id").values(*EVENT_FIELDS)[:limit])


def last_sequence(key: tuple = ALL) -> int:
    """The highest sequence number of a key (0 when it has none)."""
    from executions.models import ExecutionEvent

    return (ExecutionEvent.objects.filter(**_filter(key)).order_by("-id")
            .values_list("id", flat=True).first()) or 0


# --- the hub -----------------------------------------------------------------------------


class Subscriber(Protocol):
    key: tuple
    last: int

    async def deliver(self, rows: list[dict], *, resync: bool = False,
                      text: str | None = None) -> None: ...


class Hub:
    """Fans the doorbell out to the subscribers of one event loop (one per web process)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.subscribers: dict[tuple, set] = {}
        self.dirty: set[tuple] = set()
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.rings = 0
        # Every-pipeline subscribers: sequence numbers below their last one not
        # seen yet, until when to look for them. One pipeline's events commit in
        # sequence order (its row lock), two pipelines' may not on PostgreSQL:
        # 174 can commit after 177. A rolled-back insert leaves a hole forever.
        self.holes: dict[Subscriber, dict[int, float]] = {}

    # subscribing (called by consumers, in the loop) -----------------------------
    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.setdefault(subscriber.key, set()).add(subscriber)
        self._start()
        self._mark([subscriber.key])

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.holes.pop(subscriber, None)
        subs = self.subscribers.get(subscriber.key)
        if subs is not None:
            subs.discard(subscriber)
            if not subs:
                del self.subscribers[subscriber.key]
        if not self.subscribers:
            self._stop()

    # ringing --------------------------------------------------------------------
    def ring(self, pipeline_id: int, execution_ids: Iterable[int]) -> None:
        self.rings += 1
        keys = [ALL, pipeline_key(pipeline_id)] + [execution_key(e) for e in execution_ids]
        self._mark(keys)

    def ring_threadsafe(self, pipeline_id: int, execution_ids: Iterable[int]) -> None:
        try:
            self.loop.call_soon_threadsafe(self.ring, pipeline_id, list(execution_ids))
        except RuntimeError:  # the loop has closed
            _hubs.pop(id(self.loop), None)

    def _mark(self, keys: Iterable[tuple]) -> None:
        marked = False
        for key in keys:
            if key in self.subscribers:
                self.dirty.add(key)
                marked = True
        if marked:
            self.wake.set()

    # tasks ----------------------------------------------------------------------
    def _start(self) -> None:
        if self.tasks:
            return
        self.tasks = [self.loop.create_task(self._dispatch(), name="conveyor-live-dispatch"),
                      self.loop.create_task(self._tail(), name="conveyor-live-tail")]
        if cross_process_layer():
            self.tasks.append(self.loop.create_task(self._listen(), name="conveyor-live-listen"))

    def _stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks = []

    async def _dispatch(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            keys, self.dirty = self.dirty, set()
            for key in keys:
                try:
                    await self._deliver(key)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("delivering live events of %s failed", key)

    async def _deliver(self, key: tuple) -> None:
        subs = list(self.subscribers.get(key, ()))
        unordered = key == ALL
        while subs:
            after = min(s.last for s in subs)
            also = sorted({h for s in subs for h in self._holes(s)})[:500] if unordered else []
            rows = await database_sync_to_async(read_events)(key, after, also=also)
            if len(rows) <= MAX_REPLAY:
                break
            # Far behind (a long disconnection): reloading beats replaying. The
            # subscribers at the bottom resync; the others are served next round.
            top = await database_sync_to_async(last_sequence)(key)
            behind = [s for s in subs if s.last <= after]
            for sub in behind:
                sub.last = top
                await self._hand(sub, [], resync=True)
            subs = [s for s in subs if s not in behind]
        else:
            return
        # Subscribers that were at the same sequence get the same message: encode
        # it once (100 browsers on one pipeline page must not cost 100 encodings).
        texts: dict[tuple, str] = {}
        for sub in subs:
            mine = (self._unseen(sub, rows) if unordered
                    else [r for r in rows if r["id"] > sub.last])
            if mine:
                last = max(sub.last, mine[-1]["id"])
                ids = (last, *(r["id"] for r in mine))
                if ids not in texts:
                    texts[ids] = json.dumps({"type": "events", "last": last,
                                             "events": [event_json(r) for r in mine]})
                sub.last = last
                await self._hand(sub, mine, text=texts[ids])

    def _holes(self, sub: Subscriber) -> dict[int, float]:
        holes = self.holes.setdefault(sub, {})
        now = time.monotonic()
        for hole in [h for h, until in holes.items() if until < now]:
            del holes[hole]
        return holes

    def _unseen(self, sub: Subscriber, rows: list[dict]) -> list[dict]:
        """The rows ``sub`` has not had, noting the holes the new ones leave behind."""
        holes = self._holes(sub)
        now = time.monotonic()
        last = sub.last
        mine = []
        for row in rows:                      # oldest first
            seq = row["id"]
            if seq > last:
                for hole in range(max(last + 1, seq - 100), seq):
                    holes.setdefault(hole, now + GAP_SECONDS)
                last = seq
                mine.append(row)
            elif seq in holes:
                mine.append(row)
            holes.pop(seq, None)
        return mine

    @staticmethod
    async def _hand(sub: Subscriber, rows: list[dict], *, resync: bool = False,
                    text: str | None = None) -> None:
        try:
            await sub.deliver(rows, resync=resync, text=text)
        except asyncio.CancelledError:
            raise
        except Exception:  # one broken socket must not starve the others
            logger.exception("a live subscriber failed to take its events")

    async def _tail(self) -> None:
        """Notice new event rows committed by any process (the embedded doorbell)."""
        from executions.models import ExecutionEvent

        def fetch(watermark: int, gaps: list[int]) -> list[tuple]:
            from django.db.models import Q

            condition = Q(id__gt=watermark)
            if gaps:
                condition |= Q(id__in=gaps)
            return list(ExecutionEvent.objects.filter(condition).order_by("id")
                        .values_list("id", "pipeline_id", "execution_id")[:2000])

        watermark = await database_sync_to_async(last_sequence)(ALL)
        gaps: dict[int, float] = {}
        while True:
            await asyncio.sleep(tail_seconds())
            try:
                rows = await database_sync_to_async(fetch)(watermark, sorted(gaps)[:500])
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("tailing the event table failed")
                continue
            now = time.monotonic()
            touched: dict[int, set[int]] = {}
            for seq, pipeline_id, execution_id in rows:
                if seq > watermark:
                    for hole in range(watermark + 1, min(seq, watermark + 1 + 100)):
                        gaps.setdefault(hole, now + GAP_SECONDS)
                    watermark = seq
                gaps.pop(seq, None)
                touched.setdefault(pipeline_id, set()).add(execution_id or 0)
            for hole in [h for h, until in gaps.items() if until < now]:
                del gaps[hole]
            for pipeline_id, executions in touched.items():
                self.ring(pipeline_id, executions)

    async def _listen(self) -> None:
        """Hear the doorbell other processes ring through channels-redis."""
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        channel = None
        # None: not in the group yet. (A 0.0 start read "joined at boot": for the first
        # ten minutes of the machine's uptime the listener never joined the group.)
        joined: float | None = None
        while True:
            try:
                if channel is None:
                    # The default prefix: channels-redis serves every process-local
                    # channel of a layer from one Redis list, read by whichever
                    # receive holds its lock; a channel with another prefix would
                    # starve while a consumer's receive holds that lock.
                    channel = await layer.new_channel()
                # Group membership expires (a day by default): renew it.
                if joined is None or time.monotonic() - joined > 600:
                    await layer.group_add(GROUP, channel)
                    joined = time.monotonic()
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                if channel is not None:
                    with contextlib.suppress(Exception):
                        await layer.group_discard(GROUP, channel)
                raise
            except Exception:
                logger.exception("listening for the live doorbell failed; retrying")
                channel, joined = None, None
                await asyncio.sleep(0.5)
                continue
            if message.get("type") == "events.ring":
                self.ring(int(message["pipeline"]), message.get("executions") or [])


_hubs: dict[int, Hub] = {}


def hub() -> Hub:
    """The hub of the running event loop (created on first use)."""
    return of_running_loop(_hubs, Hub)
