"""Writes of the conditions app that people cause: overriding a stage condition
(docs/conditions.md §6). Every surface (REST, the AWS endpoint, the dashboard) calls this."""

from __future__ import annotations

from dataclasses import dataclass

from conditions import records
from conditions.choices import CONDITION_TYPES, KINDS_BY_TYPE
from conditions.choices import ConditionExecutionStatus as C
from conditions.errors import ConditionNotOverridable
from conditions.evaluation import outcome_engaged
from conditions.models import ConditionExecution
from executions import engine
from executions.errors import ExecutionInvalid
from executions.models import PipelineExecution
from observability.audit import audit_record

# The one permission an override needs, on every surface: the one that lets a person
# steer an execution already running (retry a stage). Kept here only.
OVERRIDE_PERMISSION = "executions.retry_pipelineexecution"

__all__ = ["OVERRIDE_PERMISSION", "ConditionNotOverridable", "override_refusal",
           "stage_condition_override"]


@dataclass(frozen=True)
class Refusal:
    message: str

    def error(self) -> ConditionNotOverridable:
        return ConditionNotOverridable(self.message)


def override_refusal(*, number: int, stage_name: str, kind: str, status: str | None,
                     result: str | None) -> Refusal | None:
    """Why a condition cannot be overridden, or None (a pure function every surface asks).

    Only a condition still being evaluated (InProgress) can be overridden, and not a
    SKIP condition (CodePipeline: skip conditions cannot be overridden).
    """
    if status is None:
        return Refusal(f'Execution #{number} has no {kind} condition in stage "{stage_name}" '
                       "being evaluated: there is nothing to override.")
    if status != C.IN_PROGRESS:
        return Refusal(f'The {kind} condition of stage "{stage_name}" of execution #{number} '
                       f"has already ended ({status}): there is nothing to override.")
    if result == "SKIP":
        return Refusal(f'The {kind} condition of stage "{stage_name}" skips the stage when it '
                       "fails: a SKIP condition cannot be overridden.")
    return None


def stage_condition_override(*, execution: PipelineExecution, stage_name: str,
                             condition_type: str, user, reason: str = "",
                             surface: str | None = None) -> ConditionExecution:
    """Let a held stage proceed: end its condition being evaluated as Overridden.

    1. ``condition_type``: BEFORE_ENTRY, ON_SUCCESS or ON_FAILURE (or the member name).
    2. Refused with ``ConditionNotOverridable`` unless that condition of the execution's
       latest attempt at the stage is InProgress and its result is not SKIP.
    3. Its running rule ends Abandoned, the condition Overridden (who and why kept), and
       the stage moves on as if the condition had not engaged: beforeEntry → the actions
       start; onSuccess → the stage Succeeded; onFailure → the stage Failed without its
       ROLLBACK/RETRY. One transaction; then the audit trail records who and why.
    """
    kind = KINDS_BY_TYPE.get(condition_type) or (
        condition_type if condition_type in CONDITION_TYPES else None)
    if kind is None:
        raise ExecutionInvalid(
            f'"{condition_type}" is not a condition type: use '
            + ", ".join(CONDITION_TYPES.values()),
            problems=[("conditionType", "use " + ", ".join(CONDITION_TYPES.values()))])
    reason = (reason or "").strip()
    with engine.condition_transaction(execution.pipeline_id) as fx:
        ce = (ConditionExecution.objects.select_related("stage_execution")
              .filter(stage_execution__execution=execution,
                      stage_execution__stage_name=stage_name, kind=kind)
              .order_by("-id").first())
        refusal = override_refusal(number=execution.number, stage_name=stage_name, kind=kind,
                                   status=ce.status if ce else None,
                                   result=ce.result if ce else None)
        if refusal is not None:
            raise refusal.error()
        who = getattr(user, "username", "") or "a client"
        summary = f"Overridden by {who}" + (f": {reason}" if reason else "")
        ce.overridden_by = user if getattr(user, "is_authenticated", False) else None
        ce.override_reason = reason[:2000]
        if not records.condition_end(
                fx, ce, C.OVERRIDDEN, summary=summary,
                rule_summary=f"Abandoned: the condition was overridden by {who}",
                overridden_by=ce.overridden_by, override_reason=ce.override_reason):
            raise ConditionNotOverridable(f"The {kind} condition changed meanwhile; try again.")
        engine.condition_outcome(fx, stage_execution=ce.stage_execution, kind=kind,
                                 result=ce.result, engaged=outcome_engaged(kind, C.OVERRIDDEN),
                                 summary=summary)
    audit_record(action="condition.override", user=user, execution=execution, stage=stage_name,
                 reason=reason, detail={"conditionType": CONDITION_TYPES[kind],
                                        "result": ce.result}, surface=surface)
    return ce
