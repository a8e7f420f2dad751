"""The executions API: thin views over ``executions.services``.

Reads are read-only list and detail views; each command is one small view
that calls one service. Execution ids are the UUIDs (``pipelineExecutionId``),
action execution ids the ``actionExecutionId`` UUIDs. The service errors map to
the one error body (``config.api_errors``): a state conflict answers 409.

Paths (docs/api-executions.md):

- ``GET /api/pipelines/{name}/state/`` — GetPipelineState;
- ``POST /api/pipelines/{name}/stages/{stage}/transition/`` — enable/disable;
- ``POST /api/pipelines/{name}/stages/{stage}/rollback/`` — RollbackStage
  (``{"targetPipelineExecutionId"}``; pipeline-level like CodePipeline's, since
  the execution it creates is a new one of the pipeline, not of the target);
- ``GET POST /api/pipelines/{name}/executions/`` — list, start;
- ``GET /api/executions/{id}/``, ``POST …/stop/``, ``POST …/stages/{stage}/retry/``;
- ``GET /api/executions/{id}/actions/``, ``…/events/?after=SEQ``,
  ``…/artifacts/{name}/`` (the stored zip);
- ``GET /api/action-executions/{id}/log/?offset=N``.
"""

from __future__ import annotations

import uuid

from django.http import FileResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from executions import artifacts as artifact_storage
from executions import selectors, services
from executions.api import logs
from executions.api.filters import ActionExecutionFilter, PipelineExecutionFilter
from executions.api.permissions import ExecutionPermissions
from executions.api.serializers import (
    SUMMARY_FIELDS,
    SUMMARY_REVISION_FIELDS,
    ActionExecutionSerializer,
    ActionLogSerializer,
    ExecutionEventSerializer,
    ExecutionStartedSerializer,
    ExecutionStartSerializer,
    ExecutionStopSerializer,
    PipelineExecutionSerializer,
    PipelineExecutionSummarySerializer,
    StageRetriedSerializer,
    StageRetrySerializer,
    StageRollbackSerializer,
    TransitionSetSerializer,
    execution_summary_data,
)
from executions.api.state import (
    PipelineStateSerializer,
    StageTransitionSerializer,
    pipeline_state_data,
)
from executions.models import (
    ActionExecution,
    Artifact,
    ExecutionEvent,
    PipelineExecution,
)
from pipelines.api.serializers import ErrorSerializer
from pipelines.models import Pipeline
from teams.access import pipeline_require, pipelines_q
from teams.choices import Act

# --- OpenAPI pieces ----------------------------------------------------------------------

NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH,
                        description="The pipeline's name.")
STAGE = OpenApiParameter("stage", OpenApiTypes.STR, OpenApiParameter.PATH,
                         description="The stage's name.")
EXECUTION = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH,
                             description="The execution's pipelineExecutionId.")
ACTION_EXECUTION = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                    description="The actionExecutionId.")
ARTIFACT = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH,
                            description="The output artifact's name.")

ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not signed in."),
    403: OpenApiResponse(ErrorSerializer, description="Missing permission."),
    404: OpenApiResponse(ErrorSerializer, description="No such pipeline, stage or execution."),
}
COMMAND_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="The request is invalid: each problem "
                         "with its path."),
    409: OpenApiResponse(ErrorSerializer, description="The request conflicts with the "
                         "execution's state; detail says why."),
    **ERRORS,
}


# --- lookups --------------------------------------------------------------------------------


def _pipeline(request, name: str, act: str = Act.VIEW) -> Pipeline:
    """The pipeline if the caller may ``act`` with it: 404 not visible, 403 not allowed."""
    return pipeline_require(request.user, Pipeline.objects.filter(name=name).first(), act,
                            name=name)


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f'No {what} has the id "{value}".') from None


def _execution(request, execution_id: str, queryset=None,
               act: str = Act.VIEW) -> PipelineExecution:
    """The execution if the caller may ``act`` with its pipeline: 404 when it does not
    exist or its pipeline is not visible, 403 when visible but the act not allowed."""
    queryset = queryset if queryset is not None else PipelineExecution.objects.all()
    found = (queryset.filter(pipelines_q(request.user, Act.VIEW, "pipeline__"))
             .filter(execution_id=_uuid(execution_id, "execution")).first())
    if found is None:
        raise NotFound(f'No execution has the id "{execution_id}".')
    if act != Act.VIEW:
        pipeline_require(request.user, found.pipeline, act)
    return found


DETAIL_QUERYSET = (
    PipelineExecution.objects
    .select_related("pipeline", "pipeline_version", "triggered_by", "rollback_target")
    .prefetch_related("source_revisions", "stage_executions", "action_executions")
)


def _detail(request, execution: PipelineExecution) -> dict:
    return PipelineExecutionSerializer(_execution(request, str(execution.execution_id),
                                                  DETAIL_QUERYSET)).data


class _Api(generics.GenericAPIView):
    permission_classes = [ExecutionPermissions]
    filter_backends: list = []
    pagination_class = None


# --- pipeline state and transitions ---------------------------------------------------------


@extend_schema(parameters=[NAME])
class PipelineStateApi(_Api):
    """GetPipelineState: per stage its transition, latest execution, inbound executions and
    the latest execution of each action."""

    serializer_class = PipelineStateSerializer

    @extend_schema(summary="Get a pipeline's state",
                   responses={200: PipelineStateSerializer, **ERRORS})
    def get(self, request, name):
        state = selectors.pipeline_state(_pipeline(request, name))
        return Response(pipeline_state_data(state))


@extend_schema(parameters=[NAME, STAGE])
class StageTransitionApi(_Api):
    """Enable or disable the transition into a stage."""

    serializer_class = TransitionSetSerializer

    @extend_schema(
        summary="Enable or disable a stage's inbound transition",
        description="Disabling holds arriving executions as the stage's inbound execution; "
        "enabling lets the inbound execution in. Disabling needs a reason.",
        request=TransitionSetSerializer,
        responses={200: StageTransitionSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, name, stage):
        pipeline = _pipeline(request, name, Act.OPERATE)
        body = TransitionSetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        changed = services.transition_set(
            pipeline=pipeline, stage_name=stage, enabled=body.validated_data["enabled"],
            reason=body.validated_data["reason"], user=request.user)
        row = pipeline.stages.get(name=stage)
        return Response(StageTransitionSerializer({
            "stageName": row.name,
            "changed": changed,
            "inboundTransitionState": {
                "enabled": row.transition_enabled,
                "disabledReason": row.transition_disabled_reason or None,
                "lastChangedBy": row.transition_changed_by or None,
                "lastChangedAt": row.transition_changed_at,
            },
        }).data)


@extend_schema(parameters=[NAME, STAGE])
class StageRollbackApi(_Api):
    """RollbackStage: run a stage again with an earlier successful execution's artifacts."""

    serializer_class = StageRollbackSerializer

    @extend_schema(
        summary="Roll a stage back to an earlier execution",
        description="Starts a new execution of type ROLLBACK that runs only this stage, with "
        "the artifacts and variables of the target execution, which must have succeeded in "
        "the stage on the current pipeline version. The source stage cannot be rolled back.",
        request=StageRollbackSerializer,
        responses={201: ExecutionStartedSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, name, stage):
        pipeline = _pipeline(request, name, Act.OPERATE)
        body = StageRollbackSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        target = _execution(request, str(body.validated_data["targetPipelineExecutionId"]),
                            PipelineExecution.objects.select_related("pipeline_version"))
        execution = services.stage_rollback(pipeline=pipeline, stage_name=stage,
                                            target_execution=target, user=request.user)
        return _started(execution)


# --- executions ------------------------------------------------------------------------------


def _started(execution: PipelineExecution) -> Response:
    return Response(
        {"pipelineExecutionId": str(execution.execution_id)},
        status=status.HTTP_201_CREATED,
        headers={"Location": reverse("api-execution-detail",
                                     args=[str(execution.execution_id)])},
    )


def _summaries(ids) -> list[dict]:
    """ListPipelineExecutions' rows of these executions, newest first: two queries.

    ``ids``: a list, or the page's slice of a ``values_list("pk", flat=True)``
    QuerySet (``_IdsPagination``), read as a subquery of the rows' query.
    """
    rows = selectors.execution_rows(ids, SUMMARY_FIELDS)
    revisions = selectors.revision_rows([row[0] for row in rows], SUMMARY_REVISION_FIELDS)
    tz = timezone.get_current_timezone()
    return [execution_summary_data(row, revisions[row[0]], tz) for row in rows]


class _IdsPagination(LimitOffsetPagination):
    """DRF's limit/offset pagination (same parameters, count, next and previous links)
    answering the page unread: the slice of the ids QuerySet, which ``_summaries``
    reads as a subquery. The page is still chosen on the ids alone."""

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self.get_limit(request)
        if self.limit is None:
            return None
        self.count = self.get_count(queryset)
        self.offset = self.get_offset(request)
        if self.count > self.limit and self.template is not None:
            self.display_page_controls = True
        if self.count == 0 or self.offset > self.count:
            return []
        return queryset[self.offset:self.offset + self.limit]


@extend_schema(parameters=[NAME])
class PipelineExecutionListApi(generics.ListAPIView):
    """ListPipelineExecutions (newest first) and StartPipelineExecution."""

    serializer_class = PipelineExecutionSummarySerializer
    filterset_class = PipelineExecutionFilter
    pagination_class = _IdsPagination
    permission_classes = [ExecutionPermissions]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return PipelineExecution.objects.none()
        pipeline = _pipeline(self.request, self.kwargs["name"])
        return (PipelineExecution.objects.filter(pipeline=pipeline)
                .order_by("-number"))

    def list(self, request, *args, **kwargs):
        """The page chosen on the ids alone, then its rows read with their joins.

        Joined before the OFFSET, a deep page (``?offset=5000``) would join every
        row it skips; read this way, a page costs the same queries wherever it is:
        the count, its rows (only the columns shown, the page's ids a subquery)
        and their source revisions.
        """
        queryset = self.filter_queryset(self.get_queryset()).values_list("pk", flat=True)
        ids = self.paginate_queryset(queryset)
        if ids is None:  # no pagination: the plain list
            return Response(_summaries(queryset))
        return self.get_paginated_response(_summaries(ids))

    @extend_schema(summary="List a pipeline's executions",
                   responses={200: PipelineExecutionSummarySerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Start an execution",
        description="Starts the pipeline's current version. Answers 201 with the new "
        "execution's id (a repeated clientRequestToken answers the execution it started); "
        "the execution may wait as the first stage's inbound execution.",
        request=ExecutionStartSerializer,
        responses={201: ExecutionStartedSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, name):
        pipeline = _pipeline(request, name, Act.OPERATE)
        body = ExecutionStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        execution = services.execution_start(
            pipeline=pipeline, user=request.user,
            variables=[dict(v) for v in data.get("variables", [])],
            source_revisions=[dict(r) for r in data.get("sourceRevisions", [])],
            client_request_token=data.get("clientRequestToken") or None,
        )
        return _started(execution)


@extend_schema(parameters=[EXECUTION])
class PipelineExecutionDetailApi(_Api):
    """GetPipelineExecution, with the stages and their actions."""

    serializer_class = PipelineExecutionSerializer

    @extend_schema(summary="Get an execution",
                   responses={200: PipelineExecutionSerializer, **ERRORS})
    def get(self, request, id):  # noqa: A002 (the path parameter's name)
        return Response(PipelineExecutionSerializer(
            _execution(request, id, DETAIL_QUERYSET)).data)


@extend_schema(parameters=[EXECUTION])
class PipelineExecutionStopApi(_Api):
    """StopPipelineExecution: stop and wait, or stop and abandon."""

    serializer_class = ExecutionStopSerializer

    @extend_schema(
        summary="Stop an execution",
        request=ExecutionStopSerializer,
        responses={200: PipelineExecutionSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, id):  # noqa: A002
        execution = _execution(request, id, act=Act.OPERATE)
        body = ExecutionStopSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.execution_stop(execution=execution, abandon=body.validated_data["abandon"],
                                reason=body.validated_data["reason"], user=request.user)
        return Response(_detail(request, execution))


@extend_schema(parameters=[EXECUTION, STAGE])
class StageRetryApi(_Api):
    """RetryStageExecution: retry a Failed or Stopped stage of an execution."""

    serializer_class = StageRetrySerializer

    @extend_schema(
        summary="Retry a stage of an execution",
        description="FAILED_ACTIONS runs again only the actions that did not succeed; "
        "ALL_ACTIONS runs every action of the stage. Refused (409) when the execution was "
        "superseded, is still running, or a newer execution has entered the stage since.",
        request=StageRetrySerializer,
        responses={200: StageRetriedSerializer, **COMMAND_ERRORS},
    )
    def post(self, request, id, stage):  # noqa: A002
        execution = _execution(request, id, act=Act.OPERATE)
        body = StageRetrySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        stage_execution = services.stage_retry(
            execution=execution, stage_name=stage, mode=body.validated_data["retryMode"],
            user=request.user)
        stage_execution.refresh_from_db(fields=["status"])
        return Response(StageRetriedSerializer({
            "pipelineExecutionId": execution.execution_id,
            "stageName": stage_execution.stage_name,
            "attempt": stage_execution.attempt,
            "status": stage_execution.status,
        }).data)


# --- what an execution did --------------------------------------------------------------------


@extend_schema(parameters=[EXECUTION])
class ActionExecutionListApi(generics.ListAPIView):
    """ListActionExecutions of one execution: every attempt, newest first."""

    serializer_class = ActionExecutionSerializer
    filterset_class = ActionExecutionFilter
    permission_classes = [ExecutionPermissions]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ActionExecution.objects.none()
        execution = _execution(self.request, self.kwargs["id"])
        return (ActionExecution.objects.filter(execution=execution)
                .select_related("execution", "execution__pipeline_version")
                .prefetch_related("artifacts")
                .order_by("-id"))

    @extend_schema(summary="List an execution's action executions",
                   responses={200: ActionExecutionSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(parameters=[
    ACTION_EXECUTION,
    OpenApiParameter("offset", OpenApiTypes.INT, description="Byte offset to read from "
                     "(default 0): the previous answer's nextOffset."),
    OpenApiParameter("limit", OpenApiTypes.INT, description=f"Most bytes of the stored log "
                     f"to answer (default {logs.DEFAULT_LIMIT}, at most {logs.MAX_LIMIT}); "
                     "the text adds a timestamp to each line."),
])
class ActionExecutionLogApi(_Api):
    """An action's log from a byte offset, readable while the action runs."""

    serializer_class = ActionLogSerializer

    @extend_schema(
        summary="Read an action's log",
        description="Poll with each answer's nextOffset until complete is true.",
        responses={200: ActionLogSerializer,
                   400: OpenApiResponse(ErrorSerializer, description="A bad offset."),
                   **ERRORS},
    )
    def get(self, request, id):  # noqa: A002
        ae = ActionExecution.objects.filter(pipelines_q(request.user, Act.VIEW, "pipeline__"),
                                            action_execution_id=_uuid(id, "action execution")
                                            ).first()
        if ae is None:
            raise NotFound(f'No action execution has the id "{id}".')
        piece = log_piece(request, lambda **at: logs.log_read(ae, **at))
        return Response(ActionLogSerializer.answer(
            piece, actionExecutionId=ae.action_execution_id, status=ae.status))


def log_piece(request, read) -> logs.LogPiece:
    """The piece of a log the request's ``offset`` and ``limit`` ask for, read by
    ``read(offset=, limit=)``; 400 naming the parameter when one is bad."""
    offset = _whole_number(request.query_params.get("offset", "0"), "offset")
    limit = _whole_number(request.query_params.get("limit", str(logs.DEFAULT_LIMIT)), "limit")
    try:
        return read(offset=offset, limit=limit)
    except logs.OffsetBeyondEnd as exc:
        raise ValidationError({"offset": [
            f"is beyond the end of the log ({exc.size} bytes)"]}) from None


def _whole_number(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValidationError({name: ["must be a whole number"]}) from None
    if number < 0:
        raise ValidationError({name: ["must not be negative"]})
    return number


@extend_schema(parameters=[EXECUTION, ARTIFACT])
class ArtifactDownloadApi(_Api):
    """Download an output artifact of an execution: the stored zip archive, streamed."""


    @extend_schema(
        summary="Download an artifact",
        description="The artifact's files as a zip archive (the stored, content-addressed "
        "file: its ETag is its SHA-256). When a stage was retried, the latest attempt's.",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, **ERRORS},
    )
    def get(self, request, id, name):  # noqa: A002
        execution = _execution(request, id,
                               PipelineExecution.objects.select_related("pipeline"))
        found = (Artifact.objects.filter(execution=execution, name=name)
                 .order_by("-id").first())
        if found is None:
            raise NotFound(f'Execution #{execution.number} has no artifact "{name}".')
        content = artifact_storage.storage().open(found.storage_name, "rb")
        # FileResponse quotes (or RFC 5987-encodes) the filename itself.
        response = FileResponse(
            content, as_attachment=True, content_type="application/zip",
            filename=f"{execution.pipeline.name}-{execution.number}-{found.name}.zip")
        response["ETag"] = f'"{found.sha256}"'
        return response


@extend_schema(parameters=[
    EXECUTION,
    OpenApiParameter("after", OpenApiTypes.INT, description="Only events after this "
                     "sequence number (the last one seen)."),
])
class ExecutionEventListApi(generics.ListAPIView):
    """The ExecutionEvents of an execution, in sequence order (oldest first: a log to replay)."""

    serializer_class = ExecutionEventSerializer
    permission_classes = [ExecutionPermissions]
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExecutionEvent.objects.none()
        self.execution = _execution(self.request, self.kwargs["id"])
        after = _whole_number(self.request.query_params.get("after", "0"), "after")
        return ExecutionEvent.objects.filter(execution=self.execution, id__gt=after).order_by("id")

    @extend_schema(summary="List an execution's events",
                   responses={200: ExecutionEventSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        ids = {event.action_execution_id for event in page if event.action_execution_id}
        uuids = dict(ActionExecution.objects.filter(pk__in=ids)
                     .values_list("pk", "action_execution_id")) if ids else {}
        data = ExecutionEventSerializer(page, many=True, context={
            "execution_uuid": self.execution.execution_id, "action_uuids": uuids}).data
        return self.get_paginated_response(data)

