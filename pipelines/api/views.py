"""The pipelines API: thin views over ``pipelines.services``.

Lists are most recently changed first (``?ordering=name`` sorts by name). A
definition is sent as JSON or YAML, bare or wrapped as ``get-pipeline`` output,
and answered in ``get-pipeline``'s shape.
"""

from django.db.models import Count
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from pipelines import services
from pipelines.api.errors import Conflict, problems_body
from pipelines.api.filters import PipelineFilter
from pipelines.api.parsers import BoundedJSONParser, TextYAMLParser, XYAMLParser, YAMLParser
from pipelines.api.permissions import (
    ConnectionPermissions,
    ModelPermissions,
    OwnerToWrite,
    PipelinePermissions,
)
from pipelines.api.serializers import (
    BuildProjectSerializer,
    ConnectionSerializer,
    DefinitionInput,
    DryRunSerializer,
    ErrorSerializer,
    PipelineDocumentSerializer,
    PipelineSavedSerializer,
    PipelineSummarySerializer,
    PipelineVersionSummarySerializer,
    WebhookSecretInput,
    WebhookSerializer,
)
from pipelines.models import BuildProject, Connection, Pipeline, PipelineVersion
from teams.access import pipeline_require, pipelines_visible
from teams.choices import Act

DEFINITION_PARSERS = [BoundedJSONParser, YAMLParser, TextYAMLParser, XYAMLParser]

NAME_PARAMETER = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, description="The pipeline's name."
)
ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not signed in."),
    403: OpenApiResponse(ErrorSerializer, description="Missing permission."),
}
VALIDATION_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="The definition was refused: every "
                         "problem with its JSON path."),
    **ERRORS,
}


def _saved_body(result: services.SaveResult) -> dict:
    body = services.pipeline_export(pipeline=result.pipeline)
    body["warnings"] = [p.as_dict() for p in result.warnings]
    return body


class PipelineListApi(generics.ListAPIView):
    """``GET`` lists pipelines; ``POST`` creates one from a definition document."""

    serializer_class = PipelineSummarySerializer
    filterset_class = PipelineFilter
    permission_classes = [OwnerToWrite]
    parser_classes = DEFINITION_PARSERS

    def get_queryset(self):
        return pipelines_visible(self.request.user).select_related("group").annotate(
            stage_count=Count("stages")).order_by("-updated_at", "name")

    @extend_schema(summary="List pipelines", responses={200: PipelineSummarySerializer(many=True),
                                                        **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a pipeline",
        description="With `?dryRun=true` nothing is saved: the answer is the migration "
                    "report (every action: runs here as which provider, needs a connection "
                    "or build project first, or cannot run here and the nearest way to do "
                    "it), 200 for a document that would be accepted, 400 (with the report) "
                    "for one that would be refused.",
        request=DefinitionInput,
        parameters=[OpenApiParameter("dryRun", OpenApiTypes.BOOL, description=(
            "true: check and report, save nothing."))],
        responses={201: PipelineSavedSerializer, 200: DryRunSerializer, **VALIDATION_ERRORS},
    )
    def post(self, request):
        dry_run = request.query_params.get("dryRun", "false").lower()
        if dry_run not in ("true", "false", "1", "0"):
            raise ValidationError({"dryRun": ["must be true or false"]})
        if dry_run in ("true", "1"):
            result = services.pipeline_check(document=request.data)
            body = {
                "name": result.name,
                "valid": result.valid,
                "wouldCreate": result.valid and not result.exists,
                "canStart": result.can_start,
                "actions": [r.as_dict() for r in result.actions],
            }
            if not result.valid:
                return Response({**problems_body(result.problems), **body},
                                status=status.HTTP_400_BAD_REQUEST)
            body["warnings"] = [p.as_dict() for p in result.problems]
            return Response(body)
        result = services.pipeline_save(document=request.data, user=request.user, create=True)
        return Response(_saved_body(result), status=status.HTTP_201_CREATED)


@extend_schema(parameters=[NAME_PARAMETER])
class PipelineDetailApi(generics.GenericAPIView):
    """One pipeline's definition: read, replace, delete."""

    queryset = Pipeline.objects.all()
    # The URL names the pipeline: DRF's OPTIONS answer looks the object up by it
    # (with the default "pk" it failed an assertion and answered 500).
    lookup_field = "name"
    permission_classes = [PipelinePermissions]
    parser_classes = DEFINITION_PARSERS
    serializer_class = PipelineDocumentSerializer
    http_method_names = ["get", "put", "delete", "head", "options"]

    def get_pipeline(self, name: str, act: str = Act.VIEW) -> Pipeline:
        return _pipeline(self.request, name, act)

    @extend_schema(
        summary="Get a pipeline's definition",
        parameters=[OpenApiParameter("version", OpenApiTypes.INT, description=(
            "An earlier version's number (default: the current version)."))],
        responses={200: PipelineDocumentSerializer, 404: ErrorSerializer, **ERRORS},
    )
    def get(self, request, name):
        pipeline = self.get_pipeline(name)
        version = request.query_params.get("version")
        if version is not None:
            try:
                version = int(version)
            except ValueError:
                raise ValidationError({"version": ["must be a whole number"]}) from None
        return Response(_export(pipeline, version))

    @extend_schema(
        summary="Replace a pipeline's definition",
        description="A document equal to the current one saves nothing and keeps the version.",
        request=DefinitionInput,
        responses={200: PipelineSavedSerializer, 404: ErrorSerializer, **VALIDATION_ERRORS},
    )
    def put(self, request, name):
        self.get_pipeline(name, Act.OWN)
        result = services.pipeline_save(
            document=request.data, user=request.user, name=name, create=False
        )
        return Response(_saved_body(result))

    @extend_schema(summary="Delete a pipeline",
                   responses={204: None, 404: ErrorSerializer, **ERRORS})
    def delete(self, request, name):
        services.pipeline_delete(pipeline=self.get_pipeline(name, Act.OWN),
                                 user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _pipeline(request, name: str, act: str = Act.VIEW) -> Pipeline:
    """The pipeline named ``name`` if the caller may ``act`` (404 not visible, 403 not allowed)."""
    return pipeline_require(request.user, Pipeline.objects.filter(name=name).first(), act,
                            name=name)


def _export(pipeline: Pipeline, version: int | None) -> dict:
    try:
        return services.pipeline_export(pipeline=pipeline, version=version)
    except PipelineVersion.DoesNotExist:
        raise NotFound(f'Pipeline "{pipeline.name}" has no version {version}.') from None


@extend_schema(parameters=[NAME_PARAMETER])
class PipelineVersionListApi(generics.ListAPIView):
    """A pipeline's versions, newest first."""

    serializer_class = PipelineVersionSummarySerializer
    permission_classes = [PipelinePermissions]
    filter_backends: list = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return PipelineVersion.objects.none()
        pipeline = _pipeline(self.request, self.kwargs["name"])
        return pipeline.versions.select_related("pipeline", "created_by").order_by("-number")

    @extend_schema(summary="List a pipeline's versions",
                   responses={200: PipelineVersionSummarySerializer(many=True),
                              404: ErrorSerializer, **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(parameters=[
    NAME_PARAMETER,
    OpenApiParameter("number", OpenApiTypes.INT, OpenApiParameter.PATH,
                     description="The version's number."),
])
class PipelineVersionDetailApi(generics.GenericAPIView):
    """One earlier (or the current) version of a definition."""

    queryset = Pipeline.objects.all()
    lookup_field = "name"  # for DRF's OPTIONS answer, as PipelineDetailApi
    serializer_class = PipelineDocumentSerializer
    permission_classes = [PipelinePermissions]

    @extend_schema(summary="Get one version of a pipeline's definition",
                   responses={200: PipelineDocumentSerializer, 404: ErrorSerializer, **ERRORS})
    def get(self, request, name, number):
        return Response(_export(_pipeline(request, name), number))


class PipelineWebhookApi(generics.GenericAPIView):
    """The pipeline's push webhook: its URL, and setting its secret (write-only)."""

    queryset = Pipeline.objects.all()
    lookup_field = "name"  # for DRF's OPTIONS answer, as PipelineDetailApi
    permission_classes = [PipelinePermissions]
    serializer_class = WebhookSerializer
    http_method_names = ["get", "put", "head", "options"]

    def _body(self, request, pipeline: Pipeline) -> dict:
        path = f"/api/hooks/{pipeline.name}/"
        return {"url": request.build_absolute_uri(path), "secretSet": bool(pipeline.webhook_secret)}

    @extend_schema(summary="Get the push webhook's URL", responses={
        200: WebhookSerializer, 404: ErrorSerializer, **ERRORS})
    def get(self, request, name):
        return Response(self._body(request, _pipeline(request, name)))

    @extend_schema(summary="Set the push webhook's secret", request=WebhookSecretInput,
                   responses={200: WebhookSerializer, 404: ErrorSerializer,
                              **VALIDATION_ERRORS})
    def put(self, request, name):
        pipeline = _pipeline(request, name, Act.OWN)
        data = WebhookSecretInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.pipeline_set_webhook_secret(pipeline=pipeline, user=request.user,
                                             secret=data.validated_data["secret"])
        return Response(self._body(request, pipeline))


# --- connections -------------------------------------------------------------------

CONNECTION_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH,
                                   description="The connection's name.")


def _connection_save(request, connection: Connection | None, partial: bool) -> Connection:
    data = ConnectionSerializer(instance=connection, data=request.data, partial=partial)
    data.is_valid(raise_exception=True)
    given = data.validated_data

    def field(key, default):
        return given.get(key, default)

    return services.connection_save(
        connection=connection,
        name=field("name", getattr(connection, "name", "")),
        provider=field("provider", getattr(connection, "provider", "Git")),
        base_url=field("base_url", getattr(connection, "base_url", "")),
        arns=field("arns", [a.arn for a in connection.arns.all()] if connection else []),
        username=field("username", getattr(connection, "username", "")),
        token=given.get("token") or None, ssh_key=given.get("ssh_key") or None,
        clear_credential=given.get("clear_credential", False))


class ConnectionListApi(generics.ListAPIView):
    """``GET`` lists connections; ``POST`` makes one. Credentials are write-only."""

    queryset = Connection.objects.prefetch_related("arns").order_by("name")
    serializer_class = ConnectionSerializer
    permission_classes = [ConnectionPermissions]
    filter_backends: list = []

    @extend_schema(summary="List connections",
                   responses={200: ConnectionSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Make a connection", request=ConnectionSerializer,
                   responses={201: ConnectionSerializer, **VALIDATION_ERRORS})
    def post(self, request):
        connection = _connection_save(request, None, partial=False)
        return Response(ConnectionSerializer(connection).data, status=status.HTTP_201_CREATED)


@extend_schema(parameters=[CONNECTION_NAME])
class ConnectionDetailApi(generics.GenericAPIView):
    """One connection: read (never its credential), change, delete."""

    queryset = Connection.objects.prefetch_related("arns")
    serializer_class = ConnectionSerializer
    permission_classes = [ConnectionPermissions]
    lookup_field = "name"

    @extend_schema(summary="Get a connection",
                   responses={200: ConnectionSerializer, 404: ErrorSerializer, **ERRORS})
    def get(self, request, name):
        return Response(ConnectionSerializer(self.get_object()).data)

    @extend_schema(summary="Change a connection", request=ConnectionSerializer,
                   description="Fields left out keep their value; a credential left out is "
                               "kept, `clearCredential: true` removes it.",
                   responses={200: ConnectionSerializer, 404: ErrorSerializer,
                              **VALIDATION_ERRORS})
    def patch(self, request, name):
        connection = _connection_save(request, self.get_object(), partial=True)
        return Response(ConnectionSerializer(connection).data)

    @extend_schema(summary="Replace a connection", request=ConnectionSerializer,
                   responses={200: ConnectionSerializer, 404: ErrorSerializer,
                              **VALIDATION_ERRORS})
    def put(self, request, name):
        connection = _connection_save(request, self.get_object(), partial=False)
        return Response(ConnectionSerializer(connection).data)

    @extend_schema(summary="Delete a connection",
                   responses={204: None, 404: ErrorSerializer, **ERRORS})
    def delete(self, request, name):
        services.connection_delete(connection=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- build projects ---------------------------------------------------------------

PROJECT_NAME = OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH,
                                description="The build project's name.")


class BuildProjectPermissions(ModelPermissions):
    def _queryset(self, view):
        return BuildProject.objects.all()


class BuildProjectListApi(generics.ListAPIView):
    """``GET`` lists build projects (by name); ``POST`` creates one from its document."""

    queryset = BuildProject.objects.order_by("name")
    serializer_class = BuildProjectSerializer
    permission_classes = [BuildProjectPermissions]
    parser_classes = DEFINITION_PARSERS
    filter_backends: list = []

    @extend_schema(summary="List build projects",
                   responses={200: BuildProjectSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a build project", request=BuildProjectSerializer,
                   responses={201: BuildProjectSerializer, **VALIDATION_ERRORS})
    def post(self, request):
        name = request.data.get("name") if isinstance(request.data, dict) else None
        if isinstance(name, str) and BuildProject.objects.filter(name=name).exists():
            raise Conflict(f'A build project is already named "{name}".')
        result = services.build_project_save(document=request.data)
        return Response(_project_body(result), status=status.HTTP_201_CREATED)


@extend_schema(parameters=[PROJECT_NAME])
class BuildProjectDetailApi(generics.GenericAPIView):
    """One build project: read, replace, delete."""

    queryset = BuildProject.objects.all()
    lookup_field = "name"  # for DRF's OPTIONS answer, as PipelineDetailApi
    serializer_class = BuildProjectSerializer
    permission_classes = [BuildProjectPermissions]
    parser_classes = DEFINITION_PARSERS
    http_method_names = ["get", "put", "delete", "head", "options"]

    @extend_schema(summary="Get a build project",
                   responses={200: BuildProjectSerializer, 404: ErrorSerializer, **ERRORS})
    def get(self, request, name):
        return Response(services.build_project_export(get_object_or_404(BuildProject,
                                                                        name=name)))

    @extend_schema(summary="Replace a build project", request=BuildProjectSerializer,
                   responses={200: BuildProjectSerializer, 404: ErrorSerializer,
                              **VALIDATION_ERRORS})
    def put(self, request, name):
        get_object_or_404(BuildProject, name=name)
        return Response(_project_body(services.build_project_save(document=request.data,
                                                                  name=name)))

    @extend_schema(summary="Delete a build project",
                   responses={204: None, 404: ErrorSerializer, **ERRORS})
    def delete(self, request, name):
        get_object_or_404(BuildProject, name=name)
        services.build_project_delete(name=name)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _project_body(result: services.BuildProjectSaveResult) -> dict:
    body = services.build_project_export(result.project)
    body["warnings"] = [p.as_dict() for p in result.warnings]
    return body
