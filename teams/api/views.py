"""``GET POST /api/pipeline-groups/``, ``GET PUT DELETE /api/pipeline-groups/{name}/``.

Body and answer: ``{"name", "description", "roles": [{"role", "user"} | {"role",
"group"}]}``. Administrators list every group, create and delete; others list the
groups they hold a role in (not holding one: 404 as if it did not exist); a group's
owners change it (PUT). Deleting a group that still holds pipelines answers 409.
"""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response

from pipelines.api.errors import Conflict
from pipelines.api.permissions import OwnerToWrite
from pipelines.api.serializers import ErrorSerializer
from teams import access, services
from teams.api.serializers import PipelineGroupSerializer
from teams.choices import Act
from teams.models import PipelineGroup

ERRORS = {401: OpenApiResponse(ErrorSerializer, description="Not signed in."),
          403: OpenApiResponse(ErrorSerializer, description="Missing role.")}


def _body(group: PipelineGroup) -> dict:
    return {"name": group.name, "description": group.description,
            "roles": services.group_grants(group)}


def _save(request, group: PipelineGroup | None):
    data = request.data
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["the body must be a JSON object"]})
    unknown = sorted(set(data) - {"name", "description", "roles"})
    try:
        saved = services.pipeline_group_save(
            name=data.get("name", group.name if group else None),
            description=data.get("description", group.description if group else ""),
            roles=data.get("roles", None if group else []), group=group, user=request.user)
    except services.GroupInvalid as exc:
        errors: dict[str, list[str]] = {key: ["unknown field"] for key in unknown}
        for path, message in exc.problems:
            errors.setdefault(path or "non_field_errors", []).append(message)
        raise ValidationError(errors) from None
    if unknown:
        raise ValidationError({key: ["unknown field"] for key in unknown})
    return saved


def _visible(request, name: str) -> PipelineGroup:
    group = PipelineGroup.objects.filter(name=name).first()
    if group is None or not access.group_allows(request.user, group.pk, Act.VIEW):
        raise Http404(f'No pipeline group is named "{name}".')
    return group


class _Pagination(LimitOffsetPagination):
    max_limit = 1000     # a limit past 64 bits is a database error, not a bigger page


class PipelineGroupListApi(generics.ListAPIView):
    """The groups one may see; ``POST`` (administrators) makes one."""

    pagination_class = _Pagination
    serializer_class = PipelineGroupSerializer
    permission_classes = [OwnerToWrite]
    filter_backends: list = []

    def get_queryset(self):
        ids = access.visible_group_ids(self.request.user)
        groups = PipelineGroup.objects.prefetch_related("grants__user", "grants__group")
        return (groups if ids is None else groups.filter(pk__in=ids)).order_by("name")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response([_body(g) for g in page])

    @extend_schema(summary="List pipeline groups",
                   responses={200: PipelineGroupSerializer(many=True), **ERRORS})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Make a pipeline group (administrators)",
                   request=PipelineGroupSerializer,
                   responses={201: PipelineGroupSerializer, 400: ErrorSerializer, **ERRORS})
    def post(self, request):
        if not access.is_administrator(request.user):
            raise PermissionDenied("Only administrators make pipeline groups.")
        group = _save(request, None)
        return Response(_body(group), status=status.HTTP_201_CREATED)


class PipelineGroupDetailApi(generics.GenericAPIView):
    """One group: read (its members), change (its owners), delete (administrators)."""

    serializer_class = PipelineGroupSerializer
    permission_classes = [OwnerToWrite]
    queryset = PipelineGroup.objects.all()
    lookup_field = "name"
    http_method_names = ["get", "put", "delete", "head", "options"]

    @extend_schema(summary="Get a pipeline group",
                   responses={200: PipelineGroupSerializer, 404: ErrorSerializer, **ERRORS})
    def get(self, request, name):
        return Response(_body(_visible(request, name)))

    @extend_schema(summary="Change a pipeline group (its owners)",
                   description="`roles`, when sent, replaces every grant of the group.",
                   request=PipelineGroupSerializer,
                   responses={200: PipelineGroupSerializer, 400: ErrorSerializer,
                              404: ErrorSerializer, **ERRORS})
    def put(self, request, name):
        group = _visible(request, name)
        if not access.group_allows(request.user, group.pk, Act.OWN):
            raise PermissionDenied(f'Only owners of pipeline group "{name}" may change it.')
        saved = _save(request, group)
        access.access_forget(request.user)
        return Response(_body(saved))

    @extend_schema(summary="Delete an empty pipeline group (administrators)",
                   responses={204: None, 404: ErrorSerializer, 409: ErrorSerializer, **ERRORS})
    def delete(self, request, name):
        group = _visible(request, name)
        if not access.is_administrator(request.user):
            raise PermissionDenied("Only administrators delete pipeline groups.")
        try:
            services.pipeline_group_delete(group=group, user=request.user)
        except services.GroupInUse as exc:
            raise Conflict(str(exc)) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
