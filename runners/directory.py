"""Deploy ``Directory``: an atomic release of an artifact into a target directory.

Configuration: ``TargetDirectory`` (an absolute path) and ``KeepReleases``
(how many releases to keep, default ``"5"``). The layout is Capistrano's::

    <TargetDirectory>/
        current -> releases/20250101T120000.000000Z-7-3f2a9c1e   (a relative link)
        releases/20250101T120000.000000Z-7-3f2a9c1e/              (the files)
        releases/20250101T120000.000000Z-7-3f2a9c1e.release.json  (what was deployed)

A deploy copies the input artifact into a hidden folder under ``releases/``,
renames it to its release name, then swaps ``current`` in one ``rename(2)`` of
a freshly made link over the old one, so a reader of ``current`` sees the old
release or the new one, never a half. Anything that fails before the swap
(an empty artifact, a stop, a full disk) removes the half-made release and
leaves ``current`` untouched. Then only the newest ``KeepReleases`` releases
are kept (the current one always is). One deploy at a time per target
directory (a file lock).

The ``.release.json`` beside each release records the pipeline, execution,
action execution and the commit ids of the execution's sources, so the
deployed revision can always be told. ``release_rollback`` points ``current``
back at an earlier release in the same atomic way.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from pathlib import Path

from django.utils import timezone

from runners import register
from runners.base import ActionFailed, Result, RunContext, Runner, file_lock
from runners.checks import configuration_of, list_of

CONFIG_KEYS = ("TargetDirectory", "KeepReleases")
RELEASE_RE = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[A-Za-z0-9_.-]+$")


class ReleaseError(Exception):
    """A release operation that cannot be done; the message says why."""


# --- the release layout ----------------------------------------------------------


def releases(target: Path) -> list[str]:
    """Release names under ``target``, oldest first (names sort by time)."""
    folder = target / "releases"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and not p.is_symlink() and RELEASE_RE.match(p.name))


def current_release(target: Path) -> str | None:
    """The release ``current`` points at (None when there is no ``current`` link)."""
    link = target / "current"
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def release_manifest(target: Path, name: str) -> dict:
    path = target / "releases" / f"{name}.release.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _target_lock(target: Path, ctx: RunContext | None = None):
    """One release operation at a time per target directory."""
    return file_lock(target / ".conveyor-release.lock", ctx)


def _point_current(target: Path, name: str) -> None:
    """Swap ``current`` to ``releases/<name>`` with one rename (atomic for readers)."""
    link = target / "current"
    if link.exists() and not link.is_symlink():
        raise ReleaseError(f"{link} is a real directory or file, not a link: move it away "
                           "once, then Conveyor manages it")
    temporary = target / f".current-{secrets.token_hex(6)}"
    os.symlink(f"releases/{name}", temporary)
    try:
        os.replace(temporary, link)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def _prune(target: Path, keep: int, log=None) -> list[str]:
    """Remove all but the newest ``keep`` releases; never the current one."""
    names = releases(target)
    current = current_release(target)
    removed = []
    for name in names[:-keep] if keep < len(names) else []:
        if name == current:
            continue
        shutil.rmtree(target / "releases" / name, ignore_errors=True)
        (target / "releases" / f"{name}.release.json").unlink(missing_ok=True)
        removed.append(name)
        if log is not None:
            log.line(f"Removed old release {name}")
    return removed


def release_rollback(*, target_directory: str | Path, release: str | None = None) -> str:
    """Point ``current`` of a Directory deploy back at an earlier release; return its name.

    1. ``release`` names the release to go back to; None means the one just
       before the current release.
    2. The swap is the same single rename a deploy makes; the releases
       themselves are left as they are (a later deploy prunes as usual).
    3. ``ReleaseError`` when there is no such release, no earlier release, or
       the target was never deployed to.
    """
    target = Path(target_directory)
    if not target.is_dir():
        raise ReleaseError(f"{target} does not exist: nothing was deployed there")
    with _target_lock(target):
        names = releases(target)
        current = current_release(target)
        if release is None:
            if current not in names:
                raise ReleaseError(f"{target}/current points at no release to go back from")
            index = names.index(current)
            if index == 0:
                raise ReleaseError(f"{current} is the oldest release kept in {target}: "
                                   "there is no earlier release to go back to")
            release = names[index - 1]
        elif release not in names:
            raise ReleaseError(f'There is no release "{release}" in {target}/releases '
                               f"(kept: {', '.join(names) or 'none'})")
        _point_current(target, release)
        return release


# --- the runner ------------------------------------------------------------------


def _copy_tree(source: Path, destination: Path, ctx: RunContext) -> int:
    """Copy files (modes kept, links not followed); stop at once when told to."""
    count = 0

    def copy(src, dst, *, follow_symlinks=True):
        nonlocal count
        if ctx.should_stop():
            raise ActionFailed(f"Stopped: {ctx.stop_reason}")
        count += 1
        return shutil.copy2(src, dst, follow_symlinks=False)

    shutil.copytree(source, destination, symlinks=True, copy_function=copy)
    return count


@register
class DirectoryDeployRunner(Runner):
    provider = "Directory"
    categories = ("Deploy",)
    description = ("An atomic release of the input artifact into a target directory: a new "
                   "release folder, then the current link swapped in one rename.")
    default_timeout_minutes = 30

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        config = configuration_of(action_doc)
        problems: list[tuple[str, str]] = []
        target = config.get("TargetDirectory")
        if not isinstance(target, str) or not target:
            problems.append(("configuration.TargetDirectory", "is required"))
        elif "#{" not in target and not target.startswith("/"):
            problems.append(("configuration.TargetDirectory",
                             f'"{target}" is not an absolute path'))
        elif "#{" not in target and ".." in Path(target).parts:
            problems.append(("configuration.TargetDirectory",
                             f'"{target}" must not contain ".."'))
        keep = config.get("KeepReleases", "5")
        if "#{" not in str(keep) and not (str(keep).isdigit() and int(keep) >= 1):
            problems.append(("configuration.KeepReleases",
                             f'"{keep}" is not a whole number of releases (1 or more)'))
        for key in config:
            if key not in CONFIG_KEYS:
                problems.append((f"configuration.{key}",
                                 f'"{key}" is not a setting of the Directory provider: use '
                                 + ", ".join(CONFIG_KEYS)))
        if len(list_of(action_doc.get("inputArtifacts"))) != 1:
            problems.append(("inputArtifacts",
                             "a Directory deploy takes exactly one input artifact"))
        return problems

    def run(self, ctx: RunContext) -> Result:
        config = ctx.configuration
        raw = config.get("TargetDirectory", "")
        if not raw.startswith("/") or ".." in Path(raw).parts:
            raise ActionFailed(f'TargetDirectory "{raw}" is not an absolute path')
        keep_raw = str(config.get("KeepReleases", "5"))
        if not (keep_raw.isdigit() and int(keep_raw) >= 1):
            raise ActionFailed(f'KeepReleases "{keep_raw}" is not a whole number of releases')
        keep = int(keep_raw)
        if not ctx.input_dirs:
            raise ActionFailed("A Directory deploy needs an input artifact")
        artifact, source = next(iter(ctx.input_dirs.items()))
        if not any(source.iterdir()):
            raise ActionFailed(f'Input artifact "{artifact}" is empty: nothing to deploy')
        target = Path(raw)
        try:
            (target / "releases").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ActionFailed(f"Cannot create {target}/releases: {exc.strerror}") from exc
        with _target_lock(target, ctx):
            previous = current_release(target)
            stamp = timezone.now().strftime("%Y%m%dT%H%M%S.%fZ")
            name = f"{stamp}-{ctx.execution_number}-{ctx.action_execution_id[:8]}"
            staging = target / "releases" / f".incoming-{name}"
            final = target / "releases" / name
            try:
                ctx.log.line(f"Copying {artifact} into {final}")
                count = _copy_tree(source, staging, ctx)
                manifest = {
                    "release": name,
                    "pipeline": ctx.pipeline_name,
                    "pipelineExecutionId": ctx.pipeline_execution_id,
                    "executionNumber": ctx.execution_number,
                    "actionExecutionId": ctx.action_execution_id,
                    "stageName": ctx.stage_name,
                    "actionName": ctx.action_name,
                    "artifact": artifact,
                    "revisions": {k: v for k, v in ctx.variables.items()
                                  if k.endswith(".CommitId")},
                    "deployedAt": timezone.now().isoformat(),
                    "files": count,
                }
                (target / "releases" / f"{name}.release.json").write_text(
                    json.dumps(manifest, indent=2) + "\n")
                os.rename(staging, final)
                if ctx.should_stop():
                    raise ActionFailed(f"Stopped: {ctx.stop_reason}")
                _point_current(target, name)
            except (OSError, ReleaseError, ActionFailed) as exc:
                shutil.rmtree(staging, ignore_errors=True)
                shutil.rmtree(final, ignore_errors=True)
                (target / "releases" / f"{name}.release.json").unlink(missing_ok=True)
                if isinstance(exc, ActionFailed):
                    raise
                raise ActionFailed(f"Deploy into {target} failed, current left at "
                                   f"{previous or 'nothing'}: {exc}") from exc
            ctx.log.line(f"current -> releases/{name} (was {previous or 'nothing'})")
            _prune(target, keep, ctx.log)
        return Result(
            summary=f"Released {count} file(s) into {target} as {name}",
            output_variables={"ReleaseName": name, "ReleasePath": str(final),
                              "PreviousRelease": previous or ""},
        )
