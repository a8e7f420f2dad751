"""django-q2 task adapters: they take ids and call the worker and the engine.

The engine hands new action executions to ``dispatch`` once its transaction
commits. A queue hop costs ~13 ms on the ORM broker (poll 0.01 s) and ~4 ms on
Redis, so a worker that has just finished an action runs the next one itself,
in-process (continuation), and enqueues only the extra ones of a parallel
group. Every task first claims its row: a second delivery changes nothing.
"""

from __future__ import annotations

import logging
import threading

from executions import engine, worker

logger = logging.getLogger("conveyor.tasks")

_local = threading.local()


class _Continuation:
    """The slot for the one action the current worker will run next itself: an
    action execution id, or an action the engine already claimed for it."""

    def __init__(self) -> None:
        self.next: int | engine.Claim | None = None


def can_continue() -> bool:
    """True inside a worker's task whose continuation slot is still free."""
    slot: _Continuation | None = getattr(_local, "slot", None)
    return slot is not None and slot.next is None


def continue_with(claim: engine.Claim) -> None:
    """The engine claimed an action for this thread (on commit): run it next."""
    slot: _Continuation | None = getattr(_local, "slot", None)
    if slot is None or slot.next is not None:
        # Cannot happen (the engine asked can_continue() in this thread); if it
        # did, the claim's lease would expire and the sweeper hand it out again.
        logger.error("no continuation slot for claimed action execution %s",
                     claim.action_execution.pk)
        return
    slot.next = claim


def dispatch(action_execution_pks: list[int]) -> None:
    """Hand action executions to workers (the engine calls this on commit)."""
    pks = list(action_execution_pks)
    slot: _Continuation | None = getattr(_local, "slot", None)
    if slot is not None and slot.next is None and pks:
        slot.next = pks.pop(0)
    for pk in pks:
        enqueue(pk)


def enqueue(pk: int) -> None:
    """Put one action execution on the django-q2 queue (tests replace this).

    The broker being down (Redis restarting) must not fail the caller: the
    action is already committed, InProgress and unclaimed, so the sweeper hands
    it out again. Its dispatch lease is cut short so that happens at the next
    sweep, not after ``CONVEYOR_DISPATCH_SECONDS``.
    """
    from django_q.tasks import async_task

    try:
        # save=False: the action's own rows are its record. django-q2 would store
        # each successful task and prune its table after every one (10-12 ms of
        # the cluster monitor's CPU per execution, bench/throughput.py --profile);
        # a failed task is still stored.
        async_task("executions.tasks.action_run", pk, task_name=f"action-execution-{pk}",
                   save=False)
    except Exception:
        logger.warning("could not queue action execution %s: the sweeper will hand it out "
                       "again", pk, exc_info=True)
        engine.dispatch_failed(pk)


def action_run(action_execution_pk: int) -> None:
    """The task: claim and run an action execution, then continue with the next one."""
    work: int | engine.Claim | None = action_execution_pk
    while work is not None:
        slot = _Continuation()
        _local.slot = slot
        try:
            if isinstance(work, engine.Claim):
                worker.run_claimed(work, engine.worker_name())
            else:
                worker.run_action(work)
        finally:
            _local.slot = None
        work = slot.next


def sweep() -> str:
    """The scheduled task: end actions whose worker was lost or whose deadline passed."""
    report = engine.sweep()
    return (f"lost {report.lost}, timed out {report.timed_out}, "
            f"redispatched {report.redispatched}")
