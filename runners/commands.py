"""``Commands`` (category ``Compute``, owner AWS): CodePipeline V2's built-in Commands action.

As CodePipeline defines it (docs/runners.md): the action-level ``commands`` run
in order in **one shell session** in the primary input's folder (``export``,
``cd`` and shell variables carry to the next command); the first failing
command fails the action and the summary names it. ``outputVariables`` names
variables of the session whose values at the end become the action's output
variables; ``environmentVariables`` (PLAINTEXT or SECRETS_MANAGER) are set
before the first command; ``outputArtifacts[0].files`` are CodeBuild paths
relative to the working directory. ``#{Namespace.Variable}`` references in
commands reach the shell as environment variables, never as code (as Shell).
The log is CodeBuild's: the commands form its BUILD phase. Default timeout 55
minutes, as on AWS.
"""

from __future__ import annotations

import re

from runners import register, sandbox
from runners.base import ActionFailed, Result, RunContext, Runner
from runners.build import (
    build_environment,
    build_home,
    collect_artifact,
    input_layout,
    log_secret_lengths,
    run_phase,
)
from runners.checks import configuration_of, list_of
from runners.session import ShellSession
from runners.shell import (
    SECRET_NAME_RE,
    Masker,
    command_with_env_references,
    env_name,
    secret_value,
)

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONFIG_KEYS = ("EnvironmentType", "ComputeType", "VpcId", "Subnets", "SecurityGroupIds", "RunOn")
NETWORK_KEYS = ("VpcId", "Subnets", "SecurityGroupIds")
MAX_COMMANDS = 50
MAX_COMMAND_LENGTH = 1000
MAX_OUTPUT_VARIABLES = 15
MAX_ENVIRONMENT_VARIABLES = 10
MAX_INPUT_ARTIFACTS = 10


@register
class CommandsRunner(Runner):
    provider = "Commands"
    categories = ("Compute",)
    description = "CodePipeline's Commands action: the commands in one shell session."
    runs_on_agents = True
    default_timeout_minutes = 55

    def check(self, action_doc: dict) -> list[tuple[str, ...]]:
        problems: list[tuple[str, ...]] = []
        commands = list_of(action_doc.get("commands"))
        if not commands:
            problems.append(("commands", "a Commands action needs at least one command"))
        if len(commands) > MAX_COMMANDS:
            problems.append(("commands", f"a Commands action has at most {MAX_COMMANDS} "
                             f"commands, this one has {len(commands)}"))
        for i, command in enumerate(commands):
            if isinstance(command, str) and len(command) > MAX_COMMAND_LENGTH:
                problems.append((f"commands[{i}]", f"a command has at most "
                                 f"{MAX_COMMAND_LENGTH} characters"))
        names = action_doc.get("outputVariables")
        if names is not None:
            if not isinstance(names, list):
                problems.append(("outputVariables", "must be a list of variable names"))
                names = []
            if len(names) > MAX_OUTPUT_VARIABLES:
                problems.append(("outputVariables", f"at most {MAX_OUTPUT_VARIABLES} names"))
            for i, name in enumerate(names):
                if not isinstance(name, str) or not NAME_RE.match(name):
                    problems.append((f"outputVariables[{i}]",
                                     f'"{name}" is not an environment variable name'))
        env = list_of(action_doc.get("environmentVariables"))
        if len(env) > MAX_ENVIRONMENT_VARIABLES:
            problems.append(("environmentVariables",
                             f"at most {MAX_ENVIRONMENT_VARIABLES} environment variables"))
        for i, item in enumerate(env):
            if isinstance(item, dict) and item.get("type") == "SECRETS_MANAGER":
                value = item.get("value")
                name = value.partition(":")[0] if isinstance(value, str) else ""
                if isinstance(value, str) and "#{" not in value and (
                        not SECRET_NAME_RE.match(name) or ".." in name.split("/")):
                    problems.append((f"environmentVariables[{i}].value",
                                     f'"{value}" is not a secret name'))
        if len(list_of(action_doc.get("inputArtifacts"))) > MAX_INPUT_ARTIFACTS:
            problems.append(("inputArtifacts", f"a Commands action has at most "
                             f"{MAX_INPUT_ARTIFACTS} input artifacts"))
        outputs = list_of(action_doc.get("outputArtifacts"))
        if len(outputs) > 1:
            problems.append(("outputArtifacts", "a Commands action has at most one output "
                             "artifact"))
        for j, item in enumerate(outputs):
            files = item.get("files") if isinstance(item, dict) else None
            for k, pattern in enumerate(files if isinstance(files, list) else []):
                if isinstance(pattern, str) and (pattern.startswith("/")
                                                 or ".." in pattern.split("/")):
                    problems.append((f"outputArtifacts[{j}].files[{k}]",
                                     f'"{pattern}" leads outside the working directory'))
        config = configuration_of(action_doc)
        for key, value in config.items():
            path = f"configuration.{key}"
            if key == "EnvironmentType" and value != "LINUX_CONTAINER":
                problems.append((path, f'"{value}" does not run here: use LINUX_CONTAINER'))
            elif key == "ComputeType" and value not in sandbox.EC2_COMPUTE_TYPES:
                problems.append((path, f'"{value}" is not a compute type: use '
                                 + ", ".join(sandbox.EC2_COMPUTE_TYPES)))
            elif key in NETWORK_KEYS:
                problems.append((path, "not used: commands run on the network of the machine "
                                 "that runs them", "warning"))
            elif key not in CONFIG_KEYS:
                problems.append((path, f'"{key}" is not a setting of the Commands action: '
                                 "use " + ", ".join(CONFIG_KEYS)))
        return problems

    def run(self, ctx: RunContext) -> Result:
        commands = list(ctx.action.get("commands") or [])
        if not commands:
            raise ActionFailed("There is no command to run")
        prepared = [command_with_env_references(c) for c in commands]
        references = set().union(*(refs for _, refs in prepared))
        primary, src_dir, secondary = input_layout(ctx, None)
        home = build_home(ctx)
        env = build_environment(ctx, project=f"codepipeline-{ctx.pipeline_name}",
                                build_number=ctx.execution_number, src_dir=src_dir,
                                primary=primary, secondary=secondary, home=home)
        for ref in references:
            env[env_name(ref)] = ctx.variables.get(ref, "")
        secrets: list[str] = []
        for item in ctx.action.get("environmentVariables") or []:
            if item.get("type") == "SECRETS_MANAGER":
                value = secret_value(item.get("value", ""))
                secrets.append(value)
                env[item["name"]] = value
            else:
                env[item["name"]] = item.get("value", "")
        masker = Masker(secrets)
        log_secret_lengths(ctx, secrets)
        compute = ctx.configuration.get("ComputeType") or sandbox.DEFAULT_COMPUTE_TYPE
        sandbox.log_compute_type(ctx, compute, sandbox.limits_for(ctx))
        names = [n for n in ctx.action.get("outputVariables") or [] if isinstance(n, str)]
        with ShellSession(ctx, env=env, cwd=src_dir, masker=masker,
                          read_only=[d for d in ctx.input_dirs.values() if d != src_dir],
                          read_write=[home]) as session:
            phase = run_phase(session, ctx, "build", [c for c, _ in prepared], [],
                              masker=masker, shown=commands)
            values = session.variables(names) if phase.status == "SUCCEEDED" else {}
        if phase.status == "STOPPED":
            raise ActionFailed(f"Stopped: {ctx.stop_reason}")
        if phase.status != "SUCCEEDED":
            raise ActionFailed(phase.describe(masker)[:2000])
        variables = {k: masker.text(v) for k, v in values.items()}
        for name in names:
            if name not in variables:
                ctx.log.line(f"Output variable {name} is not set at the end of the commands")
        for item in ctx.action.get("outputArtifacts") or []:
            count = collect_artifact(ctx, src_dir, files=item.get("files") or ["**/*"],
                                     base_directory="", discard_paths=False, exclude_paths=[],
                                     into=ctx.output_dirs[item["name"]], values=env,
                                     where=f"outputArtifacts.{item['name']}")
            ctx.log.line(f"Collected {count} file(s) into {item['name']}")
        n = len(commands)
        return Result(summary=f"{n} command{'s' if n != 1 else ''} succeeded",
                      output_variables=variables)
