"""The Commands action (category Compute): one shell session, outputs, failures — with
real git repositories, real bash and the real engine."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings

from executions.models import ActionExecution, Artifact
from pipelines.services import pipeline_save
from pipelines.validation import validate_document
from runners import logfile
from tests.factories import action, definition
from tests.runners.conftest import GitRepo


def commands_action(name, commands, **fields):
    body = action(name, "Compute", "Commands", commands=commands, **fields)
    body["actionTypeId"]["owner"] = "AWS"
    return body


def git_source(repo: GitRepo, namespace="SourceVariables"):
    return action("Checkout", "Source", "Git", namespace=namespace,
                  configuration={"RepositoryUrl": str(repo.path), "BranchName": "main"},
                  outputArtifacts=[{"name": "Src"}])


def log_of(ae: ActionExecution) -> str:
    return logfile.text(Path(settings.LOG_ROOT) / ae.log_path)


def test_commands_share_one_shell_and_their_outputs_reach_a_later_action(driver, tmp_path):
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app/VERSION": "1.4.2\n", "app/main.c": "int main(){}\n"})
    doc = definition("cmds", stages=[
        ("Source", [git_source(repo)]),
        ("Build", [commands_action("Package", [
            "cd app",
            "export VERSION=$(cat VERSION)",
            'SHORT="${VERSION%.*}"',
            'mkdir -p ../dist && echo "v$VERSION" > ../dist/release.txt',
            'test "$(basename "$PWD")" = app',
        ], inputArtifacts=[{"name": "Src"}], namespace="Pkg",
            outputVariables=["VERSION", "SHORT", "NEVER_SET"],
            outputArtifacts=[{"name": "Dist", "files": ["dist/**/*"]}])]),
        ("Deploy", [commands_action("Announce", [
            'echo "released #{Pkg.VERSION} (#{Pkg.SHORT})"', "cat dist/release.txt"],
            inputArtifacts=[{"name": "Dist"}])]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    package = ActionExecution.objects.get(execution=execution, action_name="Package")
    announce = ActionExecution.objects.get(execution=execution, action_name="Announce")
    assert package.status == "Succeeded", package.summary
    assert package.summary == "5 commands succeeded"
    assert package.output_variables == {"VERSION": "1.4.2", "SHORT": "1.4"}
    assert Artifact.objects.get(execution=execution, name="Dist").file_count == 1
    assert announce.status == "Succeeded", announce.summary
    log = log_of(announce)
    assert "released 1.4.2 (1.4)" in log and "v1.4.2" in log
    # The log is CodeBuild's: the commands form the BUILD phase.
    assert "[Container] Entering phase BUILD" in log
    assert "[Container] Phase complete: BUILD State: SUCCEEDED" in log
    assert "Output variable NEVER_SET is not set" in log_of(package)


def test_the_first_failing_command_fails_the_action_and_is_named(driver, tmp_path):
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"a.txt": "a"})
    marker = tmp_path / "never"
    doc = definition("cmds-fail", stages=[
        ("Source", [git_source(repo)]),
        ("Build", [commands_action("Check", ["true", "grep -q b a.txt", f"touch {marker}"],
                                   inputArtifacts=[{"name": "Src"}])]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    check = ActionExecution.objects.get(execution=execution, action_name="Check")
    assert check.status == "Failed"
    assert check.summary == "Command 2 of 3 failed with exit code 1: grep -q b a.txt"
    assert not marker.exists()
    assert "[Container] Phase complete: BUILD State: FAILED" in log_of(check)


def test_a_commit_message_in_a_command_is_data_never_code(driver, tmp_path):
    marker = tmp_path / "pwned"
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"a.txt": "a"}, f'$(touch {marker}) "; touch {marker}; "')
    doc = definition("cmds-inert", stages=[
        ("Source", [git_source(repo)]),
        ("Build", [commands_action("Echo", ['MSG="#{SourceVariables.CommitMessage}"',
                                            "echo #{SourceVariables.CommitMessage}"],
                                   inputArtifacts=[{"name": "Src"}], outputVariables=["MSG"],
                                   namespace="E")]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    echo = ActionExecution.objects.get(execution=execution, action_name="Echo")
    assert echo.status == "Succeeded", echo.summary
    assert echo.output_variables["MSG"].startswith("$(touch")
    assert not marker.exists()


def problems(act) -> list[str]:
    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [act]),
    ])
    return [f"{p.severity}: {p}" for p in validate_document(doc)]


def test_the_compute_category_is_accepted_and_the_commands_action_checked():
    found = problems(commands_action(
        "C", [], outputVariables=["ok", "not-a-name"],
        outputArtifacts=[{"name": "A", "files": ["../x"]}, {"name": "B"}],
        configuration={"ComputeType": "BUILD_GENERAL1_HUGE", "VpcId": "vpc-1", "Image": "x"}))
    assert found == [
        "error: stages[1].actions[0].commands: a Commands action needs at least one command",
        'error: stages[1].actions[0].outputVariables[1]: "not-a-name" is not an environment '
        "variable name",
        "error: stages[1].actions[0].outputArtifacts: a Commands action has at most one output "
        "artifact",
        'error: stages[1].actions[0].outputArtifacts[0].files[0]: "../x" leads outside the '
        "working directory",
        'error: stages[1].actions[0].configuration.ComputeType: "BUILD_GENERAL1_HUGE" is not a '
        "compute type: use BUILD_GENERAL1_SMALL, BUILD_GENERAL1_MEDIUM, BUILD_GENERAL1_LARGE, "
        "BUILD_GENERAL1_XLARGE, BUILD_GENERAL1_2XLARGE",
        "warning: stages[1].actions[0].configuration.VpcId: not used: commands run on the "
        "network of the machine that runs them",
        'error: stages[1].actions[0].configuration.Image: "Image" is not a setting of the '
        "Commands action: use EnvironmentType, ComputeType, VpcId, Subnets, SecurityGroupIds, "
        "RunOn",
    ]
    assert problems(commands_action("C", ["make"], inputArtifacts=[{"name": "Src"}])) == []


@pytest.mark.usefixtures("unsandboxed")  # written before the sandbox: see the fixture
def test_abandoning_a_commands_action_kills_its_shell_and_background_processes(db, tmp_path):
    import threading
    import time

    import runners
    from runners.base import ActionFailed
    from tests.executions.test_shell import alive
    from tests.runners.conftest import make_ctx

    pidfile = tmp_path / "bg.pid"
    ctx = make_ctx(tmp_path, commands_action("Serve", [f"sleep 60 & echo $! > {pidfile}",
                                                       "sleep 60"]))
    runner = runners.get("Compute", "Commands")
    outcome = {}

    def run():
        try:
            runner.run(ctx)
        except ActionFailed as exc:
            outcome["summary"] = exc.summary

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(200):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.02)
    started = time.monotonic()
    ctx.request_stop("abandoned")
    runner.cancel(ctx)
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 3
    assert outcome["summary"] == "Stopped: abandoned"
    assert not alive(int(pidfile.read_text()))


def test_environment_variables_reach_the_commands_a_secret_masked_and_the_timeout_holds(
        driver, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_SECRET_DEPLOY_TOKEN", "s3cr3t-deploy-token")
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"README.md": "# app\n"})
    doc = definition("cmd-env", stages=[
        ("Source", [git_source(repo)]),
        ("Build", [commands_action("Env", [
            'echo "stage=$STAGE token=$TOKEN"',
            'test "$TOKEN" = s3cr3t-deploy-token'],
            inputArtifacts=[{"name": "Src"}], timeoutInMinutes=7, environmentVariables=[
                {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
                {"name": "TOKEN", "value": "deploy-token", "type": "SECRETS_MANAGER"}]),
            commands_action("Default", ["true"], inputArtifacts=[{"name": "Src"}])]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    env = ActionExecution.objects.get(execution=execution, action_name="Env")
    assert env.status == "Succeeded", env.summary
    log = log_of(env)
    assert "stage=prod token=***" in log and "s3cr3t-deploy-token" not in log
    # timeoutInMinutes sets the action's deadline; without it, CodePipeline's 55 minutes.
    assert env.deadline_at - env.started_at == timedelta(minutes=7)
    default = ActionExecution.objects.get(execution=execution, action_name="Default")
    assert default.deadline_at - default.started_at == timedelta(minutes=55)
