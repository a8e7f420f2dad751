"""Why an execution did something by itself, in words, for the history and the execution
page: a stage retried automatically (onFailure RETRY). Rollbacks carry their reason in
their own trigger detail (``executions.stages``)."""

from __future__ import annotations

from dataclasses import dataclass

from executions.choices import ActionExecutionStatus, RetryMode, RetryTrigger
from executions.models import ActionExecution, StageExecution


@dataclass
class AutomaticRetry:
    stage_name: str
    attempt: int
    why: str   # "Deploy failed (Smoke); retried by its onFailure RETRY (FAILED_ACTIONS)"


def automatic_retries(execution_ids) -> dict[int, list[AutomaticRetry]]:
    """The stages each of these executions retried by itself (onFailure RETRY), with why.
    Two queries (the automatic attempts, the failed actions of the attempts before)."""
    ids = list(execution_ids)
    retries = list(StageExecution.objects.filter(
        execution_id__in=ids, retry_trigger=RetryTrigger.AUTOMATED).order_by(
        "stage_index", "attempt").values_list("execution_id", "stage_name", "attempt",
                                              "retry_mode"))
    if not retries:
        return {}
    failed: dict[tuple, list[str]] = {}
    for execution_id, stage_name, attempt, action_name in ActionExecution.objects.filter(
            execution_id__in={r[0] for r in retries}, status=ActionExecutionStatus.FAILED,
            stage_name__in={r[1] for r in retries}).order_by("id").values_list(
            "execution_id", "stage_name", "stage_execution__attempt", "action_name"):
        failed.setdefault((execution_id, stage_name, attempt), []).append(action_name)
    reasons: dict[int, list[AutomaticRetry]] = {}
    for execution_id, stage_name, attempt, mode in retries:
        actions = failed.get((execution_id, stage_name, attempt - 1), [])
        reasons.setdefault(execution_id, []).append(AutomaticRetry(stage_name, attempt, (
            f"{stage_name} failed" + (f" ({', '.join(actions)})" if actions else "")
            + f"; retried by its onFailure RETRY ({mode or RetryMode.FAILED_ACTIONS})")))
    return reasons
