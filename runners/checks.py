"""Helpers the runners' configuration checkers share.

A checker runs on any document, valid or not: the general validation has
already reported a configuration that is not an object or a value that is not
a string, at its path, so a checker sees a dict of strings here and only adds
the provider's own rules.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path


def configuration_of(action_doc) -> dict[str, str]:
    """The action's configuration as a dict of strings (whatever the document holds)."""
    config = action_doc.get("configuration") if isinstance(action_doc, dict) else None
    if not isinstance(config, dict):
        return {}
    return {str(k): v if isinstance(v, str) else str(v) for k, v in config.items()
            if v is not None}


def list_of(value) -> list:
    """``value`` if it is a list, else an empty list (its type is reported elsewhere)."""
    return value if isinstance(value, list) else []


def protected_paths() -> list[Path]:
    """Conveyor's own code and state: no deploy may write into them or above them.

    Code: every file and folder of the installation (but ``var/``) and the Python it
    runs on. State: the secret key, the SQLite database, artifacts, logs,
    workspaces, git mirrors, secrets, static files. Other folders of ``var/`` (the
    demo's deploy targets) are not state.
    """
    from django.conf import settings

    var = Path(os.path.realpath(settings.VAR_DIR))
    code = [entry for entry in Path(settings.BASE_DIR).iterdir()
            if Path(os.path.realpath(entry)) != var]
    found = [*code, Path(sys.prefix), var / "secret_key", settings.ARTIFACT_ROOT,
             settings.LOG_ROOT, settings.WORKSPACE_ROOT, settings.CONVEYOR_GIT_CACHE_ROOT,
             settings.CONVEYOR_SECRETS_DIR, settings.STATIC_ROOT]
    for database in settings.DATABASES.values():
        if "sqlite" in database.get("ENGINE", "") and database.get("NAME"):
            found.append(Path(str(database["NAME"])))
    return [Path(os.path.realpath(p)) for p in found]


def deploy_target_refusal(target: str) -> str | None:
    """Why a deploy may not write into ``target`` (an absolute folder), or None.

    A pure rule every surface asks (validation, and each run: a link may have
    changed since). Refused: a path that is not absolute or holds ``..``; a folder
    inside Conveyor's code or state (``protected_paths``: database, secret key,
    secrets, artifacts, logs, workspaces, …) or one holding them; with ``CONVEYOR_DEPLOY_ROOTS``
    set, a folder outside every root. Links are followed to where they lead.
    """
    from django.conf import settings

    if not target.startswith("/"):
        return f'"{target}" is not an absolute path'
    if ".." in Path(target).parts:
        return f'"{target}" must not contain ".."'
    real = Path(os.path.realpath(target))
    for protected in protected_paths():
        if real == protected or real.is_relative_to(protected):
            return (f'"{target}" is inside Conveyor\'s own code or state ({protected}): '
                    "deploy elsewhere")
        if protected.is_relative_to(real):
            return (f'"{target}" holds Conveyor\'s own code or state ({protected}): '
                    "deploy into a folder of its own")
    roots = [Path(os.path.realpath(r)) for r in getattr(settings, "CONVEYOR_DEPLOY_ROOTS", [])]
    if roots and not any(real == r or real.is_relative_to(r) for r in roots):
        return (f'"{target}" is outside the folders deploys may write to (CONVEYOR_DEPLOY_ROOTS: '
                + ", ".join(str(r) for r in roots) + ")")
    return None


# --- routing to agents (docs/deploy.md, Build farm) ----------------------------------

RUN_ON = "RunOn"
LABEL_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def run_on_labels(value) -> list[str]:
    """The agent labels a ``configuration.RunOn`` value asks for ("linux, arm64" →
    ["arm64", "linux"]); empty when the action runs on the workers."""
    if not isinstance(value, str):
        return []
    return sorted({part.strip() for part in value.split(",") if part.strip()})


def run_on_problems(action_doc, *, on_agents: bool, provider: str) -> list[tuple[str, str]]:
    """``configuration.RunOn``'s problems: labels must be names; only providers an agent
    runs (Shell, Commands, CodeBuild) may be routed to agents."""
    value = configuration_of(action_doc).get(RUN_ON)
    if value is None:
        return []
    path = f"configuration.{RUN_ON}"
    if not on_agents:
        return [(path, f"{provider} actions do not run on agents: only Shell, Commands and "
                       "CodeBuild actions may name agent labels; remove RunOn")]
    labels = run_on_labels(value)
    if not labels:
        return [(path, 'names no label: give agent labels separated by commas, e.g. '
                       '"linux,arm64", or remove RunOn')]
    bad = [label for label in labels if not LABEL_RE.match(label)]
    if bad:
        return [(path, f'"{bad[0]}" is not a label: letters, digits, "_", "." and "-", at '
                       "most 40 characters")]
    if len(",".join(labels)) > 200:
        return [(path, "names too many labels (at most 200 characters)")]
    return []
