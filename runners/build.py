"""What the Commands action and CodeBuild share: their environment, phases, artifacts.

Both run on CodeBuild at AWS, so a build here sees what a build there sees:

- ``build_environment``: a clean environment with ``HOME`` the action's own
  folder (CodeBuild's ``/root``), Conveyor's ``CONVEYOR_*`` variables and the
  ``CODEBUILD_*`` variables a buildspec commonly reads;
- ``resolve_entries``: ``{name, value, type}`` entries (PLAINTEXT,
  PARAMETER_STORE, SECRETS_MANAGER — the last two from Conveyor's secrets, see
  docs/runners.md), every secret value collected for masking;
- ``run_phase``: one phase in a ``ShellSession``, its start and end marked in
  the log as CodeBuild's log marks them (``[Container] Entering phase BUILD``,
  ``Phase complete: BUILD State: FAILED``);
- ``collect_artifact``: CodeBuild's file paths (``**/*``, ``base-directory``,
  ``discard-paths``, ``exclude-paths``), always inside the source directory.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from runners.base import ActionFailed, RunContext
from runners.session import ShellSession
from runners.shell import (
    MAX_SUMMARY_COMMAND,
    PASSED_THROUGH,
    Masker,
    secret_value,
)

VAR_REF_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9_]")
# A buildspec 0.1 command runs in its own shell: a subshell of the session, so
# nothing it changes reaches the next command.
OWN_SHELL_FUNCTION = '__conveyor_own_shell() { ( eval "$1" ); }'


def source_versions(ctx: RunContext) -> dict[str, str]:
    """Artifact name → the revision (commit id) its source action resolved in this execution."""
    if ctx.prepared is not None:  # on an agent: the server looked them up
        return dict(ctx.prepared.get("sourceVersions") or {})
    from executions.selectors import artifact_revisions

    if not ctx.pipeline_execution_id:  # a rule evaluated on its own, outside an execution
        return {}
    return artifact_revisions(ctx.pipeline_execution_id)


def build_home(ctx: RunContext) -> Path:
    """The build's ``HOME`` (CodeBuild's ``/root``): a folder of the action's own directory,
    the one the sandbox mounts as the home of the commands it runs."""
    home = ctx.workspace.parent / "sandbox-home"
    home.mkdir(parents=True, exist_ok=True)
    return home


def input_layout(ctx: RunContext, primary: str | None) -> tuple[str, Path, dict[str, Path]]:
    """(primary input name, its folder, the secondary inputs by name)."""
    names = list(ctx.input_dirs)
    if not names:
        return "", ctx.workspace, {}
    name = primary if primary in ctx.input_dirs else names[0]
    return name, ctx.input_dirs[name], {n: d for n, d in ctx.input_dirs.items() if n != name}


# A connection's host when its base URL has none (a folder of repositories).
PROVIDER_HOSTS = {"GitHub": "github.com", "GitLab": "gitlab.com", "Bitbucket": "bitbucket.org"}


def clone_source(pipeline_execution_id: str, primary: str) -> dict | None:
    """{"repository", "host"} when the artifact ``primary`` is a CodeStarSourceConnection
    action's ``CODEBUILD_CLONE_REF`` output in that execution, else None (reads the
    database: the server calls it for an agent, ``agents.work._extension``)."""
    from urllib.parse import urlsplit

    from executions.selectors import artifact_producers
    from pipelines.selectors import connection_for

    provider, doc = artifact_producers(pipeline_execution_id).get(primary, ("", {}))
    config = doc.get("configuration") or {}
    repository = str(config.get("FullRepositoryId", ""))
    if provider != "CodeStarSourceConnection" or not repository \
            or config.get("OutputArtifactFormat") != "CODEBUILD_CLONE_REF":
        return None
    parts = repository.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return None
    connection = connection_for(str(config.get("ConnectionArn", "")))
    host = ""
    if connection is not None:
        host = (urlsplit(connection.base_url).hostname or ""
                if "://" in connection.base_url else "")
        host = host or PROVIDER_HOSTS.get(connection.provider, "git")
    return {"repository": repository, "host": host}


def clone_layout(ctx: RunContext, primary: str, src_dir: Path) -> Path | None:
    """CodeBuild's folder for a clone of a connection's repository, or None.

    When the primary source is a ``CodeStarSourceConnection`` action's
    ``CODEBUILD_CLONE_REF`` output, CodeBuild clones the repository itself and its
    ``CODEBUILD_SRC_DIR`` is ``/codebuild/output/src<digits>/src/<host>/<owner>/<repo>``;
    builds that make a GOPATH of it rely on that (``cd ../..``). The same folders
    are made in the action's own directory, ``<repo>`` a link to the workspace (which
    stays where artifacts are collected); ``<host>`` is the host of the connection's
    base URL (docs/runners.md).
    """
    if ctx.prepared is not None:   # on an agent: the server looked it up (clone_source)
        found = (ctx.prepared.get("cloneSources") or {}).get(primary)
    else:
        found = clone_source(ctx.pipeline_execution_id, primary)
    if not found:
        return None
    parts, host = found["repository"].split("/"), found["host"]
    digits = int(ctx.action_execution_id.replace("-", "")[:8], 16)
    link = ctx.workspace.parent.joinpath("codebuild", "output", f"src{digits}", "src",
                                         host or "git", *parts)
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(src_dir, target_is_directory=True)
    return link


def build_environment(ctx: RunContext, *, project: str, build_number: int, src_dir: Path,
                      primary: str, secondary: dict[str, Path], home: Path) -> dict[str, str]:
    """The environment a build starts with (before any buildspec, project or action variable)."""
    env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ and k != "HOME"}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    build_id = f"{project}:{ctx.action_execution_id}"
    versions = source_versions(ctx)
    env.update({
        "HOME": str(home),
        "CONVEYOR_PIPELINE_NAME": ctx.pipeline_name,
        "CONVEYOR_PIPELINE_EXECUTION_ID": ctx.pipeline_execution_id,
        "CONVEYOR_STAGE_NAME": ctx.stage_name,
        "CONVEYOR_ACTION_NAME": ctx.action_name,
        "CONVEYOR_ACTION_EXECUTION_ID": ctx.action_execution_id,
        "CONVEYOR_WORKSPACE": str(ctx.workspace),
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_ARN": f"arn:conveyor:codebuild:local:000000000000:build/{build_id}",
        "CODEBUILD_PROJECT_ARN": f"arn:conveyor:codebuild:local:000000000000:project/{project}",
        "CODEBUILD_BUILD_NUMBER": str(build_number),
        "CODEBUILD_BUILD_IMAGE": "conveyor/local",
        "CODEBUILD_INITIATOR": f"codepipeline/{ctx.pipeline_name}",
        "CODEBUILD_LOG_PATH": ctx.action_execution_id,
        "CODEBUILD_START_TIME": str(int(time.time() * 1000)),
        "CODEBUILD_SRC_DIR": str(src_dir),
        "CODEBUILD_BUILD_SUCCEEDING": "1",
    })
    for name, directory in ctx.input_dirs.items():
        env[f"CONVEYOR_INPUT_{SAFE_NAME_RE.sub('_', name)}"] = str(directory)
    for name, directory in secondary.items():
        env[f"CODEBUILD_SRC_DIR_{SAFE_NAME_RE.sub('_', name)}"] = str(directory)
        if name in versions:
            env[f"CODEBUILD_SOURCE_VERSION_{SAFE_NAME_RE.sub('_', name)}"] = versions[name]
    if primary in versions:
        env["CODEBUILD_SOURCE_VERSION"] = versions[primary]
        env["CODEBUILD_RESOLVED_SOURCE_VERSION"] = versions[primary]
    return env


def parameter_value(name: str) -> str:
    """A PARAMETER_STORE value: Conveyor's secret of the same name without its leading ``/``."""
    return secret_value(name.lstrip("/"))


def resolve_entries(entries: Iterable[dict], secrets: list[str]) -> dict[str, str]:
    """``{name, value, type}`` entries as environment values; secret values added to ``secrets``."""
    env: dict[str, str] = {}
    for item in entries:
        kind = item.get("type") or "PLAINTEXT"
        value = str(item.get("value", ""))
        if kind == "SECRETS_MANAGER":
            value = secret_value(value)
            secrets.append(value)
        elif kind == "PARAMETER_STORE":
            value = parameter_value(value)
            secrets.append(value)
        env[item["name"]] = value
    return env


def log_secret_lengths(ctx: RunContext, secrets: list[str]) -> None:
    from runners.shell import MIN_MASKED

    for value in secrets:
        if 0 < len(value.strip()) < MIN_MASKED:
            ctx.log.line(f"A secret shorter than {MIN_MASKED} characters is not masked")


# --- phases ----------------------------------------------------------------------


@dataclass
class PhaseResult:
    """How a phase ended; for a failure, the failing command (1-based among its block)."""

    name: str
    status: str  # SUCCEEDED, FAILED, TIMED_OUT, STOPPED
    command: str = ""
    index: int = 0
    count: int = 0
    code: int = 0
    block: str = "commands"  # or "finally"
    limit: str | None = None  # the limit the session ended it for (runners/watch.py)

    def describe(self, masker: Masker) -> str:
        shown = self.command if len(self.command) <= MAX_SUMMARY_COMMAND else (
            self.command[:MAX_SUMMARY_COMMAND] + "…")
        where = "Command" if self.block == "commands" else "Finally command"
        limit = f" ({self.limit})" if self.limit else ""
        return (f"{where} {self.index} of {self.count} failed with exit code {self.code}: "
                f"{masker.text(shown)}{limit}")


def run_phase(session: ShellSession, ctx: RunContext, name: str, commands: list[str],
              finally_commands: list[str], *, masker: Masker, deadline: float | None = None,
              own_shell: bool = False, shown: list[str] | None = None) -> PhaseResult:
    """Run a phase's ``commands`` (stopping at the first failure), then its ``finally``.

    ``shown`` is how the commands read in the log and the summary when what runs
    differs (a ``#{…}`` reference run as its environment variable).
    """
    label = name.upper()
    ctx.log.line(f"[Container] Entering phase {label}")
    result = PhaseResult(label, "SUCCEEDED")
    for block, items in (("commands", commands), ("finally", finally_commands)):
        for i, text in enumerate(items):
            command = shown[i] if shown and block == "commands" else text
            ctx.log.line(masker.text(f"[Container] Running command {command}"))
            if own_shell:
                text = f"__conveyor_own_shell {shlex.quote(text)}"
            outcome = session.run(text, deadline=deadline)
            if outcome.stopped or ctx.should_stop():
                ctx.log.line(f"[Container] Phase complete: {label} State: STOPPED")
                return PhaseResult(label, "STOPPED")
            if outcome.timed_out:
                ctx.log.line(f"[Container] Phase complete: {label} State: TIMED_OUT")
                return PhaseResult(label, "TIMED_OUT", command, i + 1, len(items), -1, block)
            if outcome.code != 0:
                ctx.log.line(masker.text(f"[Container] Command did not exit successfully "
                                         f"{command} exit status {outcome.code}"))
                if result.status == "SUCCEEDED":
                    result = PhaseResult(label, "FAILED", command, i + 1, len(items),
                                         outcome.code, block, outcome.limit)
                break
    ctx.log.line(f"[Container] Phase complete: {label} State: {result.status}")
    if result.status == "FAILED":
        ctx.log.line(masker.text(
            f"[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error "
            f"while executing command: {result.command}. Reason: exit status {result.code}"))
    return result


# --- artifacts -------------------------------------------------------------------


def glob_regex(pattern: str) -> re.Pattern:
    """A CodeBuild path pattern as a regular expression over ``/``-separated relative paths.

    ``**/`` is any number of folders (none included), ``*`` and ``?`` stay within
    one name; a pattern ending in ``/`` means everything under that folder, and a
    pattern without wildcards names a file or everything under a folder.
    """
    p = pattern.strip()
    while p.startswith("./"):
        p = p[2:]
    if p.endswith("/"):
        p += "**/*"
    out, i = [], 0
    while i < len(p):
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] == "*":
            out.append("[^/]*")
            i += 1
        elif p[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    if not any(ch in p for ch in "*?"):
        out.append("(?:/.*)?")
    return re.compile("".join(out))


def expand(text: str, values: dict[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` replaced by their values (unset: empty), as CodeBuild does."""
    return VAR_REF_RE.sub(lambda m: values.get(m.group(1) or m.group(2), ""), text)


def referenced_names(texts: Iterable[str]) -> set[str]:
    return {m.group(1) or m.group(2) for t in texts for m in VAR_REF_RE.finditer(t)}


def inside(src_dir: Path, value: str, where: str) -> Path:
    """The folder or pattern ``value`` (variables expanded) relative to ``src_dir``.

    Raises ``ActionFailed`` naming ``where`` when it leads outside the source directory.
    """
    root = str(src_dir)
    if value == root or value.startswith(root + "/"):
        value = value[len(root):].lstrip("/")
    if value.startswith("/") or ".." in value.split("/"):
        raise ActionFailed(f'{where}: "{value}" is outside the source directory: artifacts '
                           "and reports are taken only from under $CODEBUILD_SRC_DIR")
    return Path(value)


def matching_files(base: Path, includes: list[str], excludes: list[str] = ()) -> list[str]:
    """Relative paths of the files under ``base`` matching ``includes`` and no ``excludes``.

    Links are not followed out of ``base``: a file whose real path is elsewhere is skipped.
    """
    if not base.is_dir():
        return []
    inc = [glob_regex(p) for p in includes] or [glob_regex("**/*")]
    exc = [glob_regex(p) for p in excludes]
    root = base.resolve()
    found = []
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            rel = path.relative_to(base).as_posix()
            if not any(r.fullmatch(rel) for r in inc) or any(r.fullmatch(rel) for r in exc):
                continue
            if not path.resolve().is_relative_to(root) or not path.is_file():
                continue
            found.append(rel)
    return found


def collect_artifact(ctx: RunContext, src_dir: Path, *, files: list[str], base_directory: str,
                     discard_paths: bool, exclude_paths: list[str], into: Path,
                     values: dict[str, str], where: str) -> int:
    """Copy an artifact's files into ``into``; return how many (paths kept relative to the base)."""
    base = src_dir / inside(src_dir, expand(base_directory, values), f"{where}.base-directory")
    patterns = []
    for i, pattern in enumerate(files):
        expanded = expand(pattern, values)
        root = str(base)
        if expanded.startswith(root + "/"):
            expanded = expanded[len(root) + 1:]
        patterns.append(str(inside(src_dir, expanded, f"{where}.files[{i}]"))
                        if expanded.startswith("/") else expanded)
    chosen = matching_files(base, patterns, [expand(e, values) for e in exclude_paths])
    for rel in chosen:
        target = into / (Path(rel).name if discard_paths else rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(base / rel, target)
    return len(chosen)
