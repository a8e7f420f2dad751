"""Reading the audit trail (every surface filters through ``audit_entries``)."""

from __future__ import annotations

from django.db.models import QuerySet

from observability.models import AuditAct, AuditEntry, AuditSurface

AUDIT_READ = "observability.view_auditentry"


class AuditFilterInvalid(ValueError):
    """A filter value that names nothing: ``field`` is the query parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def audit_reads_everything(user) -> bool:
    """Administrators and holders of ``view_auditentry`` (auditors) read every entry."""
    from teams.access import is_administrator

    return is_administrator(user) or user.has_perm(AUDIT_READ)


def audit_may_read(user) -> bool:
    """Who may read the trail: administrators, auditors (``view_auditentry``), and the
    owners of some pipeline group (their pipelines' entries: ``audit_entries``)."""
    from teams.access import visible_group_ids
    from teams.choices import Act

    return bool(user and user.is_authenticated and (
        audit_reads_everything(user) or visible_group_ids(user, Act.OWN)))


def audit_entries(*, user=None, pipeline: str = "", actor: str = "", action: str = "",
                  surface: str = "") -> QuerySet[AuditEntry]:
    """Entries newest first, filtered by exact pipeline name, actor username, act and
    surface (each optional; an unknown act or surface is ``AuditFilterInvalid``).

    With ``user``, only what they may read: everything for administrators and
    auditors, else the entries of the pipelines they own (not the entries naming
    no pipeline, such as group and key changes, nor those of deleted pipelines)."""
    rows = AuditEntry.objects.all()
    if user is not None and not audit_reads_everything(user):
        from teams.access import pipelines_visible
        from teams.choices import Act

        rows = rows.filter(pipeline__in=pipelines_visible(user, Act.OWN).values("name"))
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
