"""Approval shapes for the REST API, in camelCase (docs/api-executions.md)."""

from rest_framework import serializers

from approvals.choices import ApprovalStatus, DecisionStatus, DecisionSurface
from approvals.models import ApprovalDecision, ApprovalRequest


class DecisionSerializer(serializers.ModelSerializer):
    """One reviewer's decision, as recorded (immutable)."""

    user = serializers.CharField(source="username", read_only=True)
    status = serializers.ChoiceField(choices=DecisionStatus.choices, read_only=True)
    surface = serializers.ChoiceField(choices=DecisionSurface.choices, read_only=True)
    decidedAt = serializers.DateTimeField(source="decided_at", read_only=True)  # noqa: N815

    class Meta:
        model = ApprovalDecision
        fields = ["user", "status", "summary", "surface", "decidedAt"]
        read_only_fields = fields


class ApprovalSerializer(serializers.ModelSerializer):
    """An approval request with its decisions."""

    pipelineName = serializers.CharField(source="pipeline_name")  # noqa: N815
    stageName = serializers.CharField(source="stage_name")  # noqa: N815
    actionName = serializers.CharField(source="action_name")  # noqa: N815
    pipelineExecutionId = serializers.UUIDField(source="execution.execution_id")  # noqa: N815
    pipelineExecutionNumber = serializers.IntegerField(source="execution.number")  # noqa: N815
    actionExecutionId = serializers.UUIDField(  # noqa: N815
        source="action_execution.action_execution_id")
    customData = serializers.CharField(source="custom_data")  # noqa: N815
    externalEntityLink = serializers.CharField(source="external_entity_link")  # noqa: N815
    revisionSummary = serializers.CharField(source="revision_summary")  # noqa: N815
    status = serializers.ChoiceField(choices=ApprovalStatus.choices)
    statusSummary = serializers.CharField(source="status_summary")  # noqa: N815
    requiredApprovals = serializers.IntegerField(source="required_approvals")  # noqa: N815
    allowSelfApproval = serializers.BooleanField(source="allow_self_approval")  # noqa: N815
    supersededBy = serializers.UUIDField(  # noqa: N815
        source="superseded_by.execution_id", allow_null=True, default=None)
    createdAt = serializers.DateTimeField(source="created_at")  # noqa: N815
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)  # noqa: N815
    closedAt = serializers.DateTimeField(source="closed_at", allow_null=True)  # noqa: N815
    decisions = DecisionSerializer(many=True)

    class Meta:
        model = ApprovalRequest
        fields = ["id", "pipelineName", "stageName", "actionName", "pipelineExecutionId",
                  "pipelineExecutionNumber", "actionExecutionId", "customData",
                  "externalEntityLink", "revision", "revisionSummary", "status",
                  "statusSummary", "requiredApprovals", "reviewers", "allowSelfApproval",
                  "supersededBy", "createdAt", "expiresAt", "closedAt", "decisions"]
        read_only_fields = fields


class DecisionInput(serializers.Serializer):
    """``{"status": "Approved"|"Rejected", "summary": "…"}``."""

    status = serializers.ChoiceField(choices=DecisionStatus.choices)
    summary = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                    default="")
