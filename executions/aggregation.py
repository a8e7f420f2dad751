"""Aggregation as pure functions, tested without a database: a stage's next move from its
actions' statuses, an execution's outcome from its stages' (docs/semantics.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from executions.choices import ActionExecutionStatus, PipelineExecutionStatus, StageExecutionStatus

E = PipelineExecutionStatus
S = StageExecutionStatus
A = ActionExecutionStatus

# --- pure aggregation (tested without a database) --------------------------------



@dataclass(frozen=True)
class ActionView:
    """An action of a stage as aggregation sees it; ``status`` None = not started."""

    name: str
    run_order: int
    status: str | None


@dataclass(frozen=True)
class StageDecision:
    """What a stage does next: end with ``status``, start ``start``, or wait (neither)."""

    status: str | None = None
    start: tuple[str, ...] = ()


def stage_step(actions: Iterable[ActionView], *, stopping: bool) -> StageDecision:
    """Decide a stage's next move from its actions' statuses (docs/semantics.md §5, §6, §7).

    Precedence, first match wins:
    1. an action is InProgress → wait (a failure or a stop lets running ones finish);
    2. the stage is stopping, or an action was Abandoned → Stopped;
    3. an action Failed → Failed (no new action starts);
    4. every action Succeeded → Succeeded;
    5. otherwise start the not-started actions of the lowest runOrder
       (every lower group has succeeded, by 1–3).
    """
    actions = list(actions)
    statuses = {a.status for a in actions}
    if A.IN_PROGRESS in statuses:
        return StageDecision()
    if stopping or A.ABANDONED in statuses:
        return StageDecision(status=S.STOPPED)
    if A.FAILED in statuses:
        return StageDecision(status=S.FAILED)
    pending = [a for a in actions if a.status is None]
    if not pending:
        return StageDecision(status=S.SUCCEEDED)
    first = min(a.run_order for a in pending)
    return StageDecision(start=tuple(a.name for a in pending if a.run_order == first))


def execution_outcome(stage_statuses: Iterable[str | None], *, stopping: bool) -> str | None:
    """An execution's final status from its stages' latest statuses, or None to go on.

    ``stage_statuses`` lists, in order, the latest status of every stage the
    execution must run (None: not entered yet). Precedence: a stage still
    active → None; stopping or a Stopped stage → Stopped; a Failed stage →
    Failed; all Succeeded (or Skipped by a beforeEntry condition) → Succeeded;
    otherwise None (enter the next stage).
    """
    statuses = list(stage_statuses)
    if any(s in S.ACTIVE for s in statuses):
        return None
    if stopping or S.STOPPED in statuses:
        return E.STOPPED
    if S.FAILED in statuses:
        return E.FAILED
    if statuses and all(s in S.PASSED for s in statuses):
        return E.SUCCEEDED
    return None
