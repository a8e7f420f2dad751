"""The port through which the engine hands work to the queue.

The engine decides *that* an action execution must run; the queue adapter
(``executions.tasks``, django-q2) decides how it gets to a worker. The adapter
imports the engine, so the engine cannot import it back: ``ExecutionsConfig.ready``
wires the adapter here at start-up, and the engine calls only this module.
"""

from __future__ import annotations

from typing import Protocol

# A claim is an ``executions.statuses.Claim``; not imported, since statuses calls this.
Claim = object


class Queue(Protocol):
    def dispatch(self, action_execution_pks: list[int]) -> None:
        """Hand action executions to workers (called once their transaction commits)."""

    def can_continue(self) -> bool:
        """True when the current thread is a worker that may run one more action itself."""

    def continue_with(self, claim: Claim) -> None:
        """Run this claimed action next in the current worker thread."""


_queue: Queue | None = None


def wire(queue: Queue) -> None:
    """Connect the queue adapter (``ExecutionsConfig.ready``)."""
    global _queue
    _queue = queue


def port() -> Queue:
    if _queue is None:
        raise RuntimeError("no queue is wired: ExecutionsConfig.ready wires executions.tasks")
    return _queue


def dispatch(action_execution_pks: list[int]) -> None:
    port().dispatch(list(action_execution_pks))


def can_continue() -> bool:
    return _queue is not None and _queue.can_continue()


def continue_with(claim: Claim) -> None:
    port().continue_with(claim)
