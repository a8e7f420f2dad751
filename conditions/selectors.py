"""Reads of condition records that every surface shares (docs/conditions.md).

``condition_states`` answers GetPipelineState's ``beforeEntryConditionState``,
``onSuccessConditionState`` and ``onFailureConditionState`` of a stage, in
CodePipeline's shape (StageConditionState); times are datetimes, surfaces format them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from conditions.choices import STATE_MEMBERS
from conditions.models import ConditionExecution, RuleExecution
from executions.models import StageExecution


def _rule_docs(document: dict, stage_name: str, kind: str) -> list[dict]:
    for stage in document.get("stages", []):
        if stage.get("name") == stage_name:
            block = stage.get(kind) or {}
            conditions = block.get("conditions") or [] if isinstance(block, dict) else []
            if conditions and isinstance(conditions[0], dict):
                return [r for r in conditions[0].get("rules") or [] if isinstance(r, dict)]
    return []


def _rule_execution(rule: RuleExecution | None, overridden_by: str | None) -> dict | None:
    if rule is None:
        return None
    return {
        "ruleExecutionId": str(rule.rule_execution_id),
        "status": rule.status,
        "summary": rule.summary or None,
        "lastStatusChange": rule.updated_at,
        "token": None,
        # The person whose override abandoned the rule (AWS: the ARN of who changed it).
        "lastUpdatedBy": overridden_by if rule.status == "Abandoned" else None,
        "externalExecutionId": None,
        "externalExecutionUrl": rule.external_execution_url or None,
    }


def _state(ce: ConditionExecution, rules: list[RuleExecution], document: dict) -> dict:
    by_name = {r.rule_name: r for r in rules}  # latest row of each name (ordered by id)
    overridden_by = ce.overridden_by.get_username() if ce.overridden_by_id else None
    declared = [d.get("name", "") for d in _rule_docs(document, ce.stage_execution.stage_name,
                                                       ce.kind)]
    names = declared + [r.rule_name for r in rules if r.rule_name not in declared]
    return {
        "latestExecution": {"status": ce.status, "summary": ce.summary or None},
        "conditionStates": [{
            "latestExecution": {"status": ce.status, "summary": ce.summary or None,
                                "lastStatusChange": ce.updated_at},
            "ruleStates": [{
                "ruleName": name,
                "currentRevision": None,
                "entityUrl": None,
                "revisionUrl": None,
                "latestExecution": _rule_execution(by_name.get(name), overridden_by),
            } for name in names],
        }],
    }


def condition_states_of(stage_execution_pks: list[int]) -> dict[int, dict[str, Any]]:
    """``condition_states`` of many stage executions at once (three queries)."""
    if not stage_execution_pks:
        return {}
    wanted = list(StageExecution.objects.filter(pk__in=stage_execution_pks)
                  .values_list("pk", "execution_id", "stage_name"))
    keys = {(execution_id, stage_name): pk for pk, execution_id, stage_name in wanted}
    # Every attempt of the execution in the stage: a retry does not evaluate beforeEntry
    # again, and the state still shows the one that let the execution in.
    conditions = list(
        ConditionExecution.objects
        .filter(stage_execution__execution_id__in={k[0] for k in keys},
                stage_execution__stage_name__in={k[1] for k in keys})
        .select_related("stage_execution", "stage_execution__execution__pipeline_version",
                        "overridden_by")
        .order_by("id"))
    latest: dict[tuple, ConditionExecution] = {}
    for ce in conditions:
        key = (ce.stage_execution.execution_id, ce.stage_execution.stage_name)
        if key in keys:
            latest[(key, ce.kind)] = ce
    rules: dict[int, list[RuleExecution]] = defaultdict(list)
    for rule in RuleExecution.objects.filter(
            condition_execution__in=[ce.pk for ce in latest.values()]).order_by("id"):
        rules[rule.condition_execution_id].append(rule)
    found: dict[int, dict[str, Any]] = {pk: {} for pk, _, _ in wanted}
    for (key, kind), ce in latest.items():
        document = ce.stage_execution.execution.pipeline_version.document
        found[keys[key]][STATE_MEMBERS[kind]] = _state(ce, rules[ce.pk], document)
    return found


def condition_states(*, stage_execution: StageExecution) -> dict[str, Any]:
    """The condition states of a stage execution's stage for its execution.

    ``{"beforeEntryConditionState" | "onSuccessConditionState" |
    "onFailureConditionState": {"latestExecution": {"status", "summary"},
    "conditionStates": [{"latestExecution": {"status", "summary", "lastStatusChange"},
    "ruleStates": [{"ruleName", "currentRevision", "entityUrl", "revisionUrl",
    "latestExecution": {"ruleExecutionId", "status", "summary", "lastStatusChange",
    "token", "lastUpdatedBy", "externalExecutionId", "externalExecutionUrl"} | None}]}]}}``

    A member is present only for a condition that was evaluated (as AWS leaves out a
    member without a value); ``ruleStates`` lists every declared rule, in order, a rule
    not started yet with ``latestExecution`` None. Statuses: ConditionExecutionStatus and
    RuleExecutionStatus (``conditions.choices``).
    """
    return condition_states_of([stage_execution.pk]).get(stage_execution.pk, {})


def rule_executions(*, pipeline, execution=None):
    """Rule executions of a pipeline (of one execution), newest first, with what
    ListRuleExecutions shows selected."""
    rows = (RuleExecution.objects
            .filter(condition_execution__stage_execution__pipeline=pipeline)
            .select_related("condition_execution__stage_execution__execution__pipeline_version",
                            "condition_execution__overridden_by")
            .order_by("-id"))
    if execution is not None:
        rows = rows.filter(condition_execution__stage_execution__execution=execution)
    return rows


def rule_execution_named(execution, *, stage_name: str, kind: str, rule: str,
                         rule_execution_id=None) -> RuleExecution | None:
    """Rule ``rule`` of ``execution``'s ``kind`` condition in stage ``stage_name``: its
    latest evaluation over the execution's attempts at the stage (what the pipeline state
    shows), or the one ``rule_execution_id`` names; None when there is none."""
    rows = RuleExecution.objects.filter(
        condition_execution__stage_execution__execution=execution,
        condition_execution__stage_execution__stage_name=stage_name,
        condition_execution__kind=kind, rule_name=rule,
    ).select_related("condition_execution__stage_execution__execution__pipeline")
    if rule_execution_id is not None:
        rows = rows.filter(rule_execution_id=rule_execution_id)
    return rows.order_by("-id").first()
