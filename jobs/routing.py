"""Which actions become jobs for workers: the one place that decides (docs/job-workers.md).

``job_route(action_doc)`` answers a ``Route`` (the action type a worker polls for,
its queryable value, labels) or None when the action runs on Conveyor's own
workers. Today: an action whose actionTypeId names a registered, undeleted
custom action type (owner Custom or ThirdParty) whose (category, provider) is
not a built-in provider; and a built-in action that agents run (Shell, Commands,
CodeBuild) whose ``configuration.RunOn`` names labels: a Route with those labels and no
action type, offered only to Conveyor's agents whose labels include them all
(docs/job-workers.md, Agents).
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

    @property
    def for_agents(self) -> bool:
        return bool(self.labels)


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
        return agent_route(action_doc)
    config = action_doc.get("configuration") or {}
    queryable = action_type.queryable_property()
    return Route(category, owner, provider, version, action_type.pk,
                 query_value=str(config.get(queryable, "")) if queryable else "")


def agent_route(action_doc: dict) -> Route | None:
    """The Route of a built-in action routed to agents by ``configuration.RunOn``, or None."""
    import runners
    from runners.checks import RUN_ON, run_on_labels

    category, owner, provider, version = type_id_of(action_doc)
    runner = runners.get(category, provider)
    if runner is None or not runner.runs_on_agents:
        return None
    labels = run_on_labels((action_doc.get("configuration") or {}).get(RUN_ON))
    if not labels:
        return None
    return Route(category, owner, provider, version, labels=tuple(labels))
