"""The buildspec document (CodeBuild's ``buildspec.yml``): parsing and checking, nothing run.

``buildspec_parse(text)`` reads a buildspec — from a source's ``buildspec.yml``
or a build project's inline buildspec — into a ``Buildspec`` and returns every
problem at once, each at its path (``phases.build.run-as: …``):

- errors: what Conveyor refuses to run (unknown keys, ``run-as``, ``proxy``, a
  version other than 0.2/0.1, a path outside the source directory, commands
  written for PowerShell). A buildspec with errors never starts.
- warnings: what is read but has no effect here (``runtime-versions``, an unused
  ``batch`` section, coverage report formats, …). The build writes them in its
  log before the first phase, so nothing the user wrote is silently ignored.

Pure: no database, no files, no processes. Values are kept as CodeBuild reads
YAML: unquoted ``true``/``yes`` become ``"true"``, numbers their text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

PHASES = ("install", "pre_build", "build", "post_build")
VERSIONS = ("0.2", "0.1")
MAX_BYTES = 1 << 20
MAX_NODES = 100_000
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ARTIFACT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# A PowerShell cmdlet (Verb-Noun) opening a command, or $Env:NAME: the buildspec was
# written for a Windows image; bash would run something else entirely.
POWERSHELL_RE = re.compile(
    r"^\s*(?:(?:New|Get|Set|Remove|Copy|Move|Write|Invoke|Test|Start|Stop|Add|Out|Select|"
    r"Where|ForEach|Import|Export|Expand|Compress)-[A-Z][A-Za-z]+\b|\$[A-Za-z_]\w*\s*=\s*"
    r"Get-)|\$Env:[A-Za-z_]", re.M)
JUNIT_FORMATS = ("JUNITXML",)
OTHER_TEST_FORMATS = ("CUCUMBERJSON", "NUNITXML", "NUNIT3XML", "TESTNGXML", "VISUALSTUDIOTRX")
COVERAGE_FORMATS = ("CLOVERXML", "COBERTURAXML", "JACOCOXML", "SIMPLECOV")
SHELLS = {"bash": False, "/bin/bash": False, "sh": True, "/bin/sh": True}
ON_FAILURE = ("ABORT", "CONTINUE")
# Paths a build may name in artifacts, reports and cache: under the source directory.
SRC_PREFIXES = ("$CODEBUILD_SRC_DIR", "${CODEBUILD_SRC_DIR}")
# Cache paths in CodeBuild's home (/root) are kept in the build's own home here.
HOME_PREFIXES = ("/root/", "~/", "$HOME/", "${HOME}/")


@dataclass(frozen=True)
class BuildspecProblem:
    """One problem of a buildspec: where (a path in the buildspec) and what."""

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass
class Phase:
    name: str
    commands: list[str] = field(default_factory=list)
    finally_commands: list[str] = field(default_factory=list)
    on_failure: str = "ABORT"


@dataclass
class ArtifactSpec:
    """``artifacts`` (identifier "") or one of its ``secondary-artifacts``."""

    identifier: str
    files: list[str]
    base_directory: str = ""
    discard_paths: bool = False
    exclude_paths: list[str] = field(default_factory=list)
    name: str = ""


@dataclass
class ReportSpec:
    name: str
    files: list[str]
    base_directory: str = ""
    file_format: str = "JUNITXML"


@dataclass
class Buildspec:
    version: str = "0.2"
    posix_shell: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    parameter_store: dict[str, str] = field(default_factory=dict)
    secrets_manager: dict[str, str] = field(default_factory=dict)
    exported_variables: list[str] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    artifacts: ArtifactSpec | None = None
    secondary_artifacts: dict[str, ArtifactSpec] = field(default_factory=dict)
    reports: list[ReportSpec] = field(default_factory=list)
    cache_paths: list[str] = field(default_factory=list)


class BuildspecError(ValueError):
    """The text is not a YAML mapping a buildspec can be read from."""


class _Loader(yaml.SafeLoader):
    """Safe YAML without aliases (an alias bomb expands without limit) or dates."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise BuildspecError(f"line {event.start_mark.line + 1}: YAML aliases (*name) "
                                 "are not accepted in a buildspec")
        self._nodes = getattr(self, "_nodes", 0) + 1
        if self._nodes > MAX_NODES:
            raise BuildspecError(f"the buildspec has more than {MAX_NODES} YAML nodes")
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def buildspec_load(text: str | bytes) -> Any:
    """The YAML data of a buildspec text (raises ``BuildspecError``)."""
    if isinstance(text, bytes):
        if len(text) > MAX_BYTES:
            raise BuildspecError(f"the buildspec is larger than {MAX_BYTES >> 10} KiB")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise BuildspecError("the buildspec is not UTF-8 text") from None
    if len(text) > MAX_BYTES:
        raise BuildspecError(f"the buildspec is larger than {MAX_BYTES >> 10} KiB")
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise BuildspecError(f"not valid YAML{where}: "
                             f"{getattr(exc, 'problem', None) or 'syntax error'}") from exc


def scalar_text(value: Any) -> str | None:
    """A YAML scalar as CodeBuild reads it (``true`` → "true", ``0.2`` → "0.2"); None if not one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    return None


class _Checker:
    def __init__(self) -> None:
        self.problems: list[BuildspecProblem] = []

    def error(self, path: str, message: str) -> None:
        self.problems.append(BuildspecProblem(path, message))

    def warn(self, path: str, message: str) -> None:
        self.problems.append(BuildspecProblem(path, message, "warning"))

    def mapping(self, path: str, value: Any) -> dict:
        if isinstance(value, dict):
            return value
        self.error(path, "must be a mapping of keys to values")
        return {}

    def keys(self, path: str, value: dict, known: tuple[str, ...]) -> None:
        for key in value:
            if key not in known:
                self.error(f"{path}.{key}" if path else str(key),
                           f'"{key}" is not a buildspec key here: use ' + ", ".join(known))

    def strings(self, path: str, value: Any, *, single_ok: bool = True) -> list[str]:
        if value is None:
            return []
        if single_ok and not isinstance(value, list | dict):
            value = [value]
        if not isinstance(value, list):
            self.error(path, "must be a list")
            return []
        out = []
        for i, item in enumerate(value):
            text = scalar_text(item)
            if text is None:
                self.error(f"{path}[{i}]", "must be a string")
            else:
                out.append(text)
        return out

    def flag(self, path: str, value: Any) -> bool:
        text = scalar_text(value)
        if text is not None and text.lower() in ("true", "yes"):
            return True
        if text is not None and text.lower() in ("false", "no"):
            return False
        self.error(path, 'must be "yes" or "no"')
        return False

    def names(self, path: str, value: Any) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, raw in self.mapping(path, value).items():
            text = scalar_text(raw)
            if not isinstance(name, str) or not NAME_RE.match(name):
                self.error(f"{path}.{name}", f'"{name}" is not an environment variable name')
            elif text is None:
                self.error(f"{path}.{name}", "must be a string")
            else:
                out[name] = text
        return out

    def path_in_source(self, path: str, value: str, what: str) -> None:
        if ".." in value.replace("\\", "/").split("/"):
            self.error(path, f'"{value}" leads outside the source directory')
        elif value.startswith("/") or value.startswith("~"):
            self.error(path, f'"{value}" is outside the source directory: Conveyor takes '
                       f"{what} only from under $CODEBUILD_SRC_DIR (name it relative to it)")


def _strip_src(value: str) -> str:
    for prefix in SRC_PREFIXES:
        if value == prefix or value.startswith(prefix + "/"):
            return value[len(prefix):].lstrip("/")
    return value


def buildspec_parse(text: str | bytes, *, batch_enabled: bool = False
                    ) -> tuple[Buildspec | None, list[BuildspecProblem]]:
    """Read and check a buildspec: (the buildspec or None when it has errors, every problem)."""
    try:
        data = buildspec_load(text)
    except BuildspecError as exc:
        return None, [BuildspecProblem("", str(exc))]
    return buildspec_check(data, batch_enabled=batch_enabled)


def buildspec_check(data: Any, *, batch_enabled: bool = False
                    ) -> tuple[Buildspec | None, list[BuildspecProblem]]:
    """``buildspec_parse`` for data already loaded from YAML."""
    c = _Checker()
    spec = Buildspec()
    if not isinstance(data, dict):
        return None, [BuildspecProblem("", "a buildspec must be a YAML mapping with version "
                                       "and phases")]
    c.keys("", data, ("version", "run-as", "env", "proxy", "batch", "phases", "reports",
                      "artifacts", "cache"))
    version = scalar_text(data.get("version"))
    if version is None:
        c.error("version", "is required: use 0.2")
    elif version not in VERSIONS:
        c.error("version", f'"{version}" is not a buildspec version Conveyor runs: use 0.2 '
                "(or 0.1)")
    else:
        spec.version = version
    if "run-as" in data:
        c.error("run-as", "builds here run as the sandbox's one user: running commands as "
                "another user is not supported (remove run-as)")
    if "proxy" in data:
        c.error("proxy", "proxy servers for builds are not supported here (remove proxy)")
    if "batch" in data:
        if batch_enabled:
            c.error("batch", "batch builds do not run here (BatchEnabled must not be \"true\")")
        else:
            c.warn("batch", "not used: batch builds do not run here and this build is not one")
    if "env" in data:
        _env(c, spec, c.mapping("env", data["env"]))
    phases = data.get("phases")
    if phases is None:
        c.error("phases", "is required: a buildspec needs at least one phase")
    else:
        _phases(c, spec, c.mapping("phases", phases))
    if "artifacts" in data:
        artifacts = c.mapping("artifacts", data["artifacts"])
        if artifacts:
            spec.artifacts = _artifact(c, "artifacts", "", artifacts, primary=True)
            secondary = artifacts.get("secondary-artifacts")
            if secondary is not None:
                for ident, body in c.mapping("artifacts.secondary-artifacts", secondary).items():
                    path = f"artifacts.secondary-artifacts.{ident}"
                    if not isinstance(ident, str) or not ARTIFACT_ID_RE.match(ident):
                        c.error(path, f'"{ident}" is not an artifact identifier: use letters, '
                                "digits, _ and -")
                        continue
                    spec.secondary_artifacts[ident] = _artifact(
                        c, path, ident, c.mapping(path, body), primary=False)
    if "reports" in data:
        for name, body in c.mapping("reports", data["reports"]).items():
            report = _report(c, f"reports.{name}", str(name), c.mapping(f"reports.{name}", body))
            if report is not None:
                spec.reports.append(report)
    if "cache" in data:
        cache = c.mapping("cache", data["cache"])
        c.keys("cache", cache, ("paths", "key", "fallback-keys", "action"))
        for key in ("key", "fallback-keys", "action"):
            if key in cache:
                c.warn(f"cache.{key}", "not used: the cache is kept per build project "
                       "between its builds")
        for i, value in enumerate(c.strings("cache.paths", cache.get("paths"))):
            if not value.startswith(HOME_PREFIXES):
                c.path_in_source(f"cache.paths[{i}]", _strip_src(value),
                                 "cached paths (besides its home: /root/…, ~/…)")
            spec.cache_paths.append(value)
    errors = [p for p in c.problems if p.severity == "error"]
    return (None if errors else spec), c.problems


def _env(c: _Checker, spec: Buildspec, env: dict) -> None:
    c.keys("env", env, ("shell", "variables", "parameter-store", "exported-variables",
                        "secrets-manager", "git-credential-helper"))
    if "shell" in env:
        shell = scalar_text(env["shell"]) or ""
        if shell in SHELLS:
            spec.posix_shell = SHELLS[shell]
        else:
            c.error("env.shell", f'"{shell}" is not a shell builds run here: use bash or sh')
    if "variables" in env:
        spec.variables = c.names("env.variables", env["variables"])
    if "parameter-store" in env:
        spec.parameter_store = c.names("env.parameter-store", env["parameter-store"])
    if "secrets-manager" in env:
        spec.secrets_manager = c.names("env.secrets-manager", env["secrets-manager"])
        for name, ref in spec.secrets_manager.items():
            parts = ref.split(":")
            if len(parts) > 2 and any(parts[2:]):
                c.warn(f"env.secrets-manager.{name}", "the version stage and version id are "
                       "not used: Conveyor's secrets have one version")
    if "exported-variables" in env:
        for i, name in enumerate(c.strings("env.exported-variables", env["exported-variables"])):
            if NAME_RE.match(name):
                spec.exported_variables.append(name)
            else:
                c.error(f"env.exported-variables[{i}]",
                        f'"{name}" is not an environment variable name')
    if "git-credential-helper" in env and c.flag("env.git-credential-helper",
                                                  env["git-credential-helper"]):
        c.warn("env.git-credential-helper", "not applied: builds get no git credentials "
               "from Conveyor")


def _phases(c: _Checker, spec: Buildspec, phases: dict) -> None:
    c.keys("phases", phases, PHASES)
    for name in PHASES:
        if name not in phases:
            continue
        path = f"phases.{name}"
        body = phases[name]
        if body is None:
            spec.phases.append(Phase(name))
            continue
        body = c.mapping(path, body)
        c.keys(path, body, ("run-as", "on-failure", "runtime-versions", "commands", "finally"))
        phase = Phase(name)
        if "run-as" in body:
            c.error(f"{path}.run-as", "builds here run as the sandbox's one user: running "
                    "commands as another user is not supported (remove run-as)")
        if "runtime-versions" in body:
            versions = c.mapping(f"{path}.runtime-versions", body["runtime-versions"])
            if name != "install":
                c.error(f"{path}.runtime-versions", "runtime-versions belongs in the install "
                        "phase only")
            elif versions:
                named = ", ".join(f"{k} {scalar_text(v)}" for k, v in versions.items())
                c.warn(f"{path}.runtime-versions", f"not applied ({named}): the build uses "
                       "the tools installed where it runs")
        if "on-failure" in body:
            value = scalar_text(body["on-failure"]) or ""
            if value in ON_FAILURE:
                phase.on_failure = value
            else:
                c.error(f"{path}.on-failure", f'"{value}" is not supported here: use ABORT '
                        "or CONTINUE")
        phase.commands = c.strings(f"{path}.commands", body.get("commands"), single_ok=False)
        phase.finally_commands = c.strings(f"{path}.finally", body.get("finally"),
                                           single_ok=False)
        for key, commands in (("commands", phase.commands), ("finally", phase.finally_commands)):
            for i, command in enumerate(commands):
                if POWERSHELL_RE.search(command):
                    c.error(f"{path}.{key}[{i}]", "this is PowerShell: builds run commands "
                            "with bash on Linux here (Windows images do not run)")
        spec.phases.append(phase)


def _artifact(c: _Checker, path: str, ident: str, body: dict, *, primary: bool) -> ArtifactSpec:
    known = ("files", "name", "discard-paths", "base-directory", "exclude-paths",
             "enable-symlinks", "s3-prefix")
    c.keys(path, body, (*known, "secondary-artifacts") if primary else known)
    spec = ArtifactSpec(identifier=ident, files=[])
    if "files" not in body and not (primary and "secondary-artifacts" in body):
        c.error(f"{path}.files", "is required")
    spec.files = c.strings(f"{path}.files", body.get("files"))
    for i, value in enumerate(spec.files):
        c.path_in_source(f"{path}.files[{i}]", _strip_src(value), "artifact files")
    if "base-directory" in body:
        spec.base_directory = scalar_text(body["base-directory"]) or ""
        c.path_in_source(f"{path}.base-directory", _strip_src(spec.base_directory),
                         "artifact files")
    if "discard-paths" in body:
        spec.discard_paths = c.flag(f"{path}.discard-paths", body["discard-paths"])
    spec.exclude_paths = c.strings(f"{path}.exclude-paths", body.get("exclude-paths"))
    if "name" in body:
        spec.name = scalar_text(body["name"]) or ""
        c.warn(f"{path}.name", f'"{spec.name}": the artifact is stored under the action\'s '
               "output artifact name; this name is only written in the log")
    if "enable-symlinks" in body:
        c.warn(f"{path}.enable-symlinks", "not applied: artifacts keep files, not links")
    if "s3-prefix" in body:
        c.warn(f"{path}.s3-prefix", "not used: Conveyor stores artifacts itself")
    return spec


def _report(c: _Checker, path: str, name: str, body: dict) -> ReportSpec | None:
    c.keys(path, body, ("files", "base-directory", "discard-paths", "file-format"))
    report = ReportSpec(name=name, files=c.strings(f"{path}.files", body.get("files")))
    if not report.files:
        c.error(f"{path}.files", "is required")
    for i, value in enumerate(report.files):
        c.path_in_source(f"{path}.files[{i}]", _strip_src(value), "report files")
    if "base-directory" in body:
        report.base_directory = scalar_text(body["base-directory"]) or ""
        c.path_in_source(f"{path}.base-directory", _strip_src(report.base_directory),
                         "report files")
    if "discard-paths" in body:
        c.flag(f"{path}.discard-paths", body["discard-paths"])  # names only: no effect on counts
    fmt = (scalar_text(body.get("file-format")) or "JUNITXML").upper()
    if fmt in JUNIT_FORMATS:
        report.file_format = fmt
        return report
    if fmt in COVERAGE_FORMATS:
        c.warn(f"{path}.file-format", f"{fmt} is a code coverage format: not read here, the "
               "files stay in the workspace")
    elif fmt in OTHER_TEST_FORMATS:
        c.warn(f"{path}.file-format", f"{fmt} reports are not read here (JUNITXML is): they "
               "do not reach the summary")
    else:
        c.error(f"{path}.file-format", f'"{fmt}" is not a report format: use JUNITXML')
    return None
