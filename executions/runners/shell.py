"""``Shell``: run the action's ``commands`` with bash, in a fresh workspace.

For Build, Test and Deploy actions. Each command runs as ``bash -c <command>``
in the workspace (which holds the first input artifact; the others are in
``$CONVEYOR_INPUT_<NAME>``), in a new process group, with a clean environment:

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
On stop or timeout the whole process group is killed, grandchildren included.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from executions.runners import register
from executions.runners.base import (
    ActionFailed,
    Result,
    RunContext,
    Runner,
    kill_process_group,
)

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


def read_output_variables(path: Path) -> dict[str, str]:
    """``name=value`` lines (blank lines and ``#`` comments ignored)."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        values[name.strip()] = value
    return values


def collect(workspace: Path, patterns: list[str], into: Path) -> int:
    """Copy the workspace files matching the globs into ``into``; return how many."""
    count = 0
    seen: set[Path] = set()
    for pattern in patterns or ["**/*"]:
        for path in sorted(workspace.glob(pattern)):
            if not path.is_file() or path in seen:
                continue
            seen.add(path)
            target = into / path.relative_to(workspace)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            count += 1
    return count


@register
class ShellRunner(Runner):
    provider = "Shell"
    categories = ("Build", "Test", "Deploy")
    description = "Runs the action's commands with bash in a fresh workspace."

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        commands = action_doc.get("commands")
        if not commands:
            return [("commands", "a Shell action needs at least one command")]
        problems = []
        for i, item in enumerate(action_doc.get("environmentVariables") or []):
            if isinstance(item, dict) and item.get("type", "PLAINTEXT") != "PLAINTEXT":
                problems.append((f"environmentVariables[{i}].type",
                                 "only PLAINTEXT values are supported by Shell"))
        return problems

    def environment(self, ctx: RunContext, references: set[str], output_file: Path) -> dict:
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
            env[item["name"]] = item.get("value", "")
        return env

    def run(self, ctx: RunContext) -> Result:
        commands = list(ctx.action.get("commands") or [])
        if not commands:
            raise ActionFailed("There is no command to run")
        output_file = ctx.workspace.parent / "conveyor-output-variables"
        prepared = [command_with_env_references(c) for c in commands]
        references = set().union(*(refs for _, refs in prepared))
        env = self.environment(ctx, references, output_file)
        for index, (command, _) in enumerate(prepared):
            if ctx.should_stop():
                raise ActionFailed(f"Stopped: {ctx.stop_reason}")
            original = commands[index]
            ctx.log.line(f"$ {original}")
            code = self._run_one(ctx, command, env)
            if code != 0:
                if ctx.should_stop():
                    raise ActionFailed(f"Stopped: {ctx.stop_reason}")
                shown = original if len(original) <= MAX_SUMMARY_COMMAND else (
                    original[:MAX_SUMMARY_COMMAND] + "…")
                raise ActionFailed(
                    f"Command {index + 1} of {len(commands)} failed with exit code {code}: "
                    f"{shown}", output_variables=read_output_variables(output_file))
        for item in ctx.action.get("outputArtifacts") or []:
            directory = ctx.output_dirs[item["name"]]
            count = collect(ctx.workspace, item.get("files") or [], directory)
            ctx.log.line(f"Collected {count} file(s) into {item['name']}")
        n = len(commands)
        return Result(summary=f"{n} command{'s' if n != 1 else ''} succeeded",
                      output_variables=read_output_variables(output_file))

    def _run_one(self, ctx: RunContext, command: str, env: dict) -> int:
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=ctx.workspace, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        # start_new_session: the bash is the leader of a new process group, so
        # one killpg reaches everything it starts.
        ctx.set_process_group(proc.pid)
        pump = threading.Thread(target=self._pump, args=(proc, ctx), daemon=True)
        pump.start()
        try:
            code = proc.wait()
        finally:
            # Leftover background processes would hold the pipe open (and
            # outlive the workspace): the group ends with its command.
            kill_process_group(proc.pid, signal.SIGKILL)
            ctx.clear_process_group(proc.pid)
            pump.join(timeout=5)
        return code

    @staticmethod
    def _pump(proc: subprocess.Popen, ctx: RunContext) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            ctx.log.write(raw.decode("utf-8", errors="replace"))
        proc.stdout.close()
