"""Every operation that starts, stops or steers executions.

The REST API, the AWS endpoint, the admin, the dashboard and the management
commands call these functions and hold no rules of their own. They check the
request, then hand over to ``executions.engine``, the only module that changes
an execution's, a stage execution's or an action execution's status.

Errors (``executions.errors``): ``ExecutionConflict`` (409),
``ExecutionInvalid`` (400), ``ExecutionNotFound`` (404).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery

from executions import engine
from executions.choices import ExecutionType, RetryMode, TriggerType, WaitingReason
from executions.errors import (
    ExecutionConflict,
    ExecutionError,
    ExecutionInvalid,
    ExecutionNotFound,
    RollbackTargetInvalid,
    RollbackTargetOutdated,
)
from executions.models import (
    ActionExecution,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from executions.prepared import Prepared
from observability.audit import audit_record
from observability.models import AuditAct
from pipelines import services as pipeline_services
from pipelines.models import Action, Pipeline, Stage
from pipelines.validation import validate_document
from pipelines.validation import warnings as problem_warnings

__all__ = [
    "ExecutionConflict", "ExecutionError", "ExecutionInvalid", "ExecutionNotFound",
    "action_complete", "execution_start", "execution_stop", "pipeline_state",
    "stage_retry", "stage_rollback", "transition_set",
]


def execution_start(
    *,
    pipeline: Pipeline,
    user=None,
    trigger_type: str = TriggerType.START_PIPELINE_EXECUTION,
    trigger_detail: str = "",
    variables: dict[str, str] | Iterable[dict] | None = None,
    source_revisions: list[dict] | None = None,
    client_request_token: str | None = None,
) -> PipelineExecution:
    """Start an execution of the pipeline's current version and return it.

    1. ``variables`` override the pipeline's declared defaults, as a dict or as
       CodePipeline's ``[{"name", "value"}]``; an undeclared name, or a declared
       variable with neither default nor value, is ``ExecutionInvalid``.
    2. ``source_revisions`` (``[{"actionName", "revisionType", "revisionValue"}]``)
       must name source actions of the first stage; the source runner uses them.
    3. A pipeline with an action that cannot run here (an AWS-only provider) is
       refused (``ExecutionInvalid``, naming the action).
    4. A repeated ``client_request_token`` answers the execution it started.
    5. The execution pins the current ``PipelineVersion`` and tries to enter the
       first stage at once (it may wait there as the inbound execution).
    """
    if client_request_token:
        existing = PipelineExecution.objects.filter(
            pipeline=pipeline, client_request_token=client_request_token
        ).first()
        if existing is not None:
            return existing
    version = pipeline.current_version
    document = version.document
    not_runnable = problem_warnings(validate_document(document))
    if not_runnable:
        raise ExecutionInvalid(
            "This pipeline cannot run here: " + "; ".join(str(p) for p in not_runnable),
            [(p.path, p.message) for p in not_runnable],
        )
    resolved = _variables(document, variables)
    overrides = _source_overrides(document, source_revisions)
    try:
        with transaction.atomic():
            execution = engine.execution_create(
                pipeline=pipeline,
                version=version,
                user=user,
                trigger_type=trigger_type,
                trigger_detail=trigger_detail,
                variables=resolved,
                source_revision_overrides=overrides,
                client_request_token=client_request_token or "",
            )
            # A person's or a client's start is an act; a push or a poll is not.
            if user is not None or trigger_type == TriggerType.START_PIPELINE_EXECUTION:
                audit_record(action=AuditAct.EXECUTION_START, user=user, execution=execution,
                             reason=trigger_detail,
                             detail={"variables": resolved} if resolved else None)
            return execution
    except IntegrityError:
        # Two starts with one token at once: the other one won; answer its execution.
        if client_request_token:
            existing = PipelineExecution.objects.filter(
                pipeline=pipeline, client_request_token=client_request_token
            ).first()
            if existing is not None:
                return existing
        raise


def execution_stop(
    *, execution: PipelineExecution, abandon: bool = False, reason: str = "", user=None
) -> PipelineExecution:
    """Stop an execution (rule 7) and return it refreshed.

    - Stop and wait (``abandon=False``): the execution is Stopping; running
      actions finish, nothing new starts, then it is Stopped.
    - Stop and abandon: running actions are Abandoned at once and their
      processes killed; the execution is Stopped.
    - Stopping an execution that is Stopping escalates it when ``abandon``
      (and is a conflict otherwise); an inbound execution stops at once.
    - An execution that has ended is ``ExecutionNotStoppable``; stop and wait
      of one already Stopping is ``StopAlreadyRequested`` (both ExecutionConflict).
    """
    with transaction.atomic():
        stopped = engine.execution_stop(execution, abandon=abandon, reason=reason, user=user)
        audit_record(action=AuditAct.EXECUTION_STOP, user=user, execution=stopped,
                     reason=reason, detail={"abandon": bool(abandon)})
    return stopped


def stage_retry(
    *, execution: PipelineExecution, stage_name: str, mode: str, user=None
) -> StageExecution:
    """Retry a Failed or Stopped stage of an execution (rule 8); return the new attempt.

    ``mode`` is ``FAILED_ACTIONS`` (succeeded actions keep their results) or
    ``ALL_ACTIONS``. Refused with an ``ExecutionConflict``: ``ExecutionNotLatest``
    when the execution was superseded or a newer execution has entered that
    stage since; ``StageNotRetryable`` when it is still running or succeeded, or
    the stage's latest attempt did not fail or stop.
    """
    if mode not in RetryMode.values:
        raise ExecutionInvalid(
            f'"{mode}" is not a retry mode: use ' + " or ".join(RetryMode.values),
            [("retryMode", "must be FAILED_ACTIONS or ALL_ACTIONS")],
        )
    _stage_doc(execution.document, stage_name)
    with transaction.atomic():
        attempt = engine.stage_retry(execution, stage_name=stage_name, mode=mode, user=user)
        audit_record(action=AuditAct.STAGE_RETRY, user=user, execution=execution,
                     stage=stage_name, detail={"retryMode": mode, "attempt": attempt.attempt})
    return attempt


def transition_set(
    *, pipeline: Pipeline, stage_name: str, enabled: bool, reason: str = "", user=None
) -> bool:
    """Enable or disable the transition into a stage; True if it changed.

    Disabling holds arriving executions as the stage's inbound execution
    (SUPERSEDED rules still apply); enabling lets the inbound execution in
    (rule 4). Disabling needs a reason (``ExecutionInvalid`` otherwise); the
    first stage has no transition into it.
    """
    stage = pipeline.stages.filter(name=stage_name).first()
    if stage is None:
        raise ExecutionNotFound(f'Pipeline "{pipeline.name}" has no stage "{stage_name}".')
    if stage.position == 0:
        raise ExecutionInvalid(
            f'"{stage_name}" is the first stage: there is no transition into it.',
            [("stageName", "the first stage has no inbound transition")],
        )
    try:
        with transaction.atomic():
            changed = engine.transition_set(
                pipeline, stage_name=stage_name, enabled=enabled, reason=reason, user=user
            )
            if changed:
                audit_record(action=AuditAct.TRANSITION_ENABLE if enabled
                             else AuditAct.TRANSITION_DISABLE,
                             user=user, pipeline=pipeline.name, stage=stage_name, reason=reason)
    except pipeline_services.DefinitionInvalid as exc:
        raise ExecutionInvalid(
            "A reason is required to disable a transition.",
            [(p.path, p.message) for p in exc.problems],
        ) from exc
    return changed


def stage_rollback(
    *, pipeline: Pipeline, stage_name: str, target_execution: PipelineExecution, user=None
) -> PipelineExecution:
    """Roll a stage back (CodePipeline's RollbackStage); return the ROLLBACK execution.

    The new execution (type ROLLBACK, trigger ManualRollback) runs only
    ``stage_name`` again, with the artifacts and variables of
    ``target_execution``. Refused with an ``ExecutionConflict`` when the target
    did not succeed in that stage (``RollbackTargetInvalid``) or ran on another
    pipeline version (``RollbackTargetOutdated``); the source stage cannot be
    rolled back (``ExecutionInvalid``).
    """
    document = pipeline.document
    index, _ = _stage_doc(document, stage_name)
    if index == 0:
        raise ExecutionInvalid(
            f'"{stage_name}" is the source stage: it cannot be rolled back.',
            [("stageName", "the source stage cannot be rolled back")],
        )
    if target_execution.pipeline_id != pipeline.pk:
        raise ExecutionNotFound(
            f"Execution {target_execution.execution_id} is not an execution of "
            f'"{pipeline.name}".'
        )
    if target_execution.pipeline_version.number != pipeline.version:
        raise RollbackTargetOutdated(
            f"Execution #{target_execution.number} ran on version "
            f"{target_execution.pipeline_version.number} of the pipeline, not on the "
            f"current version {pipeline.version}: it cannot be a rollback target."
        )
    succeeded = (
        StageExecution.objects.filter(execution=target_execution, stage_name=stage_name)
        .order_by("-attempt").values_list("status", flat=True).first()
    )
    if succeeded != "Succeeded":
        raise RollbackTargetInvalid(
            f'Execution #{target_execution.number} did not succeed in stage "{stage_name}": '
            "only a successful execution can be a rollback target."
        )
    with transaction.atomic():
        rollback = engine.execution_create(
            pipeline=pipeline,
            version=target_execution.pipeline_version,
            user=user,
            trigger_type=TriggerType.MANUAL_ROLLBACK,
            trigger_detail=f"Rollback of {stage_name} to #{target_execution.number}",
            variables=dict(target_execution.variables),
            source_revision_overrides=[],
            client_request_token="",
            execution_type=ExecutionType.ROLLBACK,
            rollback_target=target_execution,
            rollback_stage_name=stage_name,
        )
        audit_record(action=AuditAct.STAGE_ROLLBACK, user=user, execution=rollback,
                     stage=stage_name,
                     detail={"targetPipelineExecutionId": str(target_execution.execution_id),
                             "targetNumber": target_execution.number})
    return rollback


def action_complete(
    *,
    action_execution: ActionExecution,
    succeeded: bool,
    summary: str = "",
    output_variables: dict[str, str] | None = None,
    external_url: str = "",
) -> bool:
    """Complete a waiting action from outside (approval decision, webhook callback).

    True if this call ended the action; False if it had already ended (a late
    or repeated completion changes nothing).
    """
    return engine.action_complete(
        action_execution.pk,
        succeeded=succeeded,
        summary=summary,
        output_variables=output_variables,
        external_url=external_url,
    )


def pipeline_state(pipeline: Pipeline, *, types: bool = False) -> dict[str, Any]:
    """The pipeline's state in GetPipelineState's shape (times are datetimes).

    ``{"pipelineName", "pipelineVersion", "created", "updated", "stageStates": [
    {"stageName", "inboundTransitionState": {"enabled", "disabledReason",
    "lastChangedBy", "lastChangedAt"}, "inboundExecution" (the first, as AWS),
    "inboundExecutions": [{"pipelineExecutionId", "status", "waitingReason",
    "waitingSince"}], "latestExecution": {"pipelineExecutionId", "status"} | None,
    "actionStates": [{"actionName", "currentRevision", "latestExecution":
    {"actionExecutionId", "status", "summary", "lastStatusChange", "token",
    "externalExecutionUrl", "externalExecutionId"} | None}]}]}``

    ``types``: the inbound and latest executions also carry ``"type"``, the
    execution's STANDARD or ROLLBACK (the ``/aws/`` answer shows it).

    Five queries whatever the history's size, each compiled once per process
    (``executions.prepared``): this is read on every look at a pipeline.
    """
    pk = pipeline.pk
    stages = {row[0]: row for row in _STATE_STAGES(pk)}
    inbound: dict[str, list[dict]] = {}
    for stage_name, execution_id, status, reason, since, kind in _STATE_INBOUND(pk):
        waiting = {"pipelineExecutionId": str(execution_id), "status": status,
                   "waitingReason": _WAITING_REASONS.get(reason, reason),
                   "waitingSince": since}
        if types:
            waiting["type"] = kind
        inbound.setdefault(stage_name, []).append(waiting)
    revisions = dict(_STATE_REVISIONS(pk))
    latest_stages = {row[0]: row for row in _STATE_LATEST_STAGES(pk)}
    latest_actions = {(row[0], row[1]): row for row in _STATE_LATEST_ACTIONS(pk)}
    document_stages = pipeline.document.get("stages", [])
    states = []
    for index, stage_doc in enumerate(document_stages):
        name = stage_doc["name"]
        stage = stages.get(name)
        action_states = []
        for action_doc in stage_doc["actions"]:
            ae = latest_actions.get((name, action_doc["name"]))
            state: dict[str, Any] = {"actionName": action_doc["name"], "latestExecution": None}
            if ae is not None:
                (_, _, action_execution_id, execution_id, status, summary, updated_at,
                 token, waiting_since, external_url, external_id) = ae
                state["latestExecution"] = {
                    "actionExecutionId": str(action_execution_id),
                    "pipelineExecutionId": str(execution_id),
                    "status": status,
                    "summary": summary,
                    "lastStatusChange": updated_at,
                    "token": token if (waiting_since and status == "InProgress") else None,
                    "externalExecutionUrl": external_url or None,
                    "externalExecutionId": external_id or None,
                }
            rev = revisions.get(action_doc["name"]) if index == 0 else None
            if rev is not None:
                state["currentRevision"] = {"revisionId": rev}
            action_states.append(state)
        waiting = inbound.get(name, [])
        latest = latest_stages.get(name)
        latest_execution = None
        if latest is not None:
            latest_execution = {"pipelineExecutionId": str(latest[2]), "status": latest[1]}
            if types:
                latest_execution["type"] = latest[3]
        states.append({
            "stageName": name,
            "inboundTransitionState": {
                "enabled": stage[1] if stage else True,
                "disabledReason": (stage[2] or None) if stage else None,
                "lastChangedBy": (stage[3] or None) if stage else None,
                "lastChangedAt": stage[4] if stage else None,
            },
            "inboundExecution": waiting[0] if waiting else None,
            "inboundExecutions": waiting,
            "latestExecution": latest_execution,
            "actionStates": action_states,
        })
    return {
        "pipelineName": pipeline.name,
        "pipelineVersion": pipeline.version,
        "created": pipeline.created_at,
        "updated": pipeline.updated_at,
        "stageStates": states,
    }


_WAITING_REASONS = {value: str(label) for value, label in WaitingReason.choices}


def _newest_stage_execution():
    """The id of the newest StageExecution of the outer ``pipelines.Stage`` row
    (one probe of ``executions_se_stage_idx``)."""
    return (StageExecution.objects
            .filter(pipeline=OuterRef("pipeline_id"), stage_name=OuterRef("name"))
            .order_by("-id").values("id")[:1])


def _newest_action_execution():
    """The id of the newest ActionExecution of the outer ``pipelines.Action`` row
    (one probe of ``executions_ae_action_idx``)."""
    return (ActionExecution.objects
            .filter(pipeline=OuterRef("stage__pipeline_id"), stage_name=OuterRef("stage__name"),
                    action_name=OuterRef("name"))
            .order_by("-id").values("id")[:1])


_STATE_STAGES = Prepared(lambda pipeline_id: Stage.objects.filter(pipeline_id=pipeline_id)
                         .order_by().values_list(
                             "name", "transition_enabled", "transition_disabled_reason",
                             "transition_changed_by", "transition_changed_at"))
# The inbound executions, oldest first: executions_pe_inbound_idx.
_STATE_INBOUND = Prepared(lambda pipeline_id: PipelineExecution.objects
                          .filter(pipeline_id=pipeline_id).exclude(inbound_stage_name="")
                          .order_by("number").values_list(
                              "inbound_stage_name", "execution_id", "status", "inbound_reason",
                              "inbound_since", "execution_type"))
# The source revisions of the newest execution that has any.
_STATE_REVISIONS = Prepared(lambda pipeline_id: SourceRevision.objects.filter(
    execution=Subquery(PipelineExecution.objects
                       .filter(pipeline_id=pipeline_id, source_revisions__isnull=False)
                       .order_by("-number").values("pk")[:1]))
    .order_by("id").values_list("action_name", "revision_id"))
_STATE_LATEST_STAGES = Prepared(lambda pipeline_id: StageExecution.objects.filter(
    id__in=Stage.objects.filter(pipeline_id=pipeline_id)
    .values(latest=Subquery(_newest_stage_execution())))
    .order_by().values_list("stage_name", "status", "execution__execution_id",
                            "execution__execution_type"))
_STATE_LATEST_ACTIONS = Prepared(lambda pipeline_id: ActionExecution.objects.filter(
    id__in=Action.objects.filter(stage__pipeline_id=pipeline_id)
    .values(latest=Subquery(_newest_action_execution())))
    .order_by().values_list("stage_name", "action_name", "action_execution_id",
                            "execution__execution_id", "status", "summary", "updated_at",
                            "token", "waiting_since", "external_url", "external_id"))


def latest_stage_executions(pipeline_ids: Iterable[int], *,
                            select: tuple[str, ...] = ("execution",)) -> list[StageExecution]:
    """The newest StageExecution of each stage of these pipelines' current definitions.

    One query whatever the history's size: for each ``pipelines.Stage`` row, the
    newest matching row is one probe of ``executions_se_stage_idx`` (a GROUP BY
    over the history would read every stage execution of the pipeline).
    """
    ids = (Stage.objects.filter(pipeline_id__in=list(pipeline_ids))
           .values(latest=Subquery(_newest_stage_execution())))
    return list(StageExecution.objects.filter(id__in=ids).select_related(*select))


def latest_action_executions(pipeline_id: int) -> list[ActionExecution]:
    """The newest ActionExecution of each action of a pipeline's current definition.

    One query whatever the history's size: one probe of ``executions_ae_action_idx``
    per ``pipelines.Action`` row.
    """
    ids = (Action.objects.filter(stage__pipeline_id=pipeline_id)
           .values(latest=Subquery(_newest_action_execution())))
    return list(ActionExecution.objects.filter(id__in=ids).select_related("execution"))


# --- helpers -------------------------------------------------------------------


def _stage_doc(document: dict, stage_name: str) -> tuple[int, dict]:
    for index, stage in enumerate(document.get("stages", [])):
        if stage["name"] == stage_name:
            return index, stage
    raise ExecutionNotFound(f'The pipeline has no stage "{stage_name}".')


def _variables(document: dict, given) -> dict[str, str]:
    """Declared defaults overridden by the values given at start."""
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        pairs = list(given)
        problems = [(f"variables[{i}]", 'must be {"name": ..., "value": ...}')
                    for i, p in enumerate(pairs)
                    if not isinstance(p, dict) or not isinstance(p.get("name"), str)]
        if problems:
            raise ExecutionInvalid("The variables are not name/value pairs.", problems)
        given = {p["name"]: p.get("value", "") for p in pairs}
    declared = {v["name"]: v for v in document.get("variables", [])}
    problems = []
    for name, value in given.items():
        if name not in declared:
            problems.append((f"variables.{name}", f'"{name}" is not a variable of this pipeline'))
        elif not isinstance(value, str):
            problems.append((f"variables.{name}", "must be a string"))
    resolved = {}
    for name, var in declared.items():
        if name in given:
            resolved[name] = given[name]
        elif "defaultValue" in var:
            resolved[name] = var["defaultValue"]
        else:
            problems.append((f"variables.{name}", f'"{name}" has no default value: give one'))
    if problems:
        raise ExecutionInvalid(
            "; ".join(f"{path}: {message}" for path, message in problems), problems
        )
    return resolved


def _source_overrides(document: dict, given: list[dict] | None) -> list[dict]:
    if not given:
        return []
    sources = {a["name"] for a in document["stages"][0]["actions"]}
    problems = []
    for i, item in enumerate(given):
        if not isinstance(item, dict):
            problems.append((f"sourceRevisions[{i}]", "must be an object"))
            continue
        if item.get("actionName") not in sources:
            problems.append((f"sourceRevisions[{i}].actionName",
                             f'"{item.get("actionName")}" is not a source action of this '
                             "pipeline"))
        if not isinstance(item.get("revisionValue"), str) or not item.get("revisionValue"):
            problems.append((f"sourceRevisions[{i}].revisionValue", "is required"))
    if problems:
        raise ExecutionInvalid(
            "; ".join(f"{path}: {message}" for path, message in problems), problems
        )
    return [dict(item) for item in given]

