"""Writes of condition and rule records, each a compare-and-set with its live event.

Every status change of a ``ConditionExecution`` or a ``RuleExecution`` is one
``UPDATE … WHERE pk = … AND status = <observed>`` checked against the tables of
``conditions.choices``, in the engine's transaction (``fx``, the pipeline's row
locked), with one ``ExecutionEvent`` of kind ``"condition"`` appended beside it, so
the live dashboard hears of it as it hears of stages and actions.

The event (``dashboard.live.event_json`` passes ``data`` on as ``"condition"``)::

    kind            "condition"
    stageName       the stage whose condition it is
    status          the new status (ConditionExecutionStatus or RuleExecutionStatus)
    previousStatus  the status before ("" when the row was just made)
    summary         the condition's or the rule's summary
    data = {
      "object": "condition" | "rule",
      "conditionType": "beforeEntry" | "onSuccess" | "onFailure",
      "result": "FAIL" | "SKIP" | "ROLLBACK" | "RETRY",   # what the condition does
      "attempt": n,                        # the stage execution's attempt
      # rule events only:
      "ruleName": "...", "ruleExecutionId": "<uuid>", "provider": "...",
      "position": i,                       # the rule's index in the condition
      "recheckAt": "<ISO time>" | None,    # a waiting rule's next look
      # condition events only, when a person overrode it:
      "overriddenBy": "<username>", "overrideReason": "..."
    }
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from conditions.choices import ConditionExecutionStatus as C
from conditions.choices import RuleExecutionStatus as R
from conditions.models import ConditionExecution, RuleExecution
from executions.choices import EventKind
from executions.statuses import record_event

EVENT = EventKind.CONDITION


def _data(ce: ConditionExecution, **more) -> dict:
    data = {"object": "condition", "conditionType": ce.kind, "result": ce.result,
            "attempt": ce.stage_execution.attempt}
    data.update(more)
    return data


def _rule_data(ce: ConditionExecution, rule: RuleExecution) -> dict:
    return _data(ce, object="rule", ruleName=rule.rule_name,
                 ruleExecutionId=str(rule.rule_execution_id), provider=rule.provider,
                 position=rule.position,
                 recheckAt=rule.recheck_at.isoformat() if rule.recheck_at else None)


def condition_create(fx, *, stage_execution, kind: str, result: str,
                     summary: str = "") -> ConditionExecution:
    """A new evaluation, InProgress, with its event."""
    now = timezone.now()
    ce = ConditionExecution.objects.create(stage_execution=stage_execution, kind=kind,
                                           result=result, status=C.IN_PROGRESS,
                                           summary=summary[:2000], started_at=now)
    ce.stage_execution = stage_execution
    record_event(fx, stage_execution=stage_execution, kind=EVENT, previous="",
                 status=C.IN_PROGRESS, summary=ce.summary, data=_data(ce))
    return ce


def condition_set(fx, ce: ConditionExecution, to: str, *, summary: str | None = None,
                  **fields) -> bool:
    """Compare-and-set a condition's status; False (nothing written) if it moved meanwhile
    or the table forbids the move."""
    previous = ce.status
    if to not in C.TRANSITIONS.get(previous, ()):
        return False
    now = timezone.now()
    values = {"status": to, "updated_at": now, **fields}
    if summary is not None:
        values["summary"] = summary[:2000]
    if to in C.TERMINAL:
        values.setdefault("ended_at", now)
    with transaction.atomic(savepoint=False):
        if ConditionExecution.objects.filter(pk=ce.pk, status=previous).update(**values) != 1:
            return False
        for key, value in values.items():
            setattr(ce, key, value)
        more = {}
        if ce.overridden_by_id:
            more = {"overriddenBy": ce.overridden_by.get_username(),
                    "overrideReason": ce.override_reason}
        record_event(fx, stage_execution=ce.stage_execution, kind=EVENT, previous=previous,
                     status=to, summary=ce.summary, data=_data(ce, **more))
    return True


def rule_create(fx, ce: ConditionExecution, *, position: int, rule_name: str, provider: str,
                configuration: dict, deadline_at, summary: str = "") -> RuleExecution:
    """A rule starts: its row, InProgress, with its event."""
    rule = RuleExecution.objects.create(
        condition_execution=ce, position=position, rule_name=rule_name[:100],
        provider=provider[:100], status=R.IN_PROGRESS, configuration=configuration,
        started_at=timezone.now(), deadline_at=deadline_at, summary=summary[:2000])
    record_event(fx, stage_execution=ce.stage_execution, kind=EVENT, previous="",
                 status=R.IN_PROGRESS, summary=rule.summary, data=_rule_data(ce, rule))
    return rule


def rule_set(fx, ce: ConditionExecution, rule: RuleExecution, to: str, *, summary: str,
             where: dict | None = None, **fields) -> bool:
    """Compare-and-set a rule's status (InProgress → InProgress records another look at a
    waiting rule); False if it moved meanwhile."""
    previous = rule.status
    if to not in R.TRANSITIONS.get(previous, ()):
        return False
    now = timezone.now()
    values = {"status": to, "updated_at": now, "summary": summary[:2000], **fields}
    if to in R.TERMINAL:
        values.setdefault("ended_at", now)
        values.setdefault("lease_expires_at", None)
        values.setdefault("recheck_at", None)
    with transaction.atomic(savepoint=False):
        if RuleExecution.objects.filter(pk=rule.pk, status=previous, **(where or {})).update(
                **values) != 1:
            return False
        for key, value in values.items():
            setattr(rule, key, value)
        record_event(fx, stage_execution=ce.stage_execution, kind=EVENT, previous=previous,
                     status=to, summary=rule.summary, data=_rule_data(ce, rule))
    return True


def condition_end(fx, ce: ConditionExecution, to: str, *, summary: str, rule_summary: str,
                  **fields) -> bool:
    """End a condition before its rules decided (overridden, stopped, superseded): its
    running rules Abandoned, then the condition ``to``."""
    if ce.status != C.IN_PROGRESS:
        return False
    for rule in RuleExecution.objects.filter(condition_execution=ce, status=R.IN_PROGRESS):
        rule_set(fx, ce, rule, R.ABANDONED, summary=rule_summary)
    return condition_set(fx, ce, to, summary=summary, **fields)
