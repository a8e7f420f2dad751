"""Reading the audit trail (every surface filters through ``audit_entries``)."""

from __future__ import annotations

from django.db.models import QuerySet

from observability.models import AuditAct, AuditEntry, AuditSurface

AUDIT_READ = "observability.view_auditentry"
OWNER = "pipelines.change_pipeline"


class AuditFilterInvalid(ValueError):
    """A filter value that names nothing: ``field`` is the query parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def audit_may_read(user) -> bool:
    """Who may read the trail: superusers, holders of ``view_auditentry`` and pipeline
    owners (those who may change definitions)."""
    return bool(user and user.is_authenticated and (
        user.is_superuser or user.has_perm(AUDIT_READ) or user.has_perm(OWNER)))


def audit_entries(*, pipeline: str = "", actor: str = "", action: str = "",
                  surface: str = "") -> QuerySet[AuditEntry]:
    """Entries newest first, filtered by exact pipeline name, actor username, act and
    surface (each optional; an unknown act or surface is ``AuditFilterInvalid``)."""
    rows = AuditEntry.objects.all()
    if pipeline:
        rows = rows.filter(pipeline=pipeline)
    if actor:
        rows = rows.filter(actor=actor)
    if action:
        if action not in AuditAct.values:
            raise AuditFilterInvalid("action", f'"{action}" is not an act: use one of '
                                     + ", ".join(AuditAct.values))
        rows = rows.filter(action=action)
    if surface:
        if surface not in AuditSurface.values:
            raise AuditFilterInvalid("surface", f'"{surface}" is not a surface: use one of '
                                     + ", ".join(AuditSurface.values))
        rows = rows.filter(surface=surface)
    return rows.order_by("-id")


def audit_json(entry: AuditEntry) -> dict:
    """One entry in the API's and the export's shape (camelCase, no database ids)."""
    return {
        "at": entry.at.isoformat(),
        "actor": entry.actor or None,
        "action": entry.action,
        "surface": entry.surface,
        "pipelineName": entry.pipeline or None,
        "pipelineExecutionId": str(entry.execution_id) if entry.execution_id else None,
        "executionNumber": entry.execution_number,
        "stageName": entry.stage or None,
        "reason": entry.reason,
        "detail": entry.detail,
    }
