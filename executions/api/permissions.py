"""Permissions of the executions API: model permissions of the role groups.

Reading needs ``pipelines.view_pipeline`` and ``executions.view_pipelineexecution``
(and, where a view shows more, that model's view permission: action executions,
logs, artifacts, events). A command (start, stop, retry, rollback, transition)
needs, besides reading, its own permission from ``executions`` (see the
executions migration ``0002_groups``: operators and owners hold them, viewers
do not). As in the pipelines API, an outsider (signed in, in no group) is
answered 403 everywhere, before any lookup, so it learns nothing about what
exists; an anonymous caller 401 (TokenAuthentication supplies the
``WWW-Authenticate`` header that makes DRF answer 401).
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

READ = ("pipelines.view_pipeline", "executions.view_pipelineexecution")


class ExecutionPermissions(BasePermission):
    """``view.read_permissions`` for safe methods, plus ``view.command_permission`` otherwise."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            return False
        needed = list(getattr(view, "read_permissions", READ))
        command = getattr(view, "command_permission", None)
        # A read-only endpoint has no command to permit: for an unsafe method the
        # reader then gets DRF's 405 (the method has no handler), not a crash.
        if request.method not in SAFE_METHODS and command is not None:
            needed.append(command)
        return user.has_perms(needed)
