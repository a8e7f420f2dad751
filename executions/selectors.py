"""Reads every surface shares: pipeline state, history, an execution's source revisions.

Written once, each a function over one compiled query where it is read often
(``executions.prepared``); the REST API, the AWS endpoint, the dashboard, the admin
and the management commands shape their rows and ask nothing else of the database
for these. Writes are in ``executions.services``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef, Subquery

from executions import condition_port
from executions.choices import StageExecutionStatus, WaitingReason
from executions.models import (
    ActionExecution,
    Artifact,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from executions.prepared import Prepared
from pipelines.models import Action, Pipeline, Stage


def pipeline_state(pipeline: Pipeline, *, types: bool = False) -> dict[str, Any]:
    """The pipeline's state in GetPipelineState's shape (times are datetimes).

    ``{"pipelineName", "pipelineVersion", "created", "updated", "stageStates": [
    {"stageName", "inboundTransitionState": {"enabled", "disabledReason",
    "lastChangedBy", "lastChangedAt"}, "inboundExecution" (the first, as AWS),
    "inboundExecutions": [{"pipelineExecutionId", "status", "waitingReason",
    "waitingSince"}], "latestExecution": {"pipelineExecutionId", "status"} | None,
    "actionStates": [{"actionName", "currentRevision", "latestExecution":
    {"actionExecutionId", "status", "summary", "lastStatusChange", "token",
    "externalExecutionUrl", "externalExecutionId"} | None}]}]}``, and for a stage whose
    conditions were evaluated its ``beforeEntryConditionState`` /
    ``onSuccessConditionState`` / ``onFailureConditionState``
    (``conditions.selectors.condition_states``).

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
    conditions: dict[int, dict] = {}
    if condition_port.wired() and any(kind in stage for stage in document_stages
                                      for kind in ("beforeEntry", "onSuccess", "onFailure")):
        # Only pipelines with stage conditions pay for their states (docs/conditions.md).
        conditions = condition_port.port().states([row[4] for row in latest_stages.values()])
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
            # beforeEntryConditionState, onSuccessConditionState, onFailureConditionState
            # of the latest stage execution, those that were evaluated.
            **(conditions.get(latest[4], {}) if latest is not None else {}),
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
                            "execution__execution_type", "id"))
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




def source_revisions(execution_ids: Iterable[int]) -> dict[int, list[SourceRevision]]:
    """The source revisions of each execution, in id order, in one query.

    A rollback's revisions are its target's: ``engine.execution_create`` copies
    them onto the rollback when it starts (docs/semantics.md §12), so every
    execution carries its own rows and no reader looks at the target.
    """
    found: dict[int, list[SourceRevision]] = {pk: [] for pk in execution_ids}
    for revision in SourceRevision.objects.filter(execution_id__in=list(found)).order_by("id"):
        found[revision.execution_id].append(revision)
    return found


def stage_entered_since(execution: PipelineExecution, stage_name: str) -> int | None:
    """The number of the first execution newer than ``execution`` that has entered
    ``stage_name`` (None: none has) — what stops a retry there (§8)."""
    return (StageExecution.objects.filter(
        pipeline_id=execution.pipeline_id, stage_name=stage_name,
        execution__number__gt=execution.number)
        .order_by("execution__number").values_list("execution__number", flat=True).first())


def pipeline_executions(pipeline, *, succeeded_in_stage: str | None = None,
                        before_number: int | None = None):
    """A pipeline's executions, newest first (a QuerySet to slice into pages), with what
    their summaries show (trigger user, rollback target): the AWS endpoint's
    ListPipelineExecutions. ``succeeded_in_stage`` keeps those whose attempt at that stage
    succeeded; ``before_number`` starts after a page's last execution (keyset paging)."""
    executions = (PipelineExecution.objects.filter(pipeline=pipeline)
                  .select_related("triggered_by", "rollback_target")
                  .order_by("-number"))
    if succeeded_in_stage is not None:
        executions = executions.filter(Exists(StageExecution.objects.filter(
            execution=OuterRef("pk"), stage_name=succeeded_in_stage,
            status=StageExecutionStatus.SUCCEEDED)))
    if before_number is not None:
        executions = executions.filter(number__lt=before_number)
    return executions


def execution_rows(ids, fields: tuple[str, ...]) -> list[tuple]:
    """The ``fields`` of these executions, newest first: one query (a history page).

    ``ids``: a list, or the page's slice of a ``values_list("pk", flat=True)``
    QuerySet, read as a subquery of this query (the page is chosen on ids alone).
    """
    return list(PipelineExecution.objects.filter(pk__in=ids).order_by("-number")
                .values_list(*fields))


def revision_rows(execution_ids: Iterable[int], fields: tuple[str, ...]
                  ) -> dict[int, list[tuple]]:
    """The ``fields`` of each execution's source revisions, in id order: one query (none
    for no executions). A rollback's are its target's (§12): its own copied rows."""
    found: dict[int, list[tuple]] = {pk: [] for pk in execution_ids}
    if found:
        for execution_pk, *values in (SourceRevision.objects
                                      .filter(execution_id__in=list(found)).order_by("id")
                                      .values_list("execution_id", *fields)):
            found[execution_pk].append(tuple(values))
    return found


def artifact_producers(pipeline_execution_id: str) -> dict[str, tuple[str, dict]]:
    """Artifact name → (provider, resolved action document) of the action execution that
    produced it in the execution (by UUID), the latest when an action was retried; what
    CodeBuild reads to lay out a clone as CodeBuild does (runners/build.py)."""
    rows = (Artifact.objects.filter(execution__execution_id=pipeline_execution_id)
            .order_by("id").values_list("name", "produced_by__provider",
                                        "produced_by__configuration"))
    return {name: (provider, configuration or {}) for name, provider, configuration in rows}


def artifact_revisions(pipeline_execution_id: str) -> dict[str, str]:
    """Artifact name → the revision its source action resolved in the execution (by UUID);
    what CodeBuild's ``CODEBUILD_SOURCE_VERSION`` variables read."""
    return dict(SourceRevision.objects
                .filter(execution__execution_id=pipeline_execution_id)
                .exclude(artifact_name="").values_list("artifact_name", "revision_id"))
