"""Which actions become jobs for workers: the one place that decides (docs/job-workers.md).

``job_route(action_doc)`` answers a ``Route`` (the action type a worker polls for,
its queryable value, labels) or None when the action runs on Conveyor's own
workers. Today: an action whose actionTypeId names a registered, undeleted
custom action type (owner Custom or ThirdParty) whose (category, provider) is
not a built-in provider. Built-in actions routed to agents (``configuration.RunOn``)
are decided here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines import providers


@dataclass(frozen=True)
class Route:
    category: str
    owner: str
    provider: str
    version: str
    action_type_id: int | None = None   # the CustomActionType's pk, None for built-ins
    query_value: str = ""
    labels: tuple[str, ...] = field(default_factory=tuple)


def type_id_of(action_doc: dict) -> tuple[str, str, str, str]:
    type_id = action_doc.get("actionTypeId") or {}
    version = type_id.get("version", "1")
    return (str(type_id.get("category", "")), str(type_id.get("owner", "Custom")),
            str(type_id.get("provider", "")), str(version))


def custom_type(category: str, owner: str, provider: str, version: str):
    """The undeleted custom action type with this id, or None (never a built-in)."""
    from jobs.models import CustomActionType

    if owner not in ("Custom", "ThirdParty") or providers.get(category, provider) is not None:
        return None
    return CustomActionType.objects.filter(
        category=category, owner=owner, provider=provider, version=version,
        deleted_at__isnull=True).first()


def job_route(action_doc: dict) -> Route | None:
    """Where this action runs: a Route to job workers, or None (Conveyor's workers)."""
    category, owner, provider, version = type_id_of(action_doc)
    action_type = custom_type(category, owner, provider, version)
    if action_type is None:
        return None
    config = action_doc.get("configuration") or {}
    queryable = action_type.queryable_property()
    return Route(category, owner, provider, version, action_type.pk,
                 query_value=str(config.get(queryable, "")) if queryable else "")
