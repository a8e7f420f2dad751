"""The pipeline state's serializers (GetPipelineState) and the plain dicts the API sends
for it (``pipeline_state_data``, byte for byte the serializers' JSON:
``tests/executions/test_read_shapes.py``); the times of every answer of the API are
written by ``_time``."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from executions.choices import ActionExecutionStatus, PipelineExecutionStatus, StageExecutionStatus

# --- pipeline state (GetPipelineState) ------------------------------------------------------


class TransitionStateSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
    disabledReason = serializers.CharField(allow_null=True)
    lastChangedBy = serializers.CharField(allow_null=True)
    lastChangedAt = serializers.DateTimeField(allow_null=True)


class StageTransitionSerializer(serializers.Serializer):
    """The answer to a transition change."""

    stageName = serializers.CharField()
    changed = serializers.BooleanField(help_text="False if it already was in that state.")
    inboundTransitionState = TransitionStateSerializer()


class InboundExecutionSerializer(serializers.Serializer):
    pipelineExecutionId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=PipelineExecutionStatus.choices)
    waitingReason = serializers.CharField()
    waitingSince = serializers.DateTimeField(allow_null=True)


class StageLatestExecutionSerializer(serializers.Serializer):
    pipelineExecutionId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=StageExecutionStatus.choices)


class ActionLatestExecutionSerializer(serializers.Serializer):
    actionExecutionId = serializers.UUIDField()
    pipelineExecutionId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ActionExecutionStatus.choices)
    summary = serializers.CharField(allow_blank=True)
    lastStatusChange = serializers.DateTimeField()
    token = serializers.CharField(allow_null=True, help_text="While the action waits to be "
                                  "completed from outside (an approval): its token.")
    externalExecutionUrl = serializers.CharField(allow_null=True)
    externalExecutionId = serializers.CharField(allow_null=True)


class CurrentRevisionSerializer(serializers.Serializer):
    revisionId = serializers.CharField()


class ActionStateSerializer(serializers.Serializer):
    actionName = serializers.CharField()
    currentRevision = CurrentRevisionSerializer(required=False)
    latestExecution = ActionLatestExecutionSerializer(allow_null=True)


_CONDITION_STATE_HELP = ("The stage's {} condition, when it was evaluated for the latest "
                         "execution (CodePipeline's StageConditionState, docs/conditions.md).")


class ConditionStateField(serializers.JSONField):
    """A StageConditionState, its times written as every other time of the API."""

    def to_representation(self, value):
        return _condition_state_data(value)


class RetryStageMetadataSerializer(serializers.Serializer):
    autoStageRetryAttempt = serializers.IntegerField()
    manualStageRetryAttempt = serializers.IntegerField()
    latestRetryTrigger = serializers.CharField()


class StageStateSerializer(serializers.Serializer):
    stageName = serializers.CharField()
    inboundTransitionState = TransitionStateSerializer()
    inboundExecution = InboundExecutionSerializer(
        allow_null=True, help_text="The first of inboundExecutions (as CodePipeline shows one).")
    inboundExecutions = InboundExecutionSerializer(
        many=True, help_text="Executions waiting to enter the stage, oldest first.")
    latestExecution = StageLatestExecutionSerializer(allow_null=True)
    actionStates = ActionStateSerializer(many=True)
    beforeEntryConditionState = ConditionStateField(
        required=False, help_text=_CONDITION_STATE_HELP.format("beforeEntry"))
    onSuccessConditionState = ConditionStateField(
        required=False, help_text=_CONDITION_STATE_HELP.format("onSuccess"))
    onFailureConditionState = ConditionStateField(
        required=False, help_text=_CONDITION_STATE_HELP.format("onFailure"))
    retryStageMetadata = RetryStageMetadataSerializer(
        required=False, help_text="How often the latest execution's stage was retried, "
                                  "automatically (onFailure RETRY) and by hand, and by whom "
                                  "last (CodePipeline's retryStageMetadata; docs/semantics.md "
                                  "§15). Only for a stage that was retried.")


class PipelineStateSerializer(serializers.Serializer):
    pipelineName = serializers.CharField()
    pipelineVersion = serializers.IntegerField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    stageStates = StageStateSerializer(many=True)


_DATETIME = serializers.DateTimeField()


def _time(value, tz=None) -> str | None:
    """A time as the serializers' DateTimeField writes it: in the current time zone
    (``tz``, when the caller looked it up once for many), ISO 8601, UTC as Z."""
    if value is None:
        return None
    if value.tzinfo is None:
        return _DATETIME.to_representation(value)
    text = value.astimezone(tz or timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _or_none(value) -> str | None:
    return None if value is None else str(value)


def pipeline_state_data(state: dict) -> dict:
    """``PipelineStateSerializer(state).data``, built directly: the same JSON, field for
    field and in the same order (``tests/executions/test_read_shapes.py`` compares them).

    GetPipelineState is read on every look at a pipeline; walking the nested
    serializers' fields cost more CPU than building the dicts.
    """
    return {
        "pipelineName": str(state["pipelineName"]),
        "pipelineVersion": int(state["pipelineVersion"]),
        "created": _time(state["created"]),
        "updated": _time(state["updated"]),
        "stageStates": [_stage_state_data(stage) for stage in state["stageStates"]],
    }


def _stage_state_data(stage: dict) -> dict:
    transition = stage["inboundTransitionState"]
    latest = stage["latestExecution"]
    return {
        "stageName": str(stage["stageName"]),
        "inboundTransitionState": _transition_data(transition),
        "inboundExecution": _inbound_data(stage["inboundExecution"]),
        "inboundExecutions": [_inbound_data(ex) for ex in stage["inboundExecutions"]],
        "latestExecution": None if latest is None else {
            "pipelineExecutionId": str(latest["pipelineExecutionId"]),
            "status": latest["status"],
        },
        "actionStates": [_action_state_data(action) for action in stage["actionStates"]],
        **{member: _condition_state_data(stage[member]) for member in _CONDITION_MEMBERS
           if member in stage},
        **({"retryStageMetadata": dict(stage["retryStageMetadata"])}
           if "retryStageMetadata" in stage else {}),
    }


_CONDITION_MEMBERS = ("beforeEntryConditionState", "onSuccessConditionState",
                      "onFailureConditionState")


def _condition_state_data(state: dict) -> dict:
    """A StageConditionState with its times written as the API writes times."""
    def times(value):
        if isinstance(value, dict):
            return {k: _time(v) if k == "lastStatusChange" else times(v)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [times(v) for v in value]
        return value
    return times(state)


def _transition_data(transition: dict) -> dict:
    return {
        "enabled": bool(transition["enabled"]),
        "disabledReason": _or_none(transition["disabledReason"]),
        "lastChangedBy": _or_none(transition["lastChangedBy"]),
        "lastChangedAt": _time(transition["lastChangedAt"]),
    }


def _inbound_data(execution: dict | None) -> dict | None:
    if execution is None:
        return None
    return {
        "pipelineExecutionId": str(execution["pipelineExecutionId"]),
        "status": execution["status"],
        "waitingReason": str(execution["waitingReason"]),
        "waitingSince": _time(execution["waitingSince"]),
    }


def _action_state_data(action: dict) -> dict:
    data: dict = {"actionName": str(action["actionName"])}
    if "currentRevision" in action:
        revision = action["currentRevision"]
        data["currentRevision"] = (None if revision is None
                                   else {"revisionId": str(revision["revisionId"])})
    latest = action["latestExecution"]
    data["latestExecution"] = None if latest is None else {
        "actionExecutionId": str(latest["actionExecutionId"]),
        "pipelineExecutionId": str(latest["pipelineExecutionId"]),
        "status": latest["status"],
        "summary": str(latest["summary"]),
        "lastStatusChange": _time(latest["lastStatusChange"]),
        "token": _or_none(latest["token"]),
        "externalExecutionUrl": _or_none(latest["externalExecutionUrl"]),
        "externalExecutionId": _or_none(latest["externalExecutionId"]),
    }
    return data
