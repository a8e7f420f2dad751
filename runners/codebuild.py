"""``CodeBuild`` (Build or Test, owner AWS): a buildspec run locally, through build projects.

1. ``ProjectName`` names a build project (``pipelines.models.BuildProject``);
   without one, ``buildspec.yml`` from the primary source's root runs with the
   default settings, and the log says so.
2. The buildspec (``BuildspecOverride``, else the project's inline buildspec or
   path, else ``buildspec.yml``) is read and checked **before anything runs**:
   what Conveyor does not run is refused with every problem at its path; what
   has no effect here is written in the log as a warning.
3. Environment, lowest precedence first: the ``CODEBUILD_*`` variables, the
   buildspec's ``env`` (variables, parameter-store, secrets-manager), the
   project's variables, the action's ``EnvironmentVariables``. Secret values
   are masked everywhere.
4. The phases run in one ``ShellSession`` (0.1: each command in its own
   shell), with the stricter of the project's and the action's network, from
   ``$CODEBUILD_SRC_DIR`` (CodeBuild's folder for a connection's clone, see
   ``runners.build.clone_layout``), with CodeBuild's rules: a failed ``install``
   or ``pre_build`` ends the build, a failed ``build`` still runs ``post_build``,
   ``on-failure: CONTINUE`` goes on to the next phase; ``finally`` runs after its phase's commands
   whatever they did; ``CODEBUILD_BUILD_SUCCEEDING`` is 0 once a phase failed.
5. Then the exported variables become output variables, JUnit reports feed the
   summary (a failing test fails the build only through its command, as on
   AWS), and — if the build succeeded — the artifacts fill the output artifacts
   (``secondary-artifacts`` by identifier) and the project's cache is saved.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

from django.conf import settings

from pipelines.buildspec import HOME_PREFIXES, SRC_PREFIXES, Buildspec, buildspec_parse
from runners import register, sandbox
from runners.base import ActionFailed, Readiness, Result, RunContext, Runner, file_lock
from runners.build import (
    OWN_SHELL_FUNCTION,
    PhaseResult,
    build_environment,
    build_home,
    clone_layout,
    collect_artifact,
    expand,
    glob_regex,
    input_layout,
    inside,
    log_secret_lengths,
    matching_files,
    referenced_names,
    resolve_entries,
    run_phase,
)
from runners.checks import configuration_of
from runners.session import ShellSession
from runners.shell import Masker, TestReport, parse_junit

CONFIG_KEYS = ("ProjectName", "PrimarySource", "EnvironmentVariables", "BatchEnabled",
               "CombineArtifacts", "BuildspecOverride", "RunOn")
ENV_TYPES = ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER")
DEFAULT_BUILDSPEC = "buildspec.yml"
DEFAULT_TIMEOUT_MINUTES = 60


def cache_root() -> Path:
    configured = getattr(settings, "CONVEYOR_BUILD_CACHE_ROOT", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "build-cache"


def environment_entries(value: str) -> list[dict]:
    """The action's ``EnvironmentVariables`` JSON string as entries (raises ``ValueError``)."""
    entries = json.loads(value) if value.strip() else []
    if not isinstance(entries, list):
        raise ValueError("must be a JSON list of {name, value, type} objects")
    for i, item in enumerate(entries):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not isinstance(item.get("value"), str):
            raise ValueError(f"entry {i} must be an object with a name and a value (strings)")
        if item.get("type", "PLAINTEXT") not in ENV_TYPES:
            raise ValueError(f'entry {i}: "{item.get("type")}" is not a type: use '
                             + ", ".join(ENV_TYPES))
    return entries


def build_network(ctx: RunContext, project) -> str:
    """The network of a build: the stricter of the action's ``Network`` and the build
    project's ``network`` ("none" from either wins; docs/runners.md), said in the log."""
    action = sandbox.network_for(ctx)
    own = project.network if project is not None else "host"
    network = "none" if "none" in (action, own) else "host"
    if network == "none":
        who = [w for w, v in ((f'build project "{project.name}"' if project else "", own),
                              ("configuration.Network", action)) if v == "none" and w]
        ctx.log.line(f"[Container] Network: none ({' and '.join(who)}): the build reaches "
                     "no network at all")
    return network


@register
class CodeBuildRunner(Runner):
    provider = "CodeBuild"
    categories = ("Build", "Test")
    description = "Runs the buildspec of a build project (or buildspec.yml) locally."
    runs_on_agents = True

    def check(self, action_doc: dict) -> list[tuple[str, ...]]:
        config = configuration_of(action_doc)
        problems: list[tuple[str, ...]] = []
        if not config.get("ProjectName"):
            problems.append(("configuration.ProjectName", "is required: the build project "
                             "to run (without one, buildspec.yml of the source runs)"))
        inputs = [i.get("name") for i in action_doc.get("inputArtifacts") or []
                  if isinstance(i, dict)]
        primary = config.get("PrimarySource")
        if primary is not None and primary not in inputs:
            problems.append(("configuration.PrimarySource",
                             f'"{primary}" is not an input artifact of this action'))
        if primary is None and len(inputs) > 1:
            problems.append(("configuration.PrimarySource", "is required when the action has "
                             "several input artifacts: name the one the buildspec is in"))
        if config.get("BatchEnabled", "false").lower() == "true":
            problems.append(("configuration.BatchEnabled", "batch builds do not run here: "
                             'remove BatchEnabled or set it to "false"'))
        if config.get("CombineArtifacts", "false").lower() == "true":
            problems.append(("configuration.CombineArtifacts", "combines the artifacts of a "
                             "batch build, and batch builds do not run here"))
        problems += sandbox.limits_problems(config)
        value = config.get("EnvironmentVariables")
        if value is not None and "#{" not in value:
            try:
                environment_entries(value)
            except ValueError as exc:
                problems.append(("configuration.EnvironmentVariables", str(exc)))
        for key in config:
            if key not in CONFIG_KEYS and key not in sandbox.SANDBOX_KEYS:
                problems.append((f"configuration.{key}", f'"{key}" is not a setting of the '
                                 "CodeBuild action: use " + ", ".join(CONFIG_KEYS)
                                 + " (or the sandbox's " + ", ".join(sandbox.SANDBOX_KEYS)
                                 + ")"))
        return problems

    def readiness(self, action_doc: dict) -> list[Readiness]:
        """A note for the migration report: which build project the action runs with, or
        that none of that name exists and the defaults hold (it runs either way)."""
        from pipelines import selectors

        name = configuration_of(action_doc).get("ProjectName")
        if not isinstance(name, str) or not name or "#{" in name:
            return []
        project = selectors.build_project_get(name)
        if project is None:
            return [Readiness(note=(
                f'no build project "{name}": runs {DEFAULT_BUILDSPEC} from the primary source '
                f"with default settings ({DEFAULT_TIMEOUT_MINUTES} minutes, "
                f"{sandbox.DEFAULT_COMPUTE_TYPE}, no project variables, no cache); to change "
                "them, make the build project in the admin (/admin/pipelines/buildproject/"
                "add/), with POST /api/build-projects/ or with manage.py "
                "import_build_project"))]
        buildspec = ("an inline buildspec" if "\n" in project.buildspec.strip()
                     else project.buildspec or DEFAULT_BUILDSPEC)
        return [Readiness(note=(
            f'with build project "{name}": {buildspec}, {project.compute_type}, '
            f"{project.timeout_in_minutes} minutes, network {project.network}"))]

    # --- the build ----------------------------------------------------------------

    @staticmethod
    def _project(ctx: RunContext, name: str):
        """(the build project or None, its build number or None): from the database on
        a worker, from what the server prepared on an agent."""
        if ctx.prepared is not None:
            fields = ctx.prepared.get("buildProject")
            project = SimpleNamespace(**fields) if fields else None
            return project, ctx.prepared.get("buildNumber")
        from pipelines import selectors, services

        project = selectors.build_project_get(name)
        return project, services.build_project_next_number(name=name) if project else None

    def run(self, ctx: RunContext) -> Result:
        config = ctx.configuration
        name = config.get("ProjectName", "")
        primary, src_dir, secondary = input_layout(ctx, config.get("PrimarySource"))
        project, number = self._project(ctx, name)
        if project is None:
            ctx.log.line(f'[Container] No build project is named "{name}": running '
                         f"{DEFAULT_BUILDSPEC} from the root of the primary source "
                         f"({primary or 'no input'}) with default settings "
                         f"({DEFAULT_TIMEOUT_MINUTES} minutes, BUILD_GENERAL1_SMALL, no "
                         "project variables, no cache)")
        where, text = self._buildspec_text(ctx, project, src_dir)
        spec = self._checked(ctx, where, text)
        number = number or ctx.execution_number
        home = build_home(ctx)
        # Where the build sees its source: CodeBuild's folder for a clone, or the source.
        layout = clone_layout(ctx, primary, src_dir)
        work_dir = layout or src_dir
        env = build_environment(ctx, project=name, build_number=number, src_dir=work_dir,
                                primary=primary, secondary=secondary, home=home)
        read_write = [home]
        if layout is not None:
            env["PWD"] = str(layout)  # bash keeps the path through the link (`cd ../..`)
            read_write.append(ctx.workspace.parent / "codebuild")
            ctx.log.line(f"[Container] CODEBUILD_SRC_DIR={layout}: CodeBuild's folder for a "
                         "clone of the repository (a link to the primary source)")
        secrets: list[str] = []
        env.update(spec.variables)
        env.update(resolve_entries(({"name": k, "value": v, "type": "PARAMETER_STORE"}
                                    for k, v in spec.parameter_store.items()), secrets))
        env.update(resolve_entries(({"name": k, "value": v, "type": "SECRETS_MANAGER"}
                                    for k, v in spec.secrets_manager.items()), secrets))
        if project is not None:
            env.update(resolve_entries(project.environment_variables, secrets))
        try:
            action_entries = environment_entries(config.get("EnvironmentVariables", ""))
        except ValueError as exc:
            raise ActionFailed(f"configuration.EnvironmentVariables {exc}") from None
        env.update(resolve_entries(action_entries, secrets))
        masker = Masker(secrets)
        log_secret_lengths(ctx, secrets)
        # The project's compute type sizes the build (an action's own ComputeType or
        # Limit* keys, read by sandbox.limits_for, come first).
        limits = sandbox.limits_for(ctx)
        compute = ctx.configuration.get("ComputeType") or (
            project.compute_type if project else "") or sandbox.DEFAULT_COMPUTE_TYPE
        if "ComputeType" not in ctx.configuration:
            limits = sandbox.compute_type_limits(compute, limits)
        sandbox.log_compute_type(ctx, compute, limits)
        network = build_network(ctx, project)
        cache_paths = list(spec.cache_paths) + list(project.cache_paths if project else [])
        if cache_paths and project is None:
            ctx.log.line("[Container] cache.paths: not kept: there is no build project "
                         f'named "{name}" to keep a cache for')
        if cache_paths and project is not None:
            self._cache_restore(ctx, name, src_dir, home)
        timeout = project.timeout_in_minutes if project else DEFAULT_TIMEOUT_MINUTES
        deadline = time.monotonic() + timeout * 60

        with ShellSession(ctx, env=env, cwd=work_dir, masker=masker, posix=spec.posix_shell,
                          read_only=list(secondary.values()), read_write=read_write,
                          limits=limits, network=network) as session:
            if spec.version == "0.1":
                session.query(OWN_SHELL_FUNCTION)
            failed = self._phases(ctx, session, spec, masker, deadline)
            exported = {k: masker.text(v)
                        for k, v in session.variables(spec.exported_variables).items()}
            texts = [t for a in self._artifact_specs(spec)
                     for t in (*a.files, a.base_directory, *a.exclude_paths)]
            texts += [t for r in spec.reports for t in (*r.files, r.base_directory)]
            values = {**env, **session.variables(sorted(referenced_names(texts)))}
        if layout is not None:  # paths through the link lead to the source itself
            values = {k: str(src_dir) + v[len(str(layout)):]
                      if v == str(layout) or v.startswith(f"{layout}/") else v
                      for k, v in values.items()}
        for missing in [n for n in spec.exported_variables if n not in exported]:
            ctx.log.line(f"[Container] Exported variable {missing} is not set at the end of "
                         "the build")
        if failed is not None and failed.status == "STOPPED":
            raise ActionFailed(f"Stopped: {ctx.stop_reason}")
        report = self._reports(ctx, spec, src_dir, values, masker)
        tests = f"{masker.text(report.summary())}. " if report.files else ""
        if failed is not None:
            if failed.status == "TIMED_OUT":
                summary = (f"Build timed out after {timeout} minutes (the build project's "
                           f"timeout) in phase {failed.name}")
            else:
                summary = f"Phase {failed.name} failed: {failed.describe(masker)}"
            ctx.log.line("[Container] Artifacts and cache are not kept: the build failed")
            raise ActionFailed((tests + summary)[:2000], output_variables=exported)
        self._artifacts(ctx, spec, src_dir, values)
        if cache_paths and project is not None:
            self._cache_save(ctx, name, cache_paths, src_dir, home)
        ran = [p.name.upper() for p in spec.phases]
        summary = f"Build succeeded ({', '.join(ran) or 'no phases'})"
        return Result(summary=(tests + summary)[:2000], output_variables=exported,
                      external_id=env["CODEBUILD_BUILD_ID"])

    def _buildspec_text(self, ctx: RunContext, project, src_dir: Path) -> tuple[str, str]:
        """(where the buildspec comes from, its text)."""
        override = ctx.configuration.get("BuildspecOverride", "")
        chosen = override or (project.buildspec if project else "") or DEFAULT_BUILDSPEC
        if "\n" in chosen.strip():
            where = "BuildspecOverride" if override else f'build project "{project.name}"'
            ctx.log.line(f"[Container] Buildspec: inline, from the {where}")
            return where, chosen
        path = (src_dir / chosen).resolve()
        if not path.is_relative_to(src_dir.resolve()):
            raise ActionFailed(f'The buildspec path "{chosen}" leads outside the primary source')
        if not path.is_file():
            raise ActionFailed(f"YAML_FILE_ERROR: {chosen} was not found in the primary source "
                               "(write one, name another path in the build project, or give "
                               "an inline buildspec)")
        ctx.log.line(f"[Container] Buildspec: {chosen} from the primary source")
        return chosen, path.read_text(errors="replace")

    def _checked(self, ctx: RunContext, where: str, text: str) -> Buildspec:
        spec, problems = buildspec_parse(text)
        for p in problems:
            ctx.log.line(f"[Container] {where}: {p.severity}: {p}")
        if spec is None:
            errors = [str(p) for p in problems if p.severity == "error"]
            raise ActionFailed(f"The buildspec ({where}) cannot run here: " + "; ".join(errors))
        return spec

    def _phases(self, ctx: RunContext, session: ShellSession, spec: Buildspec, masker: Masker,
                deadline: float) -> PhaseResult | None:
        """Run the phases by CodeBuild's rules; the first failure (or None)."""
        failed: PhaseResult | None = None
        ending = False
        for phase in spec.phases:
            if ending:
                ctx.log.line(f"[Container] Phase {phase.name.upper()} does not run: "
                             f"phase {failed.name} failed")
                continue
            session.query(f"export CODEBUILD_BUILD_SUCCEEDING={0 if failed else 1}")
            result = run_phase(session, ctx, phase.name, phase.commands,
                               phase.finally_commands, masker=masker, deadline=deadline,
                               own_shell=spec.version == "0.1")
            if result.status in ("STOPPED", "TIMED_OUT"):
                return result
            if result.status == "FAILED":
                failed = failed or result
                if phase.on_failure == "CONTINUE":
                    ctx.log.line(f"[Container] on-failure CONTINUE: going on to the next "
                                 f"phase after {result.name} failed")
                elif phase.name in ("install", "pre_build", "post_build"):
                    ending = True
                # A failed build phase (ABORT) still runs post_build, as on CodeBuild.
        return failed

    # --- reports, artifacts, cache ------------------------------------------------

    def _reports(self, ctx: RunContext, spec: Buildspec, src_dir: Path, values: dict,
                 masker: Masker) -> TestReport:
        paths: list[Path] = []
        for report in spec.reports:
            try:
                base = src_dir / inside(src_dir, expand(report.base_directory, values),
                                        f"reports.{report.name}.base-directory")
            except ActionFailed as exc:
                ctx.log.line(f"[Container] Report group {report.name} not read: {exc.summary}")
                continue
            found = matching_files(base, [expand(f, values) for f in report.files])
            ctx.log.line(f"[Container] Report group {report.name}: {len(found)} file(s)")
            paths += [base / rel for rel in found]
        result = parse_junit(paths, src_dir) if paths else TestReport()
        for name in result.unreadable:
            ctx.log.line(masker.text(f"Not a JUnit XML report: {name}"))
        if result.files:
            ctx.log.line(masker.text(f"{result.summary()} (from {', '.join(result.files)})"))
        return result

    @staticmethod
    def _artifact_specs(spec: Buildspec) -> list:
        return ([spec.artifacts] if spec.artifacts else []) + list(
            spec.secondary_artifacts.values())

    def _artifacts(self, ctx: RunContext, spec: Buildspec, src_dir: Path, values: dict) -> None:
        """Fill each output artifact: by secondary identifier, else the primary artifacts."""
        outputs = [item["name"] for item in ctx.action.get("outputArtifacts") or []]
        used: set[str] = set()
        for name in outputs:
            chosen = spec.secondary_artifacts.get(name)
            where = f"artifacts.secondary-artifacts.{name}"
            if chosen is None and len(outputs) == 1 and spec.artifacts is not None \
                    and spec.artifacts.files:
                chosen, where = spec.artifacts, "artifacts"
            if chosen is None:
                raise ActionFailed(
                    f'Output artifact "{name}": the buildspec has no '
                    + ("artifacts section" if len(outputs) == 1 else
                       f"secondary-artifacts.{name} (with several output artifacts, each is "
                       "the secondary artifact of the same identifier)"))
            used.add(where)
            count = collect_artifact(ctx, src_dir, files=chosen.files,
                                     base_directory=chosen.base_directory,
                                     discard_paths=chosen.discard_paths,
                                     exclude_paths=chosen.exclude_paths,
                                     into=ctx.output_dirs[name], values=values, where=where)
            if not count:
                # As CodeBuild's UPLOAD_ARTIFACTS: "no matching artifact paths found".
                raise ActionFailed(f"{where}: no file matched "
                                   + ", ".join(chosen.files)
                                   + (f" under {chosen.base_directory}"
                                      if chosen.base_directory else ""))
            label = f' (named "{chosen.name}" in the buildspec)' if chosen.name else ""
            ctx.log.line(f"[Container] Collected {count} file(s) of {where} into output "
                         f"artifact {name}{label}")
        for a in self._artifact_specs(spec):
            where = f"artifacts.secondary-artifacts.{a.identifier}" if a.identifier \
                else "artifacts"
            if where not in used and a.files:
                ctx.log.line(f"[Container] {where} is not stored: no output artifact of this "
                             "action takes it")

    @staticmethod
    def _cache_map(path: str, src_dir: Path, home: Path) -> tuple[str, Path, str]:
        """(cache folder kind, the folder it maps to, the pattern inside it)."""
        for prefix in HOME_PREFIXES:
            if path.startswith(prefix):
                return "home", home, path[len(prefix):]
        for prefix in SRC_PREFIXES:
            if path.startswith(prefix):
                return "src", src_dir, path[len(prefix):].lstrip("/")
        return "src", src_dir, path

    def _cache_restore(self, ctx: RunContext, project: str, src_dir: Path, home: Path) -> None:
        folder = cache_root() / project
        count = 0
        with file_lock(cache_root() / f".{project}.lock", ctx):
            for kind, root in (("src", src_dir), ("home", home)):
                for rel in matching_files(folder / kind, ["**/*"]):
                    target = root / rel
                    if target.exists():
                        continue  # the source wins over the cache
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(folder / kind / rel, target)
                    count += 1
        ctx.log.line(f"[Container] Cache of project {project}: restored {count} file(s)")

    def _cache_save(self, ctx: RunContext, project: str, paths: list[str], src_dir: Path,
                    home: Path) -> None:
        root = cache_root()
        staging = root / f".{project}.{uuid.uuid4().hex}"
        count = 0
        for path in paths:
            kind, base, pattern = self._cache_map(path, src_dir, home)
            if pattern.startswith("/") or ".." in pattern.split("/"):
                ctx.log.line(f"[Container] cache path {path} is not kept: outside the source "
                             "directory and the home")
                continue
            glob_regex(pattern)  # a pattern CodeBuild reads
            for rel in matching_files(base, [pattern]):
                target = staging / kind / rel
                if target.exists():
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(base / rel, target)
                count += 1
        staging.mkdir(parents=True, exist_ok=True)
        with file_lock(root / f".{project}.lock", ctx):
            old = root / project
            if old.exists():
                retired = root / f".{project}.old.{uuid.uuid4().hex}"
                os.rename(old, retired)
                os.rename(staging, old)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.rename(staging, old)
        ctx.log.line(f"[Container] Cache of project {project}: saved {count} file(s)")
