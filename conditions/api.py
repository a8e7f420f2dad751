"""REST: one small view per command (docs/api-executions.md), and a Commands rule's log.

``POST /api/executions/{id}/stages/{stage}/override-condition/``
``{"conditionType": "BEFORE_ENTRY" | "ON_SUCCESS" | "ON_FAILURE", "reason": "…"}`` —
OverrideStageCondition: let a held stage proceed. Answers the stage's condition states
(200); 409 when nothing is held (``ConditionNotOverridable``); it needs the operator
(or owner) role on the pipeline's group (``teams.access``), as a retry does.

``GET /api/executions/{id}/stages/{stage}/conditions/{conditionType}/rules/{rule}/log/
?offset=N[&ruleExecutionId=…]`` — a Commands rule's log from a byte offset, as an
action's log is read (``/api/action-executions/{id}/log/``): the rule's latest
evaluation in that execution's stage, or the one ``ruleExecutionId`` names (from
ListRuleExecutions or the pipeline state). Viewers may read it.
"""

from __future__ import annotations

import uuid

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from conditions import logs, selectors, services
from conditions.choices import CONDITION_TYPES, KINDS_BY_TYPE, RuleExecutionStatus
from conditions.models import RuleExecution
from executions.api.serializers import LogPieceSerializer
from executions.api.state import _condition_state_data
from executions.api.views import (
    COMMAND_ERRORS,
    ERRORS,
    EXECUTION,
    STAGE,
    _Api,
    _execution,
    log_piece,
)
from executions.models import PipelineExecution
from pipelines.api.serializers import ErrorSerializer
from teams.choices import Act


class ConditionOverrideSerializer(serializers.Serializer):
    """OverrideStageCondition's request."""

    conditionType = serializers.ChoiceField(choices=sorted(CONDITION_TYPES.values()))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000,
                                   default="", help_text="Why: kept in the audit trail.")


class ConditionOverriddenSerializer(serializers.Serializer):
    """The answer: the stage's condition states after the override (GetPipelineState's)."""

    pipelineExecutionId = serializers.UUIDField()
    stageName = serializers.CharField()
    beforeEntryConditionState = serializers.JSONField(required=False)
    onSuccessConditionState = serializers.JSONField(required=False)
    onFailureConditionState = serializers.JSONField(required=False)


@extend_schema(parameters=[EXECUTION, STAGE])
class StageConditionOverrideApi(_Api):
    """OverrideStageCondition: end a condition being evaluated as Overridden, so the stage
    proceeds (beforeEntry: its actions start; onSuccess: it succeeds; onFailure: it fails
    without its ROLLBACK/RETRY)."""

    serializer_class = ConditionOverrideSerializer

    @extend_schema(summary="Override a stage condition", request=ConditionOverrideSerializer,
                   responses={200: ConditionOverriddenSerializer, **COMMAND_ERRORS})
    def post(self, request, id, stage):  # noqa: A002 (the path parameter's name)
        execution = _execution(request, id, act=Act.OPERATE)
        body = ConditionOverrideSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ce = services.stage_condition_override(
            execution=execution, stage_name=stage,
            condition_type=body.validated_data["conditionType"], user=request.user,
            reason=body.validated_data["reason"])
        states = selectors.condition_states(stage_execution=ce.stage_execution)
        return Response({"pipelineExecutionId": str(execution.execution_id),
                         "stageName": stage,
                         **{k: _condition_state_data(v) for k, v in states.items()}})


class RuleLogSerializer(LogPieceSerializer):
    """A piece of a Commands rule's log, from a byte offset."""

    ruleExecutionId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=RuleExecutionStatus.choices)


def _rule_execution(request, execution: PipelineExecution, *, stage: str,
                    condition_type: str, rule: str) -> RuleExecution:
    """``selectors.rule_execution_named``, or 404 saying which part was not found."""
    kind = KINDS_BY_TYPE.get(condition_type)
    if kind is None:
        raise NotFound(f'No condition type "{condition_type}": one of '
                       + ", ".join(sorted(KINDS_BY_TYPE)) + ".")
    wanted = request.query_params.get("ruleExecutionId")
    try:
        wanted = uuid.UUID(wanted) if wanted is not None else None
    except ValueError:
        raise NotFound(f'No rule execution has the id "{wanted}".') from None
    found = selectors.rule_execution_named(execution, stage_name=stage, kind=kind, rule=rule,
                                           rule_execution_id=wanted)
    if found is None:
        raise NotFound(f'Rule "{rule}" of the {condition_type} condition of stage "{stage}" '
                       "was not evaluated in this execution"
                       + (" with that ruleExecutionId." if wanted else "."))
    return found


CONDITION_TYPE = OpenApiParameter("condition_type", OpenApiTypes.STR, OpenApiParameter.PATH,
                                  enum=sorted(KINDS_BY_TYPE),
                                  description="The condition's conditionType.")
RULE = OpenApiParameter("rule", OpenApiTypes.STR, OpenApiParameter.PATH,
                        description="The rule's name.")


@extend_schema(parameters=[EXECUTION, STAGE, CONDITION_TYPE, RULE])
class RuleLogApi(_Api):
    """A Commands rule's log from a byte offset, readable while the rule runs."""

    serializer_class = RuleLogSerializer

    @extend_schema(
        summary="Read a Commands rule's log",
        description="Poll with each answer's nextOffset until complete is true.",
        parameters=[OpenApiParameter("ruleExecutionId", OpenApiTypes.UUID, description=(
            "One evaluation of the rule (default: its latest in this execution)."))],
        responses={200: RuleLogSerializer,
                   400: OpenApiResponse(ErrorSerializer, description="A bad offset."),
                   **ERRORS},
    )
    def get(self, request, id, stage, condition_type, rule):  # noqa: A002
        execution = _execution(request, id)
        found = _rule_execution(request, execution, stage=stage,
                                condition_type=condition_type, rule=rule)
        piece = log_piece(request, lambda **at: logs.rule_log_read(found, **at))
        return Response(RuleLogSerializer.answer(
            piece, ruleExecutionId=found.rule_execution_id, status=found.status))


urlpatterns = [
    path("executions/<str:id>/stages/<str:stage>/override-condition/",
         StageConditionOverrideApi.as_view(), name="api-stage-condition-override"),
    path("executions/<str:id>/stages/<str:stage>/conditions/<str:condition_type>/rules/"
         "<str:rule>/log/", RuleLogApi.as_view(), name="api-rule-log"),
]
