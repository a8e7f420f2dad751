"""Permissions of the executions API: the roles of the pipeline's group.

The class here lets in a signed-in user holding some role somewhere (or an
administrator); each view then asks ``teams.access`` about the pipeline or the
execution it names — reading needs ``view``, a command (start, stop, retry,
rollback, transition) ``operate`` — and answers 404 when it is not visible, 403
when visible but the act is not allowed. A signed-in user holding no role at all
is answered 403 everywhere, before any lookup, so they learn nothing about what
exists; an anonymous caller 401 (TokenAuthentication supplies the
``WWW-Authenticate`` header that makes DRF answer 401).
"""

from rest_framework.permissions import IsAuthenticated

from teams.access import holds_any_role


class ExecutionPermissions(IsAuthenticated):
    def has_permission(self, request, view) -> bool:
        return super().has_permission(request, view) and holds_any_role(request.user)
