"""Serializers of the executions API, in CodePipeline's shapes and camelCase names.

Output serializers render model rows (or, for the pipeline state, the dict
``selectors.pipeline_state`` builds); input serializers only check the shape of
a request body: every rule about what may be started, stopped or retried lives
in ``executions.services``. Times are ISO 8601 strings (as aws-cli v2 prints
them); the API shows UUIDs and per-pipeline numbers, never primary keys.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from executions.api.state import _time
from executions.choices import (
    ActionExecutionStatus,
    EventKind,
    ExecutionType,
    PipelineExecutionStatus,
    RetryMode,
    StageExecutionStatus,
    TriggerType,
)
from executions.models import ActionExecution, ExecutionEvent, PipelineExecution
from pipelines import secrets
from pipelines.api.serializers import ActionTypeIdSerializer
from pipelines.choices import ExecutionMode

# --- requests --------------------------------------------------------------------------

REVISION_TYPES = ["COMMIT_ID", "IMAGE_DIGEST", "S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"]


class PipelineVariableInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    value = serializers.CharField(max_length=1000, allow_blank=True)


class SourceRevisionInputSerializer(serializers.Serializer):
    actionName = serializers.CharField(max_length=100, help_text="A source action of the "
                                       "first stage.")
    revisionType = serializers.ChoiceField(choices=REVISION_TYPES, default="COMMIT_ID")
    revisionValue = serializers.CharField(max_length=1500)


class ExecutionStartSerializer(serializers.Serializer):
    """StartPipelineExecution's request."""

    variables = PipelineVariableInputSerializer(
        many=True, required=False, help_text="Values for the pipeline's declared variables; "
        "the others keep their defaults.")
    sourceRevisions = SourceRevisionInputSerializer(
        many=True, required=False, help_text="The revision a source action uses instead of "
        "the latest one.")
    clientRequestToken = serializers.CharField(
        max_length=128, required=False, allow_blank=True,
        help_text="Idempotency token: a start repeated with the same token answers the "
        "execution the first one started.")


class ExecutionStartedSerializer(serializers.Serializer):
    pipelineExecutionId = serializers.UUIDField()


class ExecutionStopSerializer(serializers.Serializer):
    """StopPipelineExecution's request."""

    abandon = serializers.BooleanField(
        default=False, help_text="False: running actions finish, nothing new starts (Stopping, "
        "then Stopped). True: running actions are Abandoned at once and their processes "
        "killed. A Stopping execution may be stopped again with abandon to escalate.")
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True,
                                   default="")


class StageRetrySerializer(serializers.Serializer):
    """RetryStageExecution's request."""

    retryMode = serializers.ChoiceField(choices=RetryMode.choices)


class StageRetriedSerializer(serializers.Serializer):
    pipelineExecutionId = serializers.UUIDField()
    stageName = serializers.CharField()
    attempt = serializers.IntegerField(help_text="The new attempt of the stage (1 = the first).")
    status = serializers.ChoiceField(choices=StageExecutionStatus.choices)


class StageRollbackSerializer(serializers.Serializer):
    """RollbackStage's request (the pipeline and the stage are in the path)."""

    targetPipelineExecutionId = serializers.UUIDField(
        help_text="An earlier execution that succeeded in the stage on the current pipeline "
        "version: its artifacts and variables are used again.")


class TransitionSetSerializer(serializers.Serializer):
    """Enable or disable the inbound transition of a stage."""

    enabled = serializers.BooleanField()
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True,
                                   default="", help_text="Required to disable.")


# --- executions -------------------------------------------------------------------------------


class TriggerSerializer(serializers.Serializer):
    triggerType = serializers.ChoiceField(choices=TriggerType.choices)
    triggerDetail = serializers.CharField(
        allow_blank=True, help_text="Who or what started the execution.")


class SourceRevisionSummarySerializer(serializers.Serializer):
    actionName = serializers.CharField(source="action_name")
    revisionId = serializers.CharField(source="revision_id")
    revisionSummary = serializers.CharField(source="revision_summary")
    revisionUrl = serializers.CharField(source="revision_url")


class ArtifactRevisionSerializer(serializers.Serializer):
    name = serializers.SerializerMethodField()
    revisionId = serializers.CharField(source="revision_id")
    revisionChangeIdentifier = serializers.CharField(source="revision_change_identifier")
    revisionSummary = serializers.CharField(source="revision_summary")
    revisionUrl = serializers.CharField(source="revision_url")
    created = serializers.DateTimeField(source="created_at")

    def get_name(self, revision) -> str:
        """The source action's output artifact (its action's name if it has none)."""
        return revision.artifact_name or revision.action_name


class RollbackMetadataSerializer(serializers.Serializer):
    rollbackTargetPipelineExecutionId = serializers.UUIDField()
    stageName = serializers.CharField()


class ExecutionVariableSerializer(serializers.Serializer):
    name = serializers.CharField()
    resolvedValue = serializers.CharField(allow_blank=True)


def _trigger(execution: PipelineExecution) -> dict:
    detail = execution.trigger_detail
    if not detail and execution.triggered_by_id:
        detail = execution.triggered_by.get_username()
    return {"triggerType": execution.trigger_type, "triggerDetail": detail}


def _rollback(execution: PipelineExecution) -> dict | None:
    if execution.execution_type != ExecutionType.ROLLBACK or execution.rollback_target is None:
        return None
    return {"rollbackTargetPipelineExecutionId": str(execution.rollback_target.execution_id),
            "stageName": execution.rollback_stage_name}


class PipelineExecutionSummarySerializer(serializers.ModelSerializer):
    """A row of ListPipelineExecutions (PipelineExecutionSummary, plus the number)."""

    pipelineExecutionId = serializers.UUIDField(source="execution_id")
    status = serializers.ChoiceField(choices=PipelineExecutionStatus.choices)
    statusSummary = serializers.CharField(source="status_summary")
    startTime = serializers.DateTimeField(source="started_at", allow_null=True)
    lastUpdateTime = serializers.DateTimeField(source="updated_at")
    endTime = serializers.DateTimeField(source="ended_at", allow_null=True,
                                        help_text="Null until the execution ends.")
    sourceRevisions = SourceRevisionSummarySerializer(source="source_revisions", many=True)
    trigger = serializers.SerializerMethodField()
    executionMode = serializers.ChoiceField(source="execution_mode",
                                            choices=ExecutionMode.choices)
    executionType = serializers.ChoiceField(source="execution_type",
                                            choices=ExecutionType.choices)
    rollbackMetadata = serializers.SerializerMethodField()

    class Meta:
        model = PipelineExecution
        fields = ["pipelineExecutionId", "number", "status", "statusSummary", "startTime",
                  "lastUpdateTime", "endTime", "sourceRevisions", "trigger", "executionMode",
                  "executionType", "rollbackMetadata"]

    @extend_schema_field(TriggerSerializer)
    def get_trigger(self, execution):
        return _trigger(execution)

    @extend_schema_field(RollbackMetadataSerializer(allow_null=True))
    def get_rollbackMetadata(self, execution):  # noqa: N802 (the API field's name)
        return _rollback(execution)


# The columns ``execution_summary_data`` reads, for ``values_list(*SUMMARY_FIELDS)``.
SUMMARY_FIELDS = (
    "pk", "execution_id", "number", "status", "status_summary", "started_at", "updated_at",
    "ended_at", "trigger_type", "trigger_detail", "triggered_by_id", "triggered_by__username",
    "execution_mode", "execution_type", "rollback_target__execution_id",
    "rollback_stage_name",
)
# And those of its source revisions (``SourceRevision``, in id order).
SUMMARY_REVISION_FIELDS = ("action_name", "revision_id", "revision_summary", "revision_url")


def execution_summary_data(row: tuple, revisions: list[tuple], tz=None) -> dict:
    """``PipelineExecutionSummarySerializer(execution).data`` from a ``SUMMARY_FIELDS`` row
    and its ``SUMMARY_REVISION_FIELDS`` rows, built directly: the same JSON, field for
    field and in the same order (``tests/executions/test_read_shapes.py`` compares them),
    without loading the executions' JSON columns or walking 12 fields × 50 rows of
    serializer machinery.
    """
    (_, execution_id, number, status, status_summary, started_at, updated_at, ended_at,
     trigger_type, trigger_detail, triggered_by_id, username, execution_mode, execution_type,
     rollback_target, rollback_stage_name) = row
    if not trigger_detail and triggered_by_id:
        trigger_detail = username
    return {
        "pipelineExecutionId": str(execution_id),
        "number": int(number),
        "status": status,
        "statusSummary": str(status_summary),
        "startTime": _time(started_at, tz),
        "lastUpdateTime": _time(updated_at, tz),
        "endTime": _time(ended_at, tz),
        "sourceRevisions": [
            {"actionName": str(action_name), "revisionId": str(revision_id),
             "revisionSummary": str(summary), "revisionUrl": str(url)}
            for action_name, revision_id, summary, url in revisions
        ],
        "trigger": {"triggerType": trigger_type, "triggerDetail": trigger_detail},
        "executionMode": execution_mode,
        "executionType": execution_type,
        "rollbackMetadata": {"rollbackTargetPipelineExecutionId": str(rollback_target),
                             "stageName": rollback_stage_name}
        if execution_type == ExecutionType.ROLLBACK and rollback_target is not None else None,
    }


class ExecutionActionLatestSerializer(serializers.Serializer):
    actionExecutionId = serializers.UUIDField()
    attempt = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ActionExecutionStatus.choices)
    summary = serializers.CharField(allow_blank=True)
    startTime = serializers.DateTimeField()
    endTime = serializers.DateTimeField(allow_null=True)
    externalExecutionUrl = serializers.CharField(allow_null=True)


class ExecutionActionSerializer(serializers.Serializer):
    actionName = serializers.CharField()
    runOrder = serializers.IntegerField()
    latestExecution = ExecutionActionLatestSerializer(
        allow_null=True, help_text="The action's latest attempt in this execution; null if "
        "it has not started.")


class ExecutionStageSerializer(serializers.Serializer):
    stageName = serializers.CharField()
    status = serializers.ChoiceField(choices=StageExecutionStatus.choices, allow_null=True,
                                     help_text="The latest attempt's; null if not entered.")
    statusSummary = serializers.CharField(allow_blank=True)
    attempt = serializers.IntegerField(allow_null=True)
    retryMode = serializers.ChoiceField(choices=RetryMode.choices, allow_null=True)
    startTime = serializers.DateTimeField(allow_null=True)
    endTime = serializers.DateTimeField(allow_null=True)
    actions = ExecutionActionSerializer(many=True)


def _start_time(ae: ActionExecution):
    # A worker's start; while the action waits for a worker, when the engine started it.
    return ae.started_at or ae.created_at


def _stages(execution: PipelineExecution) -> list[dict]:
    """Every stage of the pinned document with its latest attempt and its actions'.

    Reads the prefetched ``stage_executions`` and ``action_executions`` only.
    A FAILED_ACTIONS retry shows the earlier attempt of an action it did not run.
    """
    latest_stage: dict[str, object] = {}
    for se in execution.stage_executions.all():
        if se.stage_name not in latest_stage or se.attempt > latest_stage[se.stage_name].attempt:
            latest_stage[se.stage_name] = se
    latest_action: dict[tuple[str, str], ActionExecution] = {}
    for ae in execution.action_executions.all():
        key = (ae.stage_name, ae.action_name)
        if key not in latest_action or ae.attempt > latest_action[key].attempt:
            latest_action[key] = ae
    stages = []
    for stage_doc in execution.pipeline_version.document.get("stages", []):
        se = latest_stage.get(stage_doc["name"])
        actions = []
        for action_doc in stage_doc.get("actions", []):
            ae = latest_action.get((stage_doc["name"], action_doc["name"]))
            actions.append({
                "actionName": action_doc["name"],
                "runOrder": action_doc.get("runOrder", 1),
                "latestExecution": None if ae is None else {
                    "actionExecutionId": ae.action_execution_id,
                    "attempt": ae.attempt,
                    "status": ae.status,
                    "summary": ae.summary,
                    "startTime": _start_time(ae),
                    "endTime": ae.ended_at,
                    "externalExecutionUrl": ae.external_url or None,
                },
            })
        stages.append({
            "stageName": stage_doc["name"],
            "status": se.status if se else None,
            "statusSummary": se.status_summary if se else "",
            "attempt": se.attempt if se else None,
            "retryMode": (se.retry_mode or None) if se else None,
            "startTime": se.started_at if se else None,
            "endTime": se.ended_at if se else None,
            "actions": actions,
        })
    return stages


class PipelineExecutionSerializer(PipelineExecutionSummarySerializer):
    """GetPipelineExecution's pipelineExecution, with the number, the stages and their actions."""

    pipelineName = serializers.CharField(source="pipeline.name")
    pipelineVersion = serializers.IntegerField(source="pipeline_version.number")
    artifactRevisions = ArtifactRevisionSerializer(source="source_revisions", many=True)
    variables = serializers.SerializerMethodField()
    stages = serializers.SerializerMethodField()

    class Meta:
        model = PipelineExecution
        fields = ["pipelineExecutionId", "pipelineName", "pipelineVersion", "number", "status",
                  "statusSummary", "executionMode", "executionType", "trigger",
                  "artifactRevisions", "variables", "startTime", "lastUpdateTime", "endTime",
                  "rollbackMetadata", "stages"]

    @extend_schema_field(ExecutionVariableSerializer(many=True))
    def get_variables(self, execution):
        # In the order the pinned document declares them (jsonb keeps no key order).
        values = dict(execution.variables or {})
        declared = [v["name"] for v in execution.pipeline_version.document.get("variables", [])
                    if v.get("name") in values]
        names = declared + sorted(set(values) - set(declared))
        return [{"name": name, "resolvedValue": str(values[name])} for name in names]

    @extend_schema_field(ExecutionStageSerializer(many=True))
    def get_stages(self, execution):
        return ExecutionStageSerializer(_stages(execution), many=True).data


# --- action executions (ListActionExecutions) -----------------------------------------------


class ArtifactNameSerializer(serializers.Serializer):
    name = serializers.CharField()


class ActionInputSerializer(serializers.Serializer):
    actionTypeId = ActionTypeIdSerializer()
    configuration = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        help_text="As declared, with its #{...} references.")
    resolvedConfiguration = serializers.DictField(
        child=serializers.CharField(allow_blank=True), allow_null=True,
        help_text="With every reference resolved; null until a worker has started the action.")
    namespace = serializers.CharField(allow_null=True)
    inputArtifacts = ArtifactNameSerializer(many=True)


class OutputArtifactSerializer(serializers.Serializer):
    name = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes of the stored archive.")
    fileCount = serializers.IntegerField()


class ExecutionResultSerializer(serializers.Serializer):
    externalExecutionId = serializers.CharField(allow_null=True)
    externalExecutionSummary = serializers.CharField(allow_blank=True)
    externalExecutionUrl = serializers.CharField(allow_null=True)


class ActionOutputSerializer(serializers.Serializer):
    outputArtifacts = OutputArtifactSerializer(many=True)
    executionResult = ExecutionResultSerializer()
    outputVariables = serializers.DictField(child=serializers.CharField(allow_blank=True))


def _action_doc(ae: ActionExecution) -> dict:
    for stage in ae.execution.pipeline_version.document.get("stages", []):
        if stage["name"] == ae.stage_name:
            for action in stage.get("actions", []):
                if action["name"] == ae.action_name:
                    return action
    return {}


class ActionExecutionSerializer(serializers.ModelSerializer):
    """An ActionExecutionDetail: one attempt of one action."""

    actionExecutionId = serializers.UUIDField(source="action_execution_id")
    pipelineExecutionId = serializers.UUIDField(source="execution.execution_id")
    pipelineVersion = serializers.IntegerField(source="execution.pipeline_version.number")
    stageName = serializers.CharField(source="stage_name")
    actionName = serializers.CharField(source="action_name")
    status = serializers.ChoiceField(choices=ActionExecutionStatus.choices)
    startTime = serializers.SerializerMethodField()
    lastUpdateTime = serializers.DateTimeField(source="updated_at")
    endTime = serializers.DateTimeField(source="ended_at", allow_null=True,
                                        help_text="Null until the action ends.")
    outputVariables = serializers.DictField(source="output_variables",
                                            child=serializers.CharField(allow_blank=True))
    externalExecutionUrl = serializers.SerializerMethodField()
    input = serializers.SerializerMethodField()
    output = serializers.SerializerMethodField()

    class Meta:
        model = ActionExecution
        fields = ["actionExecutionId", "pipelineExecutionId", "pipelineVersion", "stageName",
                  "actionName", "attempt", "status", "startTime", "lastUpdateTime", "endTime",
                  "summary", "outputVariables", "externalExecutionUrl", "input", "output"]

    @extend_schema_field(serializers.DateTimeField(
        help_text="When a worker started it (until then: when the engine started it)."))
    def get_startTime(self, ae):  # noqa: N802
        return serializers.DateTimeField().to_representation(_start_time(ae))

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_externalExecutionUrl(self, ae):  # noqa: N802
        return ae.external_url or None

    @extend_schema_field(ActionInputSerializer)
    def get_input(self, ae):
        doc = _action_doc(ae)
        type_id = doc.get("actionTypeId") or {}
        # ae.configuration is the whole action document as the worker resolved it at
        # its claim; empty until then.
        resolved = (ae.configuration.get("configuration") or {}) if ae.configuration else None
        return secrets.mask({  # secret values as "****" (pipelines.secrets)
            "actionTypeId": {"category": ae.category, "owner": ae.owner,
                             "provider": ae.provider, "version": str(type_id.get("version", "1"))},
            "configuration": doc.get("configuration") or {},
            "resolvedConfiguration": resolved,
            "namespace": ae.namespace or None,
            "inputArtifacts": [{"name": a["name"]} for a in doc.get("inputArtifacts", [])],
        })

    @extend_schema_field(ActionOutputSerializer)
    def get_output(self, ae):
        return {
            "outputArtifacts": [
                {"name": a.name, "sha256": a.sha256, "size": a.size, "fileCount": a.file_count}
                for a in ae.artifacts.all()
            ],
            "executionResult": {"externalExecutionId": ae.external_id or None,
                                "externalExecutionSummary": ae.summary,
                                "externalExecutionUrl": ae.external_url or None},
            "outputVariables": ae.output_variables or {},
        }


class LogPieceSerializer(serializers.Serializer):
    """A piece of a log (``executions.api.logs.LogPiece``), from a byte offset; the logs
    of actions and of Commands rules add whose it is."""

    offset = serializers.IntegerField(help_text="The byte offset this text starts at.")
    nextOffset = serializers.IntegerField(help_text="Ask again from here for what follows.")
    size = serializers.IntegerField(help_text="The log's size in bytes when it was read.")
    text = serializers.CharField(allow_blank=True, help_text="UTF-8 text, whole characters "
                                 "only; each line starts with a UTC timestamp.")
    complete = serializers.BooleanField(
        help_text="True once its writer has ended and the text reaches the end of the log: "
        "nothing more will be written.")

    @classmethod
    def answer(cls, piece, **whose) -> dict:
        """The answer's data: ``whose`` (the id and status) and the piece."""
        return cls({**whose, "offset": piece.offset, "nextOffset": piece.next_offset,
                    "size": piece.size, "text": piece.text, "complete": piece.complete}).data


class ActionLogSerializer(LogPieceSerializer):
    """A piece of an action's log, from a byte offset."""

    actionExecutionId = serializers.UUIDField()
    status = serializers.ChoiceField(choices=ActionExecutionStatus.choices)


class ExecutionEventSerializer(serializers.ModelSerializer):
    """One ExecutionEvent: a status change (or an inbound wait, or a transition change)."""

    sequence = serializers.IntegerField(source="id", help_text="Pass it as ?after= to resume.")
    time = serializers.DateTimeField(source="created_at")
    kind = serializers.ChoiceField(choices=EventKind.choices)
    pipelineExecutionId = serializers.SerializerMethodField()
    stageName = serializers.CharField(source="stage_name")
    actionName = serializers.CharField(source="action_name")
    actionExecutionId = serializers.SerializerMethodField()
    previousStatus = serializers.CharField(source="previous_status")
    status = serializers.CharField()
    summary = serializers.CharField()
    data = serializers.DictField()

    class Meta:
        model = ExecutionEvent
        fields = ["sequence", "time", "kind", "pipelineExecutionId", "stageName", "actionName",
                  "actionExecutionId", "previousStatus", "status", "summary", "data"]

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_pipelineExecutionId(self, event):  # noqa: N802
        return self.context.get("execution_uuid")

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_actionExecutionId(self, event):  # noqa: N802
        return self.context.get("action_uuids", {}).get(event.action_execution_id)
