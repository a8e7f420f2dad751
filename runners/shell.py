"""``Shell``: run the action's ``commands`` with bash, in a fresh workspace.

For Build, Test and Deploy actions. The commands run one after another in **one
bash session** (``runners.session.ShellSession``, as CodeBuild's
buildspec 0.2 and the Commands action run them: ``export``, ``cd`` and shell
variables carry to the next command) in the workspace (which holds the first
input artifact; the others are in ``$CONVEYOR_INPUT_<NAME>``), in a new process
group, with a clean environment:

- ``environmentVariables`` (their ``#{...}`` references already resolved);
- every variable the command text references, as an environment variable:
  ``#{BuildVariables.Version}`` in a command becomes ``${CONVEYOR_VAR_BuildVariables_Version}``
  and the value travels in the environment, never pasted into the command
  text, so a commit message cannot inject shell code;
- ``CONVEYOR_PIPELINE_NAME``, ``CONVEYOR_PIPELINE_EXECUTION_ID``,
  ``CONVEYOR_STAGE_NAME``, ``CONVEYOR_ACTION_NAME``, ``CONVEYOR_WORKSPACE``,
  ``CONVEYOR_OUTPUT``.

The commands stop at the first failure; the summary names the failing command
and its exit code. Lines ``name=value`` written to the file ``$CONVEYOR_OUTPUT``
become the action's output variables. Each output artifact collects the
workspace files matching its ``files`` globs (all files when it names none).
On stop or timeout the whole process group is killed, grandchildren included;
what a command starts in the background lives until the action ends.

Configuration (all optional):

- ``WorkingDirectory``: a folder of the workspace (relative, no ``..``) the
  commands run in; output ``files`` globs and ``Reports`` globs stay relative
  to the workspace root.
- ``Reports``: JUnit XML globs (separated by commas or new lines). After the
  commands, the matching reports are parsed into passed/failed/skipped counts
  and the failing tests' names, which become the action's summary and the
  output variables ``TestsPassed``, ``TestsFailed``, ``TestsSkipped``. A report
  with failures fails the action even when the commands exited 0; reports
  configured but not found fail it too (the tests did not run).

Secrets: an ``environmentVariables`` entry of type ``SECRETS_MANAGER`` names a
secret (``name`` or CodeBuild's ``name:json-key``) instead of holding a value.
The worker looks the secret up, in this order, in its own environment as
``CONVEYOR_SECRET_<NAME>`` (upper case, other characters as ``_``) and in the
file ``<CONVEYOR_SECRETS_DIR>/<name>`` (default ``var/secrets/``; a trailing
new line is dropped); with a json-key the secret is a JSON object and the
key's value is used. Only the action that declares a secret sees it, as the
environment variable it names. Every secret value (each of its lines of 4
characters or more) is replaced by ``***`` in the log, the summary and the
output variables.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from runners import register, sandbox
from runners.base import (
    ActionFailed,
    Result,
    RunContext,
    Runner,
)
from runners.checks import configuration_of, deploy_target_refusal, list_of
from runners.session import ShellSession

REFERENCE_RE = re.compile(r"#\{([^}]*)\}")
PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL")
MAX_SUMMARY_COMMAND = 200


def env_name(reference: str) -> str:
    """The environment variable that carries a ``#{Namespace.Variable}`` value."""
    return "CONVEYOR_VAR_" + re.sub(r"[^A-Za-z0-9_]", "_", reference)


def command_with_env_references(command: str) -> tuple[str, set[str]]:
    """Replace each ``#{X.Y}`` by ``${CONVEYOR_VAR_X_Y}``; return the command and references."""
    refs: set[str] = set()

    def sub(match: re.Match) -> str:
        refs.add(match.group(1))
        return "${" + env_name(match.group(1)) + "}"

    return REFERENCE_RE.sub(sub, command), refs


MAX_OUTPUT_VARIABLES_BYTES = 1 << 20


def read_output_variables(path: Path) -> dict[str, str]:
    """``name=value`` lines (blank lines and ``#`` comments ignored).

    The file is written by the build, so it is read as an untrusted one: not
    through a link (it could name the server's secret key), only a regular file
    (a FIFO would block the worker), at most 1 MiB.
    """
    values: dict[str, str] = {}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return values
    except OSError as exc:
        raise ActionFailed(f"The output variables file {path.name} cannot be read: it must be "
                           f"a plain file ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ActionFailed(f"The output variables file {path.name} is not a plain file")
        text = handle.read(MAX_OUTPUT_VARIABLES_BYTES).decode(errors="replace")
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value
    return values


def collect(workspace: Path, patterns: list[str], into: Path, log=None) -> int:
    """Copy the workspace files matching the globs into ``into``; return how many.

    A match that resolves outside the workspace (through a link) is skipped.
    """
    count = 0
    seen: set[Path] = set()
    root = workspace.resolve()
    for pattern in patterns or ["**/*"]:
        if glob_problem(pattern):
            continue
        for path in sorted(workspace.glob(pattern)):
            if not path.is_file() or path in seen:
                continue
            seen.add(path)
            if not path.resolve().is_relative_to(root):
                if log is not None:
                    log.line(f"Not collected (it leads outside the workspace): "
                             f"{path.relative_to(workspace)}")
                continue
            target = into / path.relative_to(workspace)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            count += 1
    return count


def glob_problem(pattern: str) -> str | None:
    """Why a files/Reports glob may not be used: it must stay inside the workspace."""
    if not pattern.strip():
        return "is empty"
    if pattern.startswith("/"):
        return f'"{pattern}" is absolute: globs are relative to the workspace'
    if ".." in pattern.replace("\\", "/").split("/"):
        return f'"{pattern}" leads outside the workspace'
    return None


def failed_command_summary(index: int, count: int, code: int, command: str, masker) -> str:
    """``Command 2 of 3 failed with exit code 1: make test`` (long commands cut, secrets masked)."""
    shown = command if len(command) <= MAX_SUMMARY_COMMAND else (
        command[:MAX_SUMMARY_COMMAND] + "…")
    return f"Command {index + 1} of {count} failed with exit code {code}: {masker.text(shown)}"


def split_globs(value: str) -> list[str]:
    return [g.strip() for g in re.split(r"[,\n]", value or "") if g.strip()]


# --- secrets ---------------------------------------------------------------------

SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9_+=.@/-]{1,512}$")
MIN_MASKED = 4


def secrets_dir() -> Path:
    configured = getattr(settings, "CONVEYOR_SECRETS_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "secrets"


def secret_raw(name: str) -> str:
    """The stored value of the secret ``name`` (environment first, then the secrets folder).

    Raises ``ActionFailed`` naming the places looked in when it is not set.
    """
    if not SECRET_NAME_RE.match(name) or ".." in name.split("/") or name.startswith("/"):
        raise ActionFailed(f'"{name}" is not a secret name')
    env_key = "CONVEYOR_SECRET_" + re.sub(r"[^A-Za-z0-9_]", "_", name).upper()
    if env_key in os.environ:
        return os.environ[env_key]
    path = secrets_dir() / name
    try:
        raw = path.read_text()
    except OSError:
        raise ActionFailed(
            f'Secret "{name}" is not set: give the worker the environment variable '
            f"{env_key} or the file {path}") from None
    return raw[:-1] if raw.endswith("\n") else raw


def secret_value(reference: str) -> str:
    """The value of a SECRETS_MANAGER reference (``name`` or ``name:json-key[:…]``).

    Raises ``ActionFailed`` naming the places looked in when it is not set.
    """
    name, _, rest = reference.partition(":")
    json_key = rest.split(":", 1)[0] if rest else ""
    raw = secret_raw(name)
    if not json_key:
        return raw
    try:
        value = json.loads(raw)[json_key]
    except (ValueError, KeyError, TypeError):
        raise ActionFailed(f'Secret "{name}" is not a JSON object with the key '
                           f'"{json_key}"') from None
    return value if isinstance(value, str) else json.dumps(value)


class Masker:
    """Replaces every secret value by ``***`` (each line of a multi-line secret)."""

    def __init__(self, values: list[str]):
        parts = {line.strip() for v in values for line in v.splitlines()}
        self.texts = sorted((p for p in parts if len(p) >= MIN_MASKED), key=len, reverse=True)
        self.raw = [t.encode() for t in self.texts]
        self.longest = max((len(b) for b in self.raw), default=0)

    def __bool__(self) -> bool:
        return bool(self.texts)

    def text(self, value: str) -> str:
        for secret in self.texts:
            value = value.replace(secret, "***")
        return value

    def data(self, value: bytes) -> bytes:
        for secret in self.raw:
            value = value.replace(secret, b"***")
        return value


# --- JUnit reports ---------------------------------------------------------------

MAX_REPORT_BYTES = 50 << 20
MAX_NAMED_FAILURES = 20


@dataclass
class TestReport:
    """Counts and failing test names from JUnit XML files."""

    __test__ = False  # not a pytest test class, despite its name

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failing: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped

    def summary(self) -> str:
        text = f"Tests: {self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        if self.failing:
            named = ", ".join(self.failing[:MAX_NAMED_FAILURES])
            more = len(self.failing) - MAX_NAMED_FAILURES
            text += f"; failing: {named}" + (f" and {more} more" if more > 0 else "")
        return text


def _test_name(case: ET.Element) -> str:
    name, classname = case.get("name", "?"), case.get("classname", "")
    return f"{classname}.{name}" if classname else name


def parse_junit(paths: list[Path], workspace: Path) -> TestReport:
    """Read JUnit XML (``<testsuites>``/``<testsuite>``/``<testcase>``) into a TestReport."""
    report = TestReport()
    for path in paths:
        rel = str(path.relative_to(workspace))
        try:
            if path.stat().st_size > MAX_REPORT_BYTES:
                raise ValueError("too large")
            root = ET.parse(path).getroot()
        except (OSError, ValueError, ET.ParseError):
            report.unreadable.append(rel)
            continue
        report.files.append(rel)
        cases = list(root.iter("testcase"))
        if not cases:  # counts only, as some tools write for empty suites
            for suite in ([root] if root.tag == "testsuite" else root.iter("testsuite")):
                tests = int(suite.get("tests", 0) or 0)
                bad = int(suite.get("failures", 0) or 0) + int(suite.get("errors", 0) or 0)
                skipped = int(suite.get("skipped", 0) or 0)
                report.failed += bad
                report.skipped += skipped
                report.passed += max(0, tests - bad - skipped)
            continue
        for case in cases:
            if case.find("failure") is not None or case.find("error") is not None:
                report.failed += 1
                report.failing.append(_test_name(case))
            elif case.find("skipped") is not None:
                report.skipped += 1
            else:
                report.passed += 1
    return report


def find_reports(workspace: Path, patterns: list[str]) -> list[Path]:
    root = workspace.resolve()
    found: list[Path] = []
    for pattern in patterns:
        if glob_problem(pattern):
            continue
        for path in sorted(workspace.glob(pattern)):
            if path.is_file() and path not in found and path.resolve().is_relative_to(root):
                found.append(path)
    return found


# --- the runner ------------------------------------------------------------------

CONFIG_KEYS = ("WorkingDirectory", "Reports", "WritablePaths", "ReadablePaths",
               *sandbox.SANDBOX_KEYS, "RunOn")


@register
class ShellRunner(Runner):
    provider = "Shell"
    categories = ("Build", "Test", "Deploy")
    description = "Runs the action's commands with bash in a fresh workspace."
    runs_on_agents = True

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        commands = action_doc.get("commands")
        problems = []
        if not commands:
            problems.append(("commands", "a Shell action needs at least one command"))
        for i, item in enumerate(list_of(action_doc.get("environmentVariables"))):
            if isinstance(item, dict) and item.get("type") == "SECRETS_MANAGER":
                value = item.get("value")
                name = value.partition(":")[0] if isinstance(value, str) else ""
                if isinstance(value, str) and "#{" not in value and (
                        not SECRET_NAME_RE.match(name) or ".." in name.split("/")
                        or name.startswith("/")):
                    problems.append((f"environmentVariables[{i}].value",
                                     f'"{value}" is not a secret name'))
        config = configuration_of(action_doc)
        wd = config.get("WorkingDirectory")
        if isinstance(wd, str) and "#{" not in wd and (problem := glob_problem(wd)):
            problems.append(("configuration.WorkingDirectory",
                             problem.replace("globs are", "it is")))
        for pattern in split_globs(config.get("Reports", "")):
            if "#{" not in pattern and (problem := glob_problem(pattern)):
                problems.append(("configuration.Reports", problem))
        for j, item in enumerate(list_of(action_doc.get("outputArtifacts"))):
            files = item.get("files") if isinstance(item, dict) else None
            for k, pattern in enumerate(files if isinstance(files, list) else []):
                if isinstance(pattern, str) and (problem := glob_problem(pattern)):
                    problems.append((f"outputArtifacts[{j}].files[{k}]", problem))
        for key in ("WritablePaths", "ReadablePaths"):
            for path in split_globs(config.get(key, "")):
                if "#{" not in path and (refusal := deploy_target_refusal(path)):
                    problems.append((f"configuration.{key}", refusal))
        problems += sandbox.limits_problems(config)
        for key in config:
            if key not in CONFIG_KEYS:
                problems.append((f"configuration.{key}",
                                 f'"{key}" is not a setting of the Shell provider: use '
                                 + ", ".join(CONFIG_KEYS)))
        return problems

    def environment(self, ctx: RunContext, references: set[str], output_file: Path,
                    secrets: list[str] | None = None) -> dict:
        env = {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.update({
            "CONVEYOR_PIPELINE_NAME": ctx.pipeline_name,
            "CONVEYOR_PIPELINE_EXECUTION_ID": ctx.pipeline_execution_id,
            "CONVEYOR_STAGE_NAME": ctx.stage_name,
            "CONVEYOR_ACTION_NAME": ctx.action_name,
            "CONVEYOR_ACTION_EXECUTION_ID": ctx.action_execution_id,
            "CONVEYOR_WORKSPACE": str(ctx.workspace),
            "CONVEYOR_OUTPUT": str(output_file),
        })
        for name, directory in ctx.input_dirs.items():
            env[f"CONVEYOR_INPUT_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"] = str(directory)
        for ref in references:
            # The engine checked every reference resolves before the action started.
            env[env_name(ref)] = ctx.variables.get(ref, "")
        for item in ctx.action.get("environmentVariables") or []:
            if item.get("type") == "SECRETS_MANAGER":
                value = secret_value(item.get("value", ""))
                if secrets is not None:
                    secrets.append(value)
                env[item["name"]] = value
            else:
                env[item["name"]] = item.get("value", "")
        return env

    def working_directory(self, ctx: RunContext) -> Path:
        wd = ctx.configuration.get("WorkingDirectory", "")
        if not wd:
            return ctx.workspace
        if problem := glob_problem(wd):
            raise ActionFailed(f"WorkingDirectory {problem.replace('globs are', 'it is')}")
        path = (ctx.workspace / wd).resolve()
        if not path.is_relative_to(ctx.workspace.resolve()):
            raise ActionFailed(f'WorkingDirectory "{wd}" leads outside the workspace')
        if not path.is_dir():
            raise ActionFailed(f'WorkingDirectory "{wd}" is not a folder of the workspace')
        return path

    def outside_paths(self, ctx: RunContext, key: str) -> list[Path]:
        """``WritablePaths`` / ``ReadablePaths``: folders outside the workspace the commands
        may write (a Shell deploy's targets; made when missing) or read (what a smoke
        test checks), each checked as a Directory target is, at every run."""
        paths = []
        for raw in split_globs(ctx.configuration.get(key, "")):
            if refusal := deploy_target_refusal(raw):
                raise ActionFailed(f"{key} {refusal}")
            path = Path(raw)
            try:
                if key == "WritablePaths":
                    path.mkdir(parents=True, exist_ok=True)
                elif not path.is_dir():
                    raise ActionFailed(f"{key}: {path} is not a folder")
            except OSError as exc:
                raise ActionFailed(f"{key}: cannot create {path}: {exc.strerror}") from exc
            paths.append(path)
        return paths

    def run(self, ctx: RunContext) -> Result:
        commands = list(ctx.action.get("commands") or [])
        if not commands:
            raise ActionFailed("There is no command to run")
        output_file = ctx.workspace.parent / "conveyor-output-variables"
        # Made here and bound into the sandbox as a file: the build writes to it but
        # cannot put a link or a FIFO in its place.
        output_file.touch()
        writable = self.outside_paths(ctx, "WritablePaths")
        readable = self.outside_paths(ctx, "ReadablePaths")
        prepared = [command_with_env_references(c) for c in commands]
        references = set().union(*(refs for _, refs in prepared))
        secrets: list[str] = []
        env = self.environment(ctx, references, output_file, secrets)
        masker = Masker(secrets)
        for value in secrets:
            if 0 < len(value.strip()) < MIN_MASKED:
                ctx.log.line(f"A secret shorter than {MIN_MASKED} characters is not masked")
        cwd = self.working_directory(ctx)
        patterns = split_globs(ctx.configuration.get("Reports", ""))
        failure = None
        with ShellSession(ctx, env=env, cwd=cwd, masker=masker, read_only=readable,
                          read_write=[output_file, *writable]) as session:
            for index, (command, _) in enumerate(prepared):
                original = commands[index]
                ctx.log.line(masker.text(f"$ {original}"))
                outcome = session.run(command)
                if outcome.stopped or ctx.should_stop():
                    raise ActionFailed(f"Stopped: {ctx.stop_reason}")
                if outcome.code != 0:
                    failure = failed_command_summary(index, len(commands), outcome.code,
                                                     original, masker)
                    if outcome.limit:  # the session ended it (and logged the limit)
                        failure = f"{failure} ({outcome.limit})"
                    elif limit := sandbox.limit_exceeded_in_log(ctx, outcome.code):
                        failure = f"{failure} ({masker.text(limit)})"
                        ctx.log.line(masker.text(f"Limit: {limit}"))
                    break
        variables = {k: masker.text(v) for k, v in read_output_variables(output_file).items()}
        report = None
        if patterns:
            report = parse_junit(find_reports(ctx.workspace, patterns), ctx.workspace)
            for name in report.unreadable:
                ctx.log.line(masker.text(f"Not a JUnit XML report: {name}"))
            if report.files:
                # Test names carry parameters, a secret among them: masked like the summary.
                ctx.log.line(masker.text(f"{report.summary()} (from {', '.join(report.files)})"))
                for key, value in (("TestsPassed", report.passed),
                                   ("TestsFailed", report.failed),
                                   ("TestsSkipped", report.skipped)):
                    variables.setdefault(key, str(value))
        if failure is not None:
            if report is not None and report.files:
                failure = f"{masker.text(report.summary())}. {failure}"
            raise ActionFailed(failure[:2000], output_variables=variables)
        if report is not None and not report.files:
            raise ActionFailed("No JUnit report matched " + ", ".join(patterns)
                               + ": the tests did not run or wrote their report elsewhere",
                               output_variables=variables)
        if report is not None and report.failed:
            raise ActionFailed(masker.text(report.summary())[:2000], output_variables=variables)
        for item in ctx.action.get("outputArtifacts") or []:
            directory = ctx.output_dirs[item["name"]]
            count = collect(ctx.workspace, item.get("files") or [], directory, ctx.log)
            ctx.log.line(f"Collected {count} file(s) into {item['name']}")
        n = len(commands)
        summary = f"{n} command{'s' if n != 1 else ''} succeeded"
        if report is not None:
            summary = f"{masker.text(report.summary())} ({summary})"
        return Result(summary=summary[:2000], output_variables=variables)
