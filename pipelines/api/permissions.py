"""Permissions of the pipelines API.

Pipelines and what hangs off them are per pipeline group (``teams.access``): the
view classes here only let in a signed-in user who holds some role somewhere (or
is an administrator); each view then asks ``teams.access`` about the pipeline it
names (not visible: 404; visible, act not allowed: 403) and lists only visible
pipelines. A signed-in user holding no role at all is answered 403 everywhere,
before any lookup, so they learn nothing about what exists; an anonymous caller
401 (TokenAuthentication, listed first, supplies the ``WWW-Authenticate`` header).

Connections and build projects are shared by every group (a pipeline names them),
so they stay governed by global model permissions (docs/security.md).
"""

from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions, IsAuthenticated

from teams.access import holds_any_role, visible_group_ids
from teams.choices import Act


class PipelinePermissions(IsAuthenticated):
    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and holds_any_role(request.user)


class OwnerToWrite(PipelinePermissions):
    """As ``PipelinePermissions``; a write also needs the owner role on some group (403
    before the body is read: who may not create anything learns nothing from it)."""

    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and (
            request.method in SAFE_METHODS or visible_group_ids(request.user, Act.OWN) != set())


class ModelPermissions(DjangoModelPermissions):
    """Global model permissions; reading needs ``view`` too."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class ConnectionPermissions(ModelPermissions):
    """The connection model's permissions; reading needs ``view_connection``."""
