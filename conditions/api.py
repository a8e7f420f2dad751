"""REST: one small view per command (docs/api-executions.md).

``POST /api/executions/{id}/stages/{stage}/override-condition/``
``{"conditionType": "BEFORE_ENTRY" | "ON_SUCCESS" | "ON_FAILURE", "reason": "…"}`` —
OverrideStageCondition: let a held stage proceed. Answers the stage's condition states
(200); 409 when nothing is held (``ConditionNotOverridable``); it needs the operator
(or owner) role on the pipeline's group (``teams.access``), as a retry does.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from conditions import selectors, services
from conditions.choices import CONDITION_TYPES
from executions.api.state import _condition_state_data
from executions.api.views import COMMAND_ERRORS, EXECUTION, STAGE, _Api, _execution
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


urlpatterns = [
    path("executions/<str:id>/stages/<str:stage>/override-condition/",
         StageConditionOverrideApi.as_view(), name="api-stage-condition-override"),
]
