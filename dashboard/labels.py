"""Why an execution did something by itself, in words, for the history and the execution
page: a stage retried automatically (onFailure RETRY, or an onFailure condition's).
Rollbacks carry their reason in their own trigger detail (``executions.stages``)."""

from __future__ import annotations

from dataclasses import dataclass

from conditions.choices import ConditionKind, ConditionResult
from conditions.models import ConditionExecution
from executions.choices import ActionExecutionStatus, RetryMode, RetryTrigger
from executions.models import ActionExecution, StageExecution


@dataclass
class AutomaticRetry:
    stage_name: str
    attempt: int
    why: str   # "Deploy failed (Smoke); retried by its onFailure RETRY (FAILED_ACTIONS)"


def automatic_retries(execution_ids) -> dict[int, list[AutomaticRetry]]:
    """The stages each of these executions retried by itself, with why: the failed
    actions of the attempt before, and whether a plain ``onFailure`` RETRY or an
    ``onFailure`` condition whose rules passed decided it (docs/conditions.md).
    One query, three when there are automatic retries (their failed actions, their
    onFailure conditions)."""
    ids = list(execution_ids)
    retries = list(StageExecution.objects.filter(
        execution_id__in=ids, retry_trigger=RetryTrigger.AUTOMATED).order_by(
        "stage_index", "attempt").values_list("execution_id", "stage_name", "attempt",
                                              "retry_mode"))
    if not retries:
        return {}
    executions = {r[0] for r in retries}
    stages = {r[1] for r in retries}
    failed: dict[tuple, list[str]] = {}
    for execution_id, stage_name, attempt, action_name in ActionExecution.objects.filter(
            execution_id__in=executions, status=ActionExecutionStatus.FAILED,
            stage_name__in=stages).order_by("id").values_list(
            "execution_id", "stage_name", "stage_execution__attempt", "action_name"):
        failed.setdefault((execution_id, stage_name, attempt), []).append(action_name)
    by_condition = set(ConditionExecution.objects.filter(
        stage_execution__execution_id__in=executions, stage_execution__stage_name__in=stages,
        kind=ConditionKind.ON_FAILURE, result=ConditionResult.RETRY).values_list(
        "stage_execution__execution_id", "stage_execution__stage_name",
        "stage_execution__attempt"))
    reasons: dict[int, list[AutomaticRetry]] = {}
    for execution_id, stage_name, attempt, mode in retries:
        before = (execution_id, stage_name, attempt - 1)
        actions = failed.get(before, [])
        by = ("its onFailure condition's RETRY" if before in by_condition
              else "its onFailure RETRY")
        reasons.setdefault(execution_id, []).append(AutomaticRetry(stage_name, attempt, (
            f"{stage_name} failed" + (f" ({', '.join(actions)})" if actions else "")
            + f"; retried by {by} ({mode or RetryMode.FAILED_ACTIONS})")))
    return reasons
