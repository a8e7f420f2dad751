"""``/api/action-types/``: custom action types over REST, in AWS's shapes.

Thin views over ``jobs.action_types``. A type is named in the URL by its id,
``/api/action-types/<category>/<owner>/<provider>/<version>/``. Reading needs a role
on some pipeline group; creating, replacing and deleting need the model's permissions.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import action_types, errors
from jobs.models import CustomActionType
from teams.access import holds_any_role


class ActionTypePermissions(permissions.BasePermission):
    """Reading: a role on any pipeline group (``teams.access.holds_any_role``, as
    ListActionTypes asks); writing: the global model permission (docs/job-workers.md)."""

    NEEDED = {"POST": "jobs.add_customactiontype", "PUT": "jobs.change_customactiontype",
              "DELETE": "jobs.delete_customactiontype"}

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return holds_any_role(request.user)
        needed = self.NEEDED.get(request.method)
        return bool(needed and request.user.has_perm(needed))


def _invalid(exc: errors.JobInvalid) -> ValidationError:
    """The API's one error body: each problem at its JSON path (pipelines.api.errors)."""
    by_path: dict[str, list[str]] = {}
    for path, message in getattr(exc, "problems", None) or [("non_field_errors", exc.detail)]:
        by_path.setdefault(path, []).append(message)
    return ValidationError(by_path)


def _type(category, owner, provider, version) -> CustomActionType:
    try:
        return action_types.action_type_get(category=category, owner=owner,
                                            provider=provider, version=version)
    except errors.ActionTypeNotFound as exc:
        raise Http404(exc.detail) from None


class ActionTypeListApi(APIView):
    """``GET`` lists the custom action types; ``POST`` registers one (AWS's
    CreateCustomActionType members, plus ``owner``: Custom or ThirdParty)."""

    permission_classes = [ActionTypePermissions]

    @extend_schema(summary="List custom action types", operation_id="action_types_list",
                   responses={200: dict})
    def get(self, request):
        qs = CustomActionType.objects.filter(deleted_at__isnull=True)
        return Response({"actionTypes": [action_types.action_type_export(t) for t in qs]})

    @extend_schema(summary="Register a custom action type", request=dict,
                   responses={201: dict})
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        try:
            action_type, token = action_types.action_type_create(
                data=data, owner=str(data.get("owner") or "Custom"), user=request.user)
        except errors.JobInvalid as exc:
            raise _invalid(exc) from None
        body = {"actionType": action_types.action_type_export(action_type)}
        if token:   # a ThirdParty type's client credentials, shown this once
            body["clientId"] = str(action_type.client_id)
            body["clientToken"] = token
        return Response(body, status=status.HTTP_201_CREATED)


class ActionTypeDetailApi(APIView):
    """One custom action type: read, replace its definition, delete (AWS semantics)."""

    permission_classes = [ActionTypePermissions]

    @extend_schema(summary="Get a custom action type", responses={200: dict})
    def get(self, request, category, owner, provider, version):
        return Response({"actionType": action_types.action_type_export(
            _type(category, owner, provider, version))})

    @extend_schema(summary="Replace a custom action type's definition", request=dict,
                   responses={200: dict})
    def put(self, request, category, owner, provider, version):
        action_type = _type(category, owner, provider, version)
        try:
            action_types.action_type_update(action_type=action_type, data=dict(request.data))
        except errors.JobInvalid as exc:
            raise _invalid(exc) from None
        return Response({"actionType": action_types.action_type_export(action_type)})

    @extend_schema(summary="Delete a custom action type", responses={204: None})
    def delete(self, request, category, owner, provider, version):
        action_types.action_type_delete(action_type=_type(category, owner, provider, version))
        return Response(status=status.HTTP_204_NO_CONTENT)
