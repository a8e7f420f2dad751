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

from django.db import IntegrityError

from executions import engine
from executions.choices import ExecutionType, RetryMode, TriggerType
from executions.errors import (
    ExecutionConflict,
    ExecutionError,
    ExecutionInvalid,
    ExecutionNotFound,
)
from executions.models import (
    ActionExecution,
    PipelineExecution,
    StageExecution,
)
from executions.refusals import rollback_refusal, transition_refusal
from pipelines import services as pipeline_services
from pipelines.models import Pipeline
from pipelines.validation import validate_document
from pipelines.validation import warnings as problem_warnings

__all__ = [
    "ExecutionConflict", "ExecutionError", "ExecutionInvalid", "ExecutionNotFound",
    "action_complete", "execution_start", "execution_stop",
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
        return engine.execution_create(
            pipeline=pipeline,
            version=version,
            user=user,
            trigger_type=trigger_type,
            trigger_detail=trigger_detail,
            variables=resolved,
            source_revision_overrides=overrides,
            client_request_token=client_request_token or "",
        )
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
    """Stop an execution (docs/semantics.md §7) and return it refreshed.

    - Stop and wait (``abandon=False``): the execution is Stopping; running
      actions finish, nothing new starts, then it is Stopped.
    - Stop and abandon: running actions are Abandoned at once and their
      processes killed; the execution is Stopped.
    - Stopping an execution that is Stopping escalates it when ``abandon``
      (and is a conflict otherwise); an inbound execution stops at once.
    - An execution that has ended is ``ExecutionNotStoppable``; stop and wait
      of one already Stopping is ``StopAlreadyRequested`` (both ExecutionConflict).
    """
    return engine.execution_stop(execution, abandon=abandon, reason=reason, user=user)


def stage_retry(
    *, execution: PipelineExecution, stage_name: str, mode: str, user=None
) -> StageExecution:
    """Retry a Failed or Stopped stage (docs/semantics.md §8); return the new attempt.

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
    return engine.stage_retry(execution, stage_name=stage_name, mode=mode, user=user)


def transition_set(
    *, pipeline: Pipeline, stage_name: str, enabled: bool, reason: str = "", user=None
) -> bool:
    """Enable or disable the transition into a stage; True if it changed.

    Disabling holds arriving executions as the stage's inbound execution
    (SUPERSEDED rules still apply); enabling lets the inbound execution in
    (docs/semantics.md §4). Disabling needs a reason (``ExecutionInvalid`` otherwise); the
    first stage has no transition into it.
    """
    stage = pipeline.stages.filter(name=stage_name).first()
    refusal = transition_refusal(pipeline_name=pipeline.name, stage_name=stage_name,
                                 stage_position=stage.position if stage else None,
                                 enabled=enabled, reason=reason)
    if refusal is not None:
        raise refusal.error()
    try:
        changed = engine.transition_set(
            pipeline, stage_name=stage_name, enabled=enabled, reason=reason, user=user
        )
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
    index, _ = _stage_doc(pipeline.document, stage_name)
    target_stage_status = (
        StageExecution.objects.filter(execution=target_execution, stage_name=stage_name)
        .order_by("-attempt").values_list("status", flat=True).first()
    )
    refusal = rollback_refusal(
        pipeline_name=pipeline.name, pipeline_version=pipeline.version, stage_name=stage_name,
        stage_index=index, target_number=target_execution.number,
        target_execution_id=target_execution.execution_id,
        target_on_pipeline=target_execution.pipeline_id == pipeline.pk,
        target_version=target_execution.pipeline_version.number,
        target_stage_status=target_stage_status)
    if refusal is not None:
        raise refusal.error()
    return engine.execution_create(
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

