"""The runner registry, by (category, provider).

``register`` also registers the runner's ``check`` into ``pipelines.providers``
so that definition validation knows the provider and checks its configuration.
Other apps add their runners the same way when they start, e.g. in
``approvals.apps.ApprovalsConfig.ready``::

    import runners
    runners.register(ManualApprovalRunner)   # categories=("Approval",), provider="Manual"
"""

from __future__ import annotations

from pipelines import providers
from runners import checks
from runners.base import (
    ActionFailed,
    LogWriter,
    Readiness,
    Result,
    Revision,
    RunContext,
    Runner,
    Waiting,
    kill_process_group,
)

__all__ = [
    "ActionFailed", "LogWriter", "Readiness", "Result", "Revision", "RunContext", "Runner",
    "Waiting", "for_action", "get", "kill_process_group", "register", "registered",
    "set_router",
]

_registry: dict[tuple[str, str], Runner] = {}


def register(runner_class: type[Runner], *, categories: tuple[str, ...] | None = None,
             provider: str | None = None) -> type[Runner]:
    """Register a runner class for each of its categories (usable as a decorator)."""
    instance = runner_class()
    name = provider or runner_class.provider
    if not name:
        raise ValueError(f"{runner_class.__name__} names no provider")

    def check(action_doc, _check=instance.check, _agents=runner_class.runs_on_agents):
        # configuration.RunOn is checked here for every provider: acted on by the
        # ones agents run, refused at its path by the others (never ignored).
        return [*_check(action_doc),
                *checks.run_on_problems(action_doc, on_agents=_agents, provider=name)]

    for category in categories or runner_class.categories:
        _registry[(category, name)] = instance
        providers.register(category, name, check, runner_class.description,
                           secret_keys=runner_class.secret_configuration_keys,
                           readiness=instance.readiness)
    return runner_class


def get(category: str, provider: str) -> Runner | None:
    return _registry.get((category, provider))


# Decides whether an action is handed to a job worker instead of running here (the
# jobs app installs ``jobs.routing.job_runner`` when it starts): the action's
# document in, a remote runner or None out.
_router = None


def set_router(router) -> None:
    global _router
    _router = router


def for_action(action_doc: dict) -> Runner | None:
    """The runner for an action document: a job worker's (``_router``), else the
    registered runner of its (category, provider)."""
    if _router is not None:
        remote = _router(action_doc)
        if remote is not None:
            return remote
    type_id = action_doc.get("actionTypeId") or {}
    return get(type_id.get("category", ""), type_id.get("provider", ""))


def registered() -> list[tuple[str, str]]:
    return sorted(_registry)


def load_builtin() -> None:
    """Import the runner modules shipped with executions (each registers itself)."""
    import importlib

    for module in ("runners.simulate", "runners.shell", "runners.commands", "runners.codebuild",
                   "runners.rules"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
