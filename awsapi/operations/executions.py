"""Operations on executions, over ``executions.services``.

Each function checks the request's shape (as CodePipeline's model declares
it), looks up what it names, calls one service and renders the answer in
CodePipeline's shape: timestamps in epoch seconds, members without a value
left out. The service errors become CodePipeline's exceptions
(``awsapi.errors.service_error``); every rule about what may be started, stopped, retried,
rolled back or let through a transition stays in the services and the engine.
"""

from __future__ import annotations

from django.core.files.storage import storages
from django.db.models import Exists, OuterRef

from awsapi import errors
from awsapi.operations.base import (
    EXECUTION_ID,
    NAME,
    compact,
    epoch,
    field_bool,
    field_enum,
    field_int,
    field_list,
    field_object,
    field_string,
    operation,
    pipeline_named,
    pipeline_page_after,
    pipeline_page_token,
)
from executions import selectors, services
from executions.choices import ExecutionType, RetryMode
from executions.errors import (
    ExecutionError,
    ExecutionInvalid,
)
from executions.models import ActionExecution, Artifact, PipelineExecution
from pipelines import secrets
from pipelines.models import Pipeline
from teams.choices import Act

# The permissions the REST API requires (executions.api.permissions and the
# executions migration 0002_groups): reading needs both view permissions, a
# command its own permission besides.
READ = ("pipelines.view_pipeline", "executions.view_pipelineexecution")
REVISION_TYPES = ("COMMIT_ID", "IMAGE_DIGEST", "S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY")
TRANSITION_TYPES = ("Inbound", "Outbound")
DISABLED_REASON = r"[a-zA-Z0-9!@ \(\)\.\*\?\-]+"
LIST_DEFAULT = 100

def _execution_not_found(pipeline: Pipeline, execution_id: str) -> errors.AwsError:
    return errors.AwsError(
        "PipelineExecutionNotFoundException",
        f"Pipeline execution with id '{execution_id}' does not exist in pipeline "
        f"'{pipeline.name}'.",
    )


def _execution(pipeline: Pipeline, execution_id: str, queryset=None) -> PipelineExecution:
    """An execution of ``pipeline`` by its id (one of another pipeline is not found)."""
    queryset = queryset if queryset is not None else PipelineExecution.objects.all()
    found = queryset.filter(pipeline=pipeline, execution_id=execution_id).first()
    if found is None:
        raise _execution_not_found(pipeline, execution_id)
    return found


def _name(body: dict, member: str) -> str:
    return field_string(body, member, required=True, pattern=NAME, max_length=100)


def _execution_id(body: dict, member: str) -> str:
    return field_string(body, member, required=True, pattern=EXECUTION_ID)


def _trigger(execution: PipelineExecution) -> dict:
    detail = execution.trigger_detail
    if not detail and execution.triggered_by_id:
        detail = execution.triggered_by.get_username()
    return {"triggerType": execution.trigger_type, "triggerDetail": detail[:1024]}


def _rollback_metadata(execution: PipelineExecution) -> dict | None:
    if execution.execution_type != ExecutionType.ROLLBACK or execution.rollback_target is None:
        return None
    return {"rollbackTargetPipelineExecutionId": str(execution.rollback_target.execution_id)}


def _text(value: str) -> str | None:
    """A string member: left out when empty (the model's strings have min length 1)."""
    return value or None


# --- starting and stopping ---------------------------------------------------------


def _variable_overrides(body: dict) -> list[dict]:
    given = []
    for i, item in enumerate(field_list(body, "variables", max_length=50), start=1):
        path = f"variables.{i}.member"
        if not isinstance(item, dict):
            raise errors.validation(f"1 validation error detected: Value at '{path}' failed "
                                    "to satisfy constraint: Member must be an object")
        given.append({
            "name": field_string(item, "name", required=True, max_length=128,
                                 pattern=r"[A-Za-z0-9@\-_]+"),
            "value": field_string(item, "value", required=True, max_length=1000),
        })
    return given


def _source_revisions(body: dict) -> list[dict]:
    given = []
    for item in field_list(body, "sourceRevisions", max_length=50):
        if not isinstance(item, dict):
            raise errors.validation("1 validation error detected: each member of "
                                    "'sourceRevisions' must be an object")
        given.append({
            "actionName": _name(item, "actionName"),
            "revisionType": field_enum(item, "revisionType", REVISION_TYPES, required=True),
            "revisionValue": field_string(item, "revisionValue", required=True,
                                          max_length=1500),
        })
    return given


@operation("StartPipelineExecution", act=Act.OPERATE)
def start_pipeline_execution(caller, body: dict) -> dict:
    """Start the current version; a repeated ``clientRequestToken`` answers the same id.

    botocore fills ``clientRequestToken`` with a fresh UUID when the caller
    gives none (the model marks it an idempotency token), so a retried HTTP
    request never starts a second execution.
    """
    name = _name(body, "name")
    variables = _variable_overrides(body)
    revisions = _source_revisions(body)
    token = field_string(body, "clientRequestToken", pattern=r"[a-zA-Z0-9-]+", max_length=128)
    pipeline = pipeline_named(name)
    try:
        execution = services.execution_start(
            pipeline=pipeline, user=caller.user, variables=variables,
            source_revisions=revisions, client_request_token=token,
        )
    except ExecutionError as exc:
        raise errors.service_error(exc) from None
    return {"pipelineExecutionId": str(execution.execution_id)}


@operation("StopPipelineExecution", act=Act.OPERATE)
def stop_pipeline_execution(caller, body: dict) -> dict:
    pipeline = pipeline_named(_name(body, "pipelineName"))
    execution_id = _execution_id(body, "pipelineExecutionId")
    abandon = bool(field_bool(body, "abandon"))
    reason = field_string(body, "reason", max_length=200) or ""
    execution = _execution(pipeline, execution_id)
    try:
        services.execution_stop(execution=execution, abandon=abandon, reason=reason,
                                user=caller.user)
    except ExecutionError as exc:
        raise errors.service_error(exc) from None
    return {"pipelineExecutionId": str(execution.execution_id)}


# --- reading executions --------------------------------------------------------------


_DETAIL = PipelineExecution.objects.select_related(
    "pipeline", "pipeline_version", "triggered_by", "rollback_target")


@operation("GetPipelineExecution", act=Act.VIEW)
def get_pipeline_execution(caller, body: dict) -> dict:
    pipeline = pipeline_named(_name(body, "pipelineName"))
    execution = _execution(pipeline, _execution_id(body, "pipelineExecutionId"), _DETAIL)
    return {"pipelineExecution": compact({
        "pipelineName": pipeline.name,
        "pipelineVersion": execution.pipeline_version.number,
        "pipelineExecutionId": str(execution.execution_id),
        "status": execution.status,
        "statusSummary": _text(execution.status_summary),
        "artifactRevisions": [
            {
                "name": r.artifact_name or r.action_name,
                "revisionId": r.revision_id,
                "revisionChangeIdentifier": _text(r.revision_change_identifier),
                "revisionSummary": _text(r.revision_summary),
                "created": epoch(r.created_at),
                "revisionUrl": _text(r.revision_url),
            }
            for r in selectors.source_revisions([execution.pk])[execution.pk]
        ],
        "variables": [{"name": name, "resolvedValue": str(value)}
                      for name, value in (execution.variables or {}).items()],
        "trigger": _trigger(execution),
        "executionMode": execution.execution_mode,
        "executionType": execution.execution_type,
        "rollbackMetadata": _rollback_metadata(execution),
    })}


_EXECUTIONS_SALT = "awsapi.ListPipelineExecutions.nextToken"


@operation("ListPipelineExecutions", act=Act.VIEW)
def list_pipeline_executions(caller, body: dict) -> dict:
    """Newest first; ``nextToken`` is the signed number of the last execution sent.

    ``filter.succeededInStage.stageName`` keeps the executions whose latest
    attempt at that stage succeeded.
    """
    pipeline = pipeline_named(_name(body, "pipelineName"))
    limit = field_int(body, "maxResults", minimum=1, maximum=100) or LIST_DEFAULT
    after = pipeline_page_after(body, pipeline, salt=_EXECUTIONS_SALT,
                                operation="ListPipelineExecutions")
    wanted = field_object(body, "filter") or {}
    succeeded_in = field_object(wanted, "succeededInStage")
    executions = selectors.pipeline_executions(
        pipeline,
        succeeded_in_stage=_name(succeeded_in, "stageName") if succeeded_in is not None else None,
        before_number=after)
    page = list(executions[: limit + 1])
    revisions = selectors.source_revisions([ex.pk for ex in page[:limit]])
    answer = {"pipelineExecutionSummaries": [_summary(ex, revisions[ex.pk])
                                             for ex in page[:limit]]}
    if len(page) > limit:
        answer["nextToken"] = pipeline_page_token(pipeline, page[limit - 1].number,
                                                  salt=_EXECUTIONS_SALT)
    return answer


def _summary(execution: PipelineExecution, revisions: list) -> dict:
    stopped = execution.status in ("Stopping", "Stopped")
    return compact({
        "pipelineExecutionId": str(execution.execution_id),
        "status": execution.status,
        "statusSummary": _text(execution.status_summary),
        "startTime": epoch(execution.started_at or execution.created_at),
        "lastUpdateTime": epoch(execution.updated_at),
        "sourceRevisions": [
            {
                "actionName": r.action_name,
                "revisionId": r.revision_id,
                "revisionSummary": _text(r.revision_summary),
                "revisionUrl": _text(r.revision_url),
            }
            for r in revisions
        ],
        "trigger": _trigger(execution),
        "stopTrigger": {"reason": execution.status_summary[:200]} if stopped else None,
        "executionMode": execution.execution_mode,
        "executionType": execution.execution_type,
        "rollbackMetadata": _rollback_metadata(execution),
    })


# --- pipeline state ------------------------------------------------------------------------


def condition_state(state):
    """A StageConditionState (``conditions.selectors.condition_states``) with its times in
    epoch seconds."""
    if isinstance(state, dict):
        return {k: epoch(v) if k == "lastStatusChange" else condition_state(v)
                for k, v in state.items()}
    if isinstance(state, list):
        return [condition_state(v) for v in state]
    return state


@operation("GetPipelineState", act=Act.VIEW)
def get_pipeline_state(caller, body: dict) -> dict:
    """``selectors.pipeline_state`` in CodePipeline's shape.

    Beyond the REST answer, each stage execution carries ``type`` (STANDARD or
    ROLLBACK) and a failed action its ``errorDetails``; Conveyor's own extras
    (why and since when an inbound execution waits) are left out.
    """
    pipeline = pipeline_named(_name(body, "name"))
    state = selectors.pipeline_state(pipeline, types=True)

    def stage_execution(ex: dict | None) -> dict | None:
        if ex is None:
            return None
        return {"pipelineExecutionId": ex["pipelineExecutionId"], "status": ex["status"],
                "type": ex["type"] or ExecutionType.STANDARD}

    def action_state(action: dict) -> dict:
        latest = action["latestExecution"]
        return {
            "actionName": action["actionName"],
            "currentRevision": action.get("currentRevision"),
            "latestExecution": None if latest is None else {
                "actionExecutionId": latest["actionExecutionId"],
                "status": latest["status"],
                "summary": _text(latest["summary"]),
                "lastStatusChange": epoch(latest["lastStatusChange"]),
                "token": latest["token"],
                "externalExecutionId": latest["externalExecutionId"],
                "externalExecutionUrl": latest["externalExecutionUrl"],
                "errorDetails": {"code": "JobFailed", "message": latest["summary"]}
                if latest["status"] == "Failed" else None,
            },
        }

    return compact({
        "pipelineName": state["pipelineName"],
        "pipelineVersion": state["pipelineVersion"],
        "stageStates": [
            {
                "stageName": stage["stageName"],
                "inboundExecution": stage_execution(stage["inboundExecution"]),
                "inboundExecutions": [stage_execution(ex) for ex in stage["inboundExecutions"]],
                "inboundTransitionState": {
                    **stage["inboundTransitionState"],
                    "lastChangedAt": epoch(stage["inboundTransitionState"]["lastChangedAt"]),
                },
                "actionStates": [action_state(a) for a in stage["actionStates"]],
                "latestExecution": stage_execution(stage["latestExecution"]),
                **{member: condition_state(stage[member]) for member in (
                    "beforeEntryConditionState", "onSuccessConditionState",
                    "onFailureConditionState") if member in stage},
                "retryStageMetadata": stage.get("retryStageMetadata"),
            }
            for stage in state["stageStates"]
        ],
        "created": epoch(state["created"]),
        "updated": epoch(state["updated"]),
    })


# --- action executions ----------------------------------------------------------------------


_ACTIONS_SALT = "awsapi.ListActionExecutions.nextToken"


def _s3location(artifact: Artifact | None) -> dict | None:
    """Where an artifact is stored, when its storage is a bucket (django-storages' S3)."""
    if artifact is None:
        return None
    bucket = getattr(storages["artifacts"], "bucket_name", None)
    return {"bucket": bucket, "key": artifact.storage_name} if bucket else None


def _action_doc(document: dict, stage_name: str, action_name: str) -> dict:
    for stage in document.get("stages", []):
        if stage["name"] == stage_name:
            for action in stage.get("actions", []):
                if action["name"] == action_name:
                    return action
    return {}


@operation("ListActionExecutions", act=Act.VIEW)
def list_action_executions(caller, body: dict) -> dict:
    """Every attempt of every action, newest first; ``nextToken`` is the signed last id.

    ``filter.pipelineExecutionId`` keeps one execution's.
    ``filter.latestInPipelineExecution`` also names one execution; with
    ``startTimeRange`` ``Latest`` only the latest attempt of each of its
    actions is listed, with ``All`` every attempt.
    """
    pipeline = pipeline_named(_name(body, "pipelineName"))
    limit = field_int(body, "maxResults", minimum=1, maximum=100) or LIST_DEFAULT
    after = pipeline_page_after(body, pipeline, salt=_ACTIONS_SALT,
                                operation="ListActionExecutions")
    actions = (ActionExecution.objects.filter(pipeline=pipeline)
               .select_related("execution", "execution__pipeline_version")
               .prefetch_related("artifacts").order_by("-id"))
    wanted = field_object(body, "filter") or {}
    if field_string(wanted, "pipelineExecutionId") is not None:
        execution = _execution(pipeline, _execution_id(wanted, "pipelineExecutionId"))
        actions = actions.filter(execution=execution)
    latest_in = field_object(wanted, "latestInPipelineExecution")
    if latest_in is not None:
        execution = _execution(pipeline, _execution_id(latest_in, "pipelineExecutionId"))
        window = field_enum(latest_in, "startTimeRange", ("Latest", "All"), required=True)
        actions = actions.filter(execution=execution)
        if window == "Latest":
            actions = actions.exclude(Exists(ActionExecution.objects.filter(
                execution=OuterRef("execution"), stage_name=OuterRef("stage_name"),
                action_name=OuterRef("action_name"), attempt__gt=OuterRef("attempt"))))
    if after is not None:
        actions = actions.filter(id__lt=after)
    page = list(actions[: limit + 1])
    inputs = _input_artifacts({ae.execution_id for ae in page[:limit]})
    answer = {"actionExecutionDetails": [
        _action_detail(ae, caller.region, inputs) for ae in page[:limit]]}
    if len(page) > limit:
        answer["nextToken"] = pipeline_page_token(pipeline, page[limit - 1].pk,
                                                  salt=_ACTIONS_SALT)
    return answer


def _input_artifacts(execution_pks: set[int]) -> dict[tuple[int, str], Artifact]:
    """The latest artifact of each name per execution (what a downstream action reads)."""
    latest: dict[tuple[int, str], Artifact] = {}
    for artifact in Artifact.objects.filter(execution_id__in=execution_pks).order_by("id"):
        latest[(artifact.execution_id, artifact.name)] = artifact
    return latest


def _action_detail(ae: ActionExecution, region: str,
                   inputs: dict[tuple[int, str], Artifact]) -> dict:
    ex = ae.execution
    doc = _action_doc(ex.pipeline_version.document, ae.stage_name, ae.action_name)
    type_id = doc.get("actionTypeId") or {}
    # What the runner received, references resolved: set when a worker claimed it.
    resolved = (ae.configuration or {}).get("configuration") if ae.configuration else None
    started = ae.started_at or ae.created_at
    failed = ae.status == "Failed"
    return compact({
        "pipelineExecutionId": str(ex.execution_id),
        "actionExecutionId": str(ae.action_execution_id),
        "pipelineVersion": ex.pipeline_version.number,
        "stageName": ae.stage_name,
        "actionName": ae.action_name,
        "startTime": epoch(started),
        "lastUpdateTime": epoch(ae.updated_at),
        "status": ae.status,
        "input": {
            "actionTypeId": {"category": ae.category, "owner": ae.owner,
                             "provider": ae.provider,
                             "version": str(type_id.get("version", "1"))},
            # Secret values as "****", as AWS shows them (pipelines.secrets).
            "configuration": {k: str(v) for k, v in
                              secrets.mask(doc.get("configuration") or {}).items()},
            "resolvedConfiguration": ({k: str(v) for k, v in secrets.mask(resolved).items()}
                                      if isinstance(resolved, dict) else None),
            "roleArn": doc.get("roleArn"),
            "region": doc.get("region") or region,
            "inputArtifacts": [
                {"name": a["name"], "s3location": _s3location(inputs.get((ex.pk, a["name"])))}
                for a in doc.get("inputArtifacts", [])
            ],
            "namespace": ae.namespace or None,
        },
        "output": {
            "outputArtifacts": [{"name": a.name, "s3location": _s3location(a)}
                                for a in ae.artifacts.all()],
            "executionResult": {
                "externalExecutionId": ae.external_id or None,
                "externalExecutionSummary": _text(ae.summary),
                "externalExecutionUrl": ae.external_url or None,
                "errorDetails": {"code": "JobFailed", "message": ae.summary} if failed else None,
            },
            "outputVariables": {k: str(v) for k, v in (ae.output_variables or {}).items()},
        },
    })


# --- steering: retry, transitions, rollback ---------------------------------------------------


@operation("RetryStageExecution", act=Act.OPERATE)
def retry_stage_execution(caller, body: dict) -> dict:
    pipeline = pipeline_named(_name(body, "pipelineName"))
    stage_name = _name(body, "stageName")
    execution_id = _execution_id(body, "pipelineExecutionId")
    mode = field_enum(body, "retryMode", RetryMode.values, required=True)
    execution = _execution(pipeline, execution_id)
    try:
        services.stage_retry(execution=execution, stage_name=stage_name, mode=mode,
                             user=caller.user)
    except ExecutionError as exc:
        raise errors.service_error(exc) from None
    return {"pipelineExecutionId": str(execution.execution_id)}


def _transition_stage(pipeline: Pipeline, stage_name: str, transition_type: str) -> str:
    """The stage whose gate a transition is: an Outbound transition is the next stage's Inbound.

    Conveyor keeps one gate between two stages, the one into the later stage.
    """
    if transition_type == "Inbound":
        return stage_name
    names = list(pipeline.stages.order_by("position").values_list("name", flat=True))
    if stage_name not in names:
        raise errors.AwsError("StageNotFoundException",
                              f"Stage '{stage_name}' does not exist in pipeline "
                              f"'{pipeline.name}'.")
    index = names.index(stage_name)
    if index + 1 == len(names):
        raise errors.validation(f"'{stage_name}' is the last stage: there is no transition "
                                "out of it.")
    return names[index + 1]


def _transition(caller, body: dict, *, enabled: bool) -> dict:
    pipeline = pipeline_named(_name(body, "pipelineName"))
    stage_name = _name(body, "stageName")
    transition_type = field_enum(body, "transitionType", TRANSITION_TYPES, required=True)
    reason = ""
    if not enabled:
        reason = field_string(body, "reason", required=True, pattern=DISABLED_REASON,
                              max_length=300)
    try:
        services.transition_set(
            pipeline=pipeline, stage_name=_transition_stage(pipeline, stage_name,
                                                            transition_type),
            enabled=enabled, reason=reason, user=caller.user)
    except ExecutionError as exc:
        raise errors.service_error(exc) from None
    return {}


@operation("EnableStageTransition", act=Act.OPERATE)
def enable_stage_transition(caller, body: dict) -> dict:
    return _transition(caller, body, enabled=True)


@operation("DisableStageTransition", act=Act.OPERATE)
def disable_stage_transition(caller, body: dict) -> dict:
    return _transition(caller, body, enabled=False)


@operation("RollbackStage", act=Act.OPERATE)
def rollback_stage(caller, body: dict) -> dict:
    pipeline = pipeline_named(_name(body, "pipelineName"))
    stage_name = _name(body, "stageName")
    target = _execution(pipeline, _execution_id(body, "targetPipelineExecutionId"),
                        PipelineExecution.objects.select_related("pipeline_version"))
    try:
        execution = services.stage_rollback(pipeline=pipeline, stage_name=stage_name,
                                            target_execution=target, user=caller.user)
    except ExecutionInvalid as exc:
        # The one invalid request here is rolling back the source stage: CodePipeline
        # answers that it cannot roll the stage back.
        raise errors.AwsError("UnableToRollbackStageException", exc.detail) from None
    except ExecutionError as exc:
        raise errors.service_error(exc) from None
    return {"pipelineExecutionId": str(execution.execution_id)}
