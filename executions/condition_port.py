"""The port through which the engine reaches stage conditions (docs/conditions.md).

The engine decides *when* a stage's condition is evaluated and what its outcome does
to the stage and the execution; the ``conditions`` app keeps the condition and rule
records and evaluates the rules. That app imports the engine (its records point at
stage executions), so the engine cannot import it back: ``ConditionsConfig.ready``
wires it here at start-up, as ``executions.queue`` is wired.

Every call but ``states`` runs inside the engine's transaction (``fx`` is its
``_Effects``): the records and their events commit with the stage's status change.
"""

from __future__ import annotations

from typing import Any, Protocol


class Conditions(Protocol):
    def start(self, fx: Any, *, stage_execution: Any, kind: str, condition: dict) -> None:
        """Record a new evaluation (InProgress) and have it evaluated once ``fx`` commits."""

    def active(self, stage_execution: Any) -> str | None:
        """The kind of the condition of this stage execution still InProgress, if any."""

    def end(self, fx: Any, *, stage_execution: Any, status: str, reason: str) -> bool:
        """End the InProgress condition of a stage execution (Cancelled by a stop,
        Abandoned by a newer execution), its running rule Abandoned. False if none."""

    def states(self, stage_execution_pks: list[int]) -> dict[int, dict]:
        """GetPipelineState's condition states of each stage execution (read only)."""


_conditions: Conditions | None = None


def wire(conditions: Conditions | None) -> None:
    global _conditions
    _conditions = conditions


def port() -> Conditions:
    if _conditions is None:
        # A stage with conditions must never run as if they had passed.
        raise RuntimeError("no conditions adapter is wired: ConditionsConfig.ready wires "
                           "conditions.port")
    return _conditions


def wired() -> bool:
    return _conditions is not None
