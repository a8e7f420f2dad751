"""Writing the audit trail: ``audit_record`` and the surface an act came in through.

Services call ``audit_record`` after the act, inside the act's transaction where
they have one, so every surface records the same entry and an act that did not
happen leaves none. The surface is not an argument every service passes on: the
HTTP middleware (``AuditSurfaceMiddleware``) sets it from the URL, management
commands that act for a user wrap themselves in ``audit_surface("command")``, and
anything else (workers, schedules) records "system".
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any

from observability.models import AuditAct, AuditEntry, AuditSurface

_surface: contextvars.ContextVar[str] = contextvars.ContextVar(
    "conveyor_audit_surface", default=AuditSurface.SYSTEM)

# URL prefixes of the surfaces; every other page is the dashboard's.
PREFIXES = (("/api/", AuditSurface.REST), ("/aws/", AuditSurface.AWS),
            ("/admin/", AuditSurface.ADMIN), ("/nested_admin/", AuditSurface.ADMIN))


@contextlib.contextmanager
def audit_surface(surface: str):
    """Within the block, acts are recorded as coming through ``surface``."""
    token = _surface.set(AuditSurface(surface))
    try:
        yield
    finally:
        _surface.reset(token)


def current_surface() -> str:
    return str(_surface.get())


def surface_of_path(path: str) -> str:
    for prefix, surface in PREFIXES:
        if path.startswith(prefix):
            return surface
    return AuditSurface.DASHBOARD


class AuditSurfaceMiddleware:
    """Sets the audit surface of a request from its path (sync and async requests)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with audit_surface(surface_of_path(request.path_info)):
            return self.get_response(request)


def audit_record(*, action: str, user=None, pipeline: str = "", execution=None,
                 stage: str = "", reason: str = "", detail: dict[str, Any] | None = None,
                 surface: str | None = None) -> AuditEntry:
    """Append one entry to the audit trail and return it.

    ``action`` is an ``AuditAct``; ``user`` the person (None or anonymous:
    Conveyor itself); ``execution`` a PipelineExecution (its pipeline name,
    UUID and number are copied) or None; ``surface`` defaults to the current
    one (``audit_surface``). ``detail`` holds what else the act named (retry
    mode, target execution, version number…), never a secret.
    """
    actor = user if getattr(user, "is_authenticated", False) else None
    if execution is not None and not pipeline:
        pipeline = execution.pipeline.name
    return AuditEntry.objects.create(
        action=AuditAct(action),
        actor=actor.get_username() if actor else "",
        actor_id=actor.pk if actor else None,
        surface=AuditSurface(surface or current_surface()),
        pipeline=pipeline or "",
        execution_id=execution.execution_id if execution is not None else None,
        execution_number=execution.number if execution is not None else None,
        stage=stage or "",
        reason=(reason or "").strip(),
        detail=detail or {},
    )


class CommandSurface:
    """Mixin for management commands: what they do is recorded as coming by "command"."""

    def execute(self, *args, **options):
        with audit_surface(AuditSurface.COMMAND):
            return super().execute(*args, **options)
