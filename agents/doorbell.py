"""The agents' doorbell: wakes the requests agents hold open (docs/job-workers.md, Agents).

A ring is a hint, the database stays the truth: a woken request looks again. Two
rings, each sent once the transaction that caused it has committed:

- ``ring_offer()``: a job for agents was queued (the engine's transaction made it,
  ``executions.signals.agent_action_started``); held ``PollForJobs`` look for it;
- ``ring_revoked(key_id)``: an agent key was revoked or deleted; the held requests of
  that key (a poll, a job's held lease renewal) answer the refusal at once.

And ``close_all()``: the web process is shutting down; its held requests answer now.

How a ring travels:

1. to the held requests of this process at once (each event loop's ``Bell``);
2. with Redis (``REDIS_URL``), to every other process through one Redis pub/sub
   channel: published on commit, heard by one subscriber task per web process that
   lives as long as its event loop (no gap between two polls);
3. in the embedded default (no Redis), each web process holding requests looks at
   the database every ``CONVEYOR_LIVE_TAIL_SECONDS`` (30 ms): the newest agents' job
   and the held keys. With Redis the same look runs every
   ``CONVEYOR_LIVE_SAFETY_SECONDS`` (1 s), a safety net for a message published while
   a subscriber was reconnecting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import urllib.parse

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction

from config.loops import of_running_loop

logger = logging.getLogger("conveyor.agents")

OFFER = b"offer"
REVOKED = b"revoked:"


def redis_url() -> str:
    return getattr(settings, "REDIS_URL", "") or ""


def look_seconds() -> float:
    """How often a process holding requests looks at the database itself."""
    if redis_url():
        return float(getattr(settings, "CONVEYOR_LIVE_SAFETY_SECONDS", 1.0))
    return float(getattr(settings, "CONVEYOR_LIVE_TAIL_SECONDS", 0.03))


def channel_name() -> str:
    """The pub/sub channel of this installation. Redis pub/sub ignores the database
    number, so it is part of the name; a ring heard by another installation sharing
    that database only costs it one look."""
    path = urllib.parse.urlsplit(redis_url()).path.strip("/") or "0"
    return f"conveyor.agents.{path}"


# --- ringing (any thread) --------------------------------------------------------------


def ring_offer() -> None:
    """A job for agents was committed: wake the held polls, here and elsewhere."""
    _ring(OFFER, lambda bell: bell.offer())


def ring_revoked(key_id: int) -> None:
    """Agent key ``key_id`` was revoked (or deleted): its held requests answer now."""
    _ring(REVOKED + str(key_id).encode(), lambda bell: bell.revoked(key_id))


def on_commit(ring, *args) -> None:
    """Ring once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: ring(*args))


def _ring(message: bytes, here) -> None:
    try:
        for bell in list(_bells.values()):
            bell.call(here)
        if redis_url():
            _publisher().publish(channel_name(), message)
    except Exception:   # the doorbell must never fail its caller: the look catches up
        logger.warning("ringing the agents' doorbell failed", exc_info=True)


_publisher_lock = threading.Lock()
_the_publisher: tuple[int, object] | None = None


def _publisher():
    global _the_publisher
    with _publisher_lock:
        if _the_publisher is None or _the_publisher[0] != os.getpid():
            import redis

            _the_publisher = (os.getpid(), redis.Redis.from_url(
                redis_url(), socket_timeout=2, socket_connect_timeout=2))
        return _the_publisher[1]


# --- holding (in a web process's event loop) ----------------------------------------------


class Waiter:
    """One held request of an agent key. ``offers``: woken by job offers too (a poll),
    else only by the key's revocation (a held lease renewal)."""

    def __init__(self, key_id: int, *, offers: bool):
        self.key_id, self.offers = key_id, offers
        self.revoked = False
        self.closing = False   # the server is shutting down: answer now
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """Until rung or ``timeout`` s passed; True when rung. The event is cleared:
        the caller looks at the database, then waits again."""
        try:
            await asyncio.wait_for(self.event.wait(), timeout=max(0.0, timeout))
        except TimeoutError:
            return False
        finally:
            self.event.clear()
        return True


class Bell:
    """The held requests of one event loop, and the tasks that hear rings for them."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.waiters: dict[int, set[Waiter]] = {}
        self.look_task: asyncio.Task | None = None
        self.listen_task: asyncio.Task | None = None
        self.looked = asyncio.Event()       # the look has its starting point
        self.subscribed = asyncio.Event()   # the Redis listener hears rings
        self.looks = 0
        self.closing = False

    def call(self, fn) -> None:
        """Run ``fn(self)`` in the bell's loop (from any thread)."""
        try:
            self.loop.call_soon_threadsafe(fn, self)
        except RuntimeError:   # the loop has closed
            _bells.pop(id(self.loop), None)

    @contextlib.contextmanager
    def hold(self, key_id: int, *, offers: bool = True):
        """Register a held request before its first look (no ring slips in between)."""
        waiter = Waiter(key_id, offers=offers)
        waiter.closing = self.closing
        self.waiters.setdefault(key_id, set()).add(waiter)
        self._start()
        try:
            yield waiter
        finally:
            held = self.waiters.get(key_id)
            if held is not None:
                held.discard(waiter)
                if not held:
                    del self.waiters[key_id]
            if not self.waiters and self.look_task is not None:
                self.look_task.cancel()
                self.look_task = None
                self.looked.clear()

    def offer(self) -> None:
        for held in self.waiters.values():
            for waiter in held:
                if waiter.offers:
                    waiter.event.set()

    def revoked(self, key_id: int) -> None:
        for waiter in self.waiters.get(key_id, ()):
            waiter.revoked = True
            waiter.event.set()

    def close(self) -> None:
        """The server is shutting down: every held request answers now, and a request
        held from now on answers at once."""
        self.closing = True
        for held in self.waiters.values():
            for waiter in held:
                waiter.closing = True
        self._wake_all()

    def _start(self) -> None:
        if self.look_task is None:
            self.look_task = self.loop.create_task(self._look(), name="conveyor-agents-look")
        if redis_url() and self.listen_task is None:
            self.listen_task = self.loop.create_task(self._listen(),
                                                     name="conveyor-agents-listen")

    async def _look(self) -> None:
        """Notice what another process committed without a ring reaching this one."""
        newest = await _read(_newest_job)()
        # A job committed between a held request's first look and that read would go
        # unnoticed: every held request looks once more.
        self.offer()
        self.looked.set()
        while True:
            await asyncio.sleep(look_seconds())
            keys = list(self.waiters)
            try:
                latest, gone = await _read(_look_once)(keys)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("the agents' doorbell could not look at the database")
                continue
            self.looks += 1
            if latest > newest:
                newest = latest
                self.offer()
            for key_id in gone:
                self.revoked(key_id)

    async def _listen(self) -> None:
        """Hear the rings of other processes (Redis pub/sub), for the life of the loop."""
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(redis_url())
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(channel_name())
                # Rings published while (re)subscribing are lost: every held request
                # looks again once.
                self._wake_all()
                self.subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._heard(message.get("data") or b"")
            except asyncio.CancelledError:
                raise
            except Exception:
                self.subscribed.clear()
                logger.warning("the agents' doorbell lost Redis; reconnecting", exc_info=True)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()

    async def ready(self) -> None:
        """Until this bell hears every ring (its look started; Redis subscribed)."""
        await self.looked.wait()
        if redis_url():
            await self.subscribed.wait()

    def _wake_all(self) -> None:
        for held in self.waiters.values():
            for waiter in held:
                waiter.event.set()

    def _heard(self, data: bytes) -> None:
        if data == OFFER:
            self.offer()
        elif data.startswith(REVOKED):
            with contextlib.suppress(ValueError):
                self.revoked(int(data[len(REVOKED):]))


def close_all() -> None:
    """The server is shutting down: the held requests of every event loop of this
    process end now (as an empty poll, a renewed lease) instead of holding its shutdown
    for up to their wait (``config.asgi``: daphne's Twisted reactor, before it stops;
    daphne has cancelled their connections, so the agents see them cut off)."""
    for bell in list(_bells.values()):
        bell.call(Bell.close)


def _read(fn):
    """``fn`` in a thread of its own (not the thread-sensitive one): a look cancelled
    mid-read must not wait for a thread that no longer serves the loop (asgiref shields
    a sync call; under ``async_to_sync`` that is a deadlock)."""
    return database_sync_to_async(fn, thread_sensitive=False)


def _newest_job() -> int:
    from jobs.models import Job

    # Agents' jobs are the ones without an action type (agents.work.agent_poll).
    return (Job.objects.filter(action_type__isnull=True).order_by("-id")
            .values_list("id", flat=True).first()) or 0


def _look_once(key_ids: list[int]) -> tuple[int, list[int]]:
    """The newest agents' job, and which of ``key_ids`` are revoked or gone."""
    from agents.models import AgentKey

    live = set(AgentKey.objects.filter(pk__in=key_ids, revoked_at__isnull=True)
               .values_list("pk", flat=True)) if key_ids else set()
    return _newest_job(), [k for k in key_ids if k not in live]


_bells: dict[int, Bell] = {}


def bell() -> Bell:
    """The bell of the running event loop (made on first use)."""
    return of_running_loop(_bells, Bell)
