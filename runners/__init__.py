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
from runners.base import (
    ActionFailed,
    LogWriter,
    Result,
    Revision,
    RunContext,
    Runner,
    Waiting,
    kill_process_group,
)

__all__ = [
    "ActionFailed", "LogWriter", "Result", "Revision", "RunContext", "Runner", "Waiting",
    "get", "kill_process_group", "register", "registered",
]

_registry: dict[tuple[str, str], Runner] = {}


def register(runner_class: type[Runner], *, categories: tuple[str, ...] | None = None,
             provider: str | None = None) -> type[Runner]:
    """Register a runner class for each of its categories (usable as a decorator)."""
    instance = runner_class()
    name = provider or runner_class.provider
    if not name:
        raise ValueError(f"{runner_class.__name__} names no provider")
    for category in categories or runner_class.categories:
        _registry[(category, name)] = instance
        providers.register(category, name, instance.check, runner_class.description)
    return runner_class


def get(category: str, provider: str) -> Runner | None:
    return _registry.get((category, provider))


def registered() -> list[tuple[str, str]]:
    return sorted(_registry)


def load_builtin() -> None:
    """Import the runner modules shipped with executions (each registers itself)."""
    import importlib

    for module in ("runners.simulate", "runners.shell", "runners.commands", "runners.codebuild"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
