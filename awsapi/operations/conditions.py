"""Stage-condition operations, over ``conditions.services`` and ``conditions.selectors``
(docs/conditions.md): ListRuleExecutions, OverrideStageCondition, and the condition
states GetPipelineState answers (``executions.condition_state``)."""

from __future__ import annotations

from awsapi import errors
from awsapi.operations.base import (
    NAME,
    compact,
    epoch,
    field_enum,
    field_int,
    field_object,
    field_string,
    operation,
    pipeline_named,
    pipeline_page_after,
    pipeline_page_token,
)
from awsapi.operations.executions import (
    LIST_DEFAULT,
    _execution,
    _execution_id,
    _name,
)
from conditions import selectors, services
from conditions.models import RuleExecution
from executions.errors import ExecutionError
from teams.choices import Act

_RULES_SALT = "awsapi.ListRuleExecutions.nextToken"
# CodePipeline's ConditionType names two; ON_FAILURE is Conveyor's (docs/conditions.md §6).
CONDITION_TYPES = ("BEFORE_ENTRY", "ON_SUCCESS", "ON_FAILURE")


@operation("ListRuleExecutions", act=Act.VIEW)
def list_rule_executions(caller, body: dict) -> dict:
    """Every rule evaluation of a pipeline, newest first; ``nextToken`` is the signed last
    id. ``filter.pipelineExecutionId`` keeps one execution's; ``filter
    .latestInPipelineExecution`` too (every rule execution of a condition is its latest
    run: rules are evaluated once per condition execution)."""
    pipeline = pipeline_named(_name(body, "pipelineName"))
    limit = field_int(body, "maxResults", minimum=1, maximum=100) or LIST_DEFAULT
    after = pipeline_page_after(body, pipeline, salt=_RULES_SALT,
                                operation="ListRuleExecutions")
    wanted = field_object(body, "filter") or {}
    execution = None
    if field_string(wanted, "pipelineExecutionId") is not None:
        execution = _execution(pipeline, _execution_id(wanted, "pipelineExecutionId"))
    latest_in = field_object(wanted, "latestInPipelineExecution")
    if latest_in is not None:
        execution = _execution(pipeline, _execution_id(latest_in, "pipelineExecutionId"))
        field_enum(latest_in, "startTimeRange", ("Latest", "All"), required=True)
    rows = selectors.rule_executions(pipeline=pipeline, execution=execution)
    if after is not None:
        rows = rows.filter(id__lt=after)
    page = list(rows[: limit + 1])
    answer = {"ruleExecutionDetails": [_detail(rule, caller.region) for rule in page[:limit]]}
    if len(page) > limit:
        answer["nextToken"] = pipeline_page_token(pipeline, page[limit - 1].pk,
                                                  salt=_RULES_SALT)
    return answer


def _detail(rule: RuleExecution, region: str) -> dict:
    ce = rule.condition_execution
    se = ce.stage_execution
    ex = se.execution
    failed = rule.status == "Failed"
    return compact({
        "pipelineExecutionId": str(ex.execution_id),
        "ruleExecutionId": str(rule.rule_execution_id),
        "pipelineVersion": ex.pipeline_version.number,
        "stageName": se.stage_name,
        "ruleName": rule.rule_name,
        "startTime": epoch(rule.started_at),
        "lastUpdateTime": epoch(rule.updated_at),
        "updatedBy": ce.overridden_by.get_username()
        if ce.overridden_by_id and rule.status == "Abandoned" else None,
        "status": rule.status,
        "input": {
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": rule.provider,
                           "version": "1"},
            "configuration": rule.configuration,
            "resolvedConfiguration": rule.configuration,
            "region": region,
            "inputArtifacts": [],
        },
        "output": {"executionResult": {
            "externalExecutionId": str(rule.rule_execution_id),
            "externalExecutionSummary": rule.summary or None,
            "externalExecutionUrl": rule.external_execution_url or None,
            "errorDetails": {"code": "JobFailed", "message": rule.summary} if failed else None,
        }} if rule.status != "InProgress" else None,
    })


@operation("OverrideStageCondition", act=Act.OPERATE)
def override_stage_condition(caller, body: dict) -> dict:
    pipeline = pipeline_named(_name(body, "pipelineName"))
    stage_name = field_string(body, "stageName", required=True, pattern=NAME, max_length=100)
    execution = _execution(pipeline, _execution_id(body, "pipelineExecutionId"))
    condition_type = field_enum(body, "conditionType", CONDITION_TYPES, required=True)
    if stage_name not in [s["name"] for s in execution.pipeline_version.document["stages"]]:
        raise errors.AwsError("StageNotFoundException",
                              f"Stage '{stage_name}' does not exist in pipeline "
                              f"'{pipeline.name}'.")
    try:
        services.stage_condition_override(
            execution=execution, stage_name=stage_name, condition_type=condition_type,
            user=caller.user, reason="", surface="aws")
    except services.ConditionNotOverridable as exc:
        raise errors.AwsError("ConditionNotOverridableException", exc.detail) from None
    except ExecutionError as exc:
        raise errors.service_error(exc) from None
    return {}
