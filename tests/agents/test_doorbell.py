"""The agents' doorbell (``agents.doorbell``): a job offer wakes the held polls, a
revocation wakes every held request of that key and only that key's. The database look
is pushed out of reach here, so only a ring can wake anything."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from agents import doorbell

pytestmark = pytest.mark.django_db

# Key ids of no real key: parallel test processes share the Redis channel.
K, L = 10**9 + 7, 10**9 + 8


@pytest.fixture(autouse=True)
def _no_look(settings):
    settings.CONVEYOR_LIVE_TAIL_SECONDS = 3600
    settings.CONVEYOR_LIVE_SAFETY_SECONDS = 3600


@contextlib.asynccontextmanager
async def ready_bell():
    """This loop's bell once it hears every ring: starting its look and subscribing to
    Redis wake every held request once (to look again), which must not count here."""
    bell = doorbell.bell()
    with bell.hold(0):   # keeps its tasks running for the test
        await asyncio.wait_for(bell.ready(), 10)
        yield bell


def test_an_offer_wakes_held_polls_but_not_held_lease_renewals():
    async def scenario():
        async with ready_bell() as bell:
            with bell.hold(K) as poll, bell.hold(L) as other, \
                    bell.hold(K, offers=False) as renewal:
                await asyncio.to_thread(doorbell.ring_offer)       # as a committing thread does
                assert await poll.wait(10) and await other.wait(10)
                assert not await renewal.wait(0.2)
                assert not (poll.revoked or other.revoked or renewal.revoked)

    asyncio.run(scenario())


def test_a_revocation_wakes_every_held_request_of_that_key_only():
    async def scenario():
        async with ready_bell() as bell:
            with bell.hold(K) as poll, bell.hold(K, offers=False) as renewal, \
                    bell.hold(L) as other:
                await asyncio.to_thread(doorbell.ring_revoked, K)
                assert await poll.wait(10) and await renewal.wait(10)
                assert poll.revoked and renewal.revoked
                assert not other.revoked and not other.event.is_set()

    asyncio.run(scenario())


def test_closing_wakes_every_held_request_and_marks_later_ones():
    async def scenario():
        async with ready_bell() as bell:
            with bell.hold(K) as poll, bell.hold(K, offers=False) as renewal:
                assert not poll.closing
                # From the server's shutdown hook (the reactor's thread is the loop's).
                await asyncio.to_thread(doorbell.close_all)
                assert await poll.wait(10) and await renewal.wait(10)
                assert poll.closing and renewal.closing
                assert not (poll.revoked or renewal.revoked)
                with bell.hold(L) as later:   # held after the close: answers at once
                    assert later.closing

    asyncio.run(scenario())


def test_a_ring_on_commit_waits_for_the_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        doorbell.on_commit(doorbell.ring_revoked, K)
    assert len(callbacks) == 1                                 # deferred, not rung

    async def scenario():
        async with ready_bell() as bell:
            with bell.hold(K, offers=False) as renewal:
                await asyncio.to_thread(callbacks[0])              # the commit
                assert await renewal.wait(10) and renewal.revoked

    asyncio.run(scenario())
