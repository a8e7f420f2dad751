"""CodeBuild: a buildspec run locally through build projects — with real git repositories,
real bash and the real engine (the worker code; only the queue is held by the test)."""

from __future__ import annotations

import json
import re
import socket
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from executions import artifacts as store
from executions.models import ActionExecution, Artifact
from pipelines import services
from pipelines.models import BuildProject
from pipelines.services import build_project_save, pipeline_save
from pipelines.validation import validate_document
from runners import sandbox
from tests.factories import action, definition
from tests.runners.conftest import GitRepo
from tests.runners.forge import Forge
from tests.runners.test_commands_action import commands_action, git_source, log_of


def codebuild(name="Build", project="app-build", category="Build", **fields):
    config = {"ProjectName": project, **fields.pop("configuration", {})}
    body = action(name, category, "CodeBuild", configuration=config,
                  inputArtifacts=fields.pop("inputArtifacts", [{"name": "Src"}]), **fields)
    body["actionTypeId"]["owner"] = "AWS"
    return body


def repo_with(tmp_path, buildspec: str, files: dict | None = None, name="repo") -> GitRepo:
    repo = GitRepo(tmp_path / name)
    repo.commit({"buildspec.yml": textwrap.dedent(buildspec), **(files or {})}, "Add the build")
    return repo


def run_pipeline(driver, tmp_path, repo, *actions, later=(), name="cb"):
    stages = [("Source", [git_source(repo)]), ("Build", list(actions))]
    stages += list(later)
    execution = driver.start(pipeline_save(document=definition(name, stages=stages)).pipeline)
    driver.run()
    return execution


def build_of(execution, name="Build") -> ActionExecution:
    return ActionExecution.objects.get(execution=execution, action_name=name)


def phase_lines(log: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in log.splitlines()
            if "Entering phase" in line or "Phase complete" in line or "does not run" in line]


# --- phases ----------------------------------------------------------------------


def test_phases_run_in_one_shell_and_the_log_marks_each_one(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.2
        env:
          variables:
            GREETING: hello
            CI: true
        phases:
          install:
            runtime-versions:
              python: 3.11
            commands:
              - export TOOL_HOME=$HOME/tools && mkdir -p $TOOL_HOME
          pre_build:
            commands:
              - cd src
              - COUNT=1
          build:
            commands:
              - COUNT=$((COUNT + 1))
              - test "$(basename "$PWD")" = src
              - echo "$GREETING CI=$CI count=$COUNT tools=${TOOL_HOME#$HOME}"
          post_build:
            commands:
              - echo "succeeding=$CODEBUILD_BUILD_SUCCEEDING"
        """, {"src/main.py": "print(1)\n"})
    execution = run_pipeline(driver, tmp_path, repo, codebuild())
    build = build_of(execution)
    assert build.status == "Succeeded", build.summary
    assert build.summary == "Build succeeded (INSTALL, PRE_BUILD, BUILD, POST_BUILD)"
    log = log_of(build)
    assert phase_lines(log) == [
        "[Container] Entering phase INSTALL",
        "[Container] Phase complete: INSTALL State: SUCCEEDED",
        "[Container] Entering phase PRE_BUILD",
        "[Container] Phase complete: PRE_BUILD State: SUCCEEDED",
        "[Container] Entering phase BUILD", "[Container] Phase complete: BUILD State: SUCCEEDED",
        "[Container] Entering phase POST_BUILD",
        "[Container] Phase complete: POST_BUILD State: SUCCEEDED"]
    assert "hello CI=true count=2 tools=/tools" in log
    assert "succeeding=1" in log
    # Read, not applied, and said so before the first phase.
    warning = log.index("phases.install.runtime-versions: not applied (python 3.11)")
    assert warning < log.index("Entering phase INSTALL")
    assert 'No build project is named "app-build": running buildspec.yml from the root of ' \
           "the primary source (Src) with default settings" in log


def test_finally_runs_after_a_failure_and_post_build_still_runs_after_build(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          build:
            commands:
              - echo compiling
              - exit 4
              - echo never
            finally:
              - echo "cleanup after failure"
          post_build:
            commands:
              - echo "post_build sees succeeding=$CODEBUILD_BUILD_SUCCEEDING"
        """)
    execution = run_pipeline(driver, tmp_path, repo, codebuild())
    build = build_of(execution)
    assert build.status == "Failed"
    assert build.summary == "Phase BUILD failed: Command 2 of 3 failed with exit code 4: exit 4"
    log = log_of(build)
    assert "Running command echo never" not in log
    assert log.index("cleanup after failure") < log.index("Phase complete: BUILD State: FAILED")
    assert "post_build sees succeeding=0" in log
    assert "[Container] Phase context status code: COMMAND_EXECUTION_ERROR Message: Error " \
           "while executing command: exit 4. Reason: exit status 4" in log


def test_a_failed_install_ends_the_build_before_build_and_post_build(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          install:
            commands: [missing-tool --version]
          build:
            commands: [echo building]
          post_build:
            commands: [echo posting]
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    assert build.status == "Failed"
    assert build.summary == ("Phase INSTALL failed: Command 1 of 1 failed with exit code 127: "
                             "missing-tool --version")
    assert phase_lines(log_of(build))[-2:] == [
        "[Container] Phase BUILD does not run: phase INSTALL failed",
        "[Container] Phase POST_BUILD does not run: phase INSTALL failed"]


def test_on_failure_continue_goes_on_and_the_build_still_fails(driver, tmp_path):
    # As aft-global-customizations does: a failure let through, re-raised in post_build.
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          pre_build:
            on-failure: CONTINUE
            commands:
              - STATE=prepared
              - false
          build:
            commands:
              - echo "build runs with STATE=$STATE succeeding=$CODEBUILD_BUILD_SUCCEEDING"
          post_build:
            commands:
              - |
                if [[ $CODEBUILD_BUILD_SUCCEEDING == 0 ]]; then
                  echo "re-raising"; exit 1
                fi
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    log = log_of(build)
    assert "build runs with STATE=prepared succeeding=0" in log
    assert "re-raising" in log
    assert build.status == "Failed"
    assert build.summary == "Phase PRE_BUILD failed: Command 2 of 2 failed with exit code 1: false"


def test_version_0_1_runs_each_command_in_its_own_shell(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.1
        phases:
          build:
            commands:
              - export LOST=yes; cd /
              - echo "lost=${LOST:-no} in $(basename "$PWD")"
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    assert build.status == "Succeeded", build.summary
    assert "lost=no in workspace" in log_of(build)


# --- refused before it starts ----------------------------------------------------


def test_unknown_keys_and_unsupported_features_are_refused_before_anything_runs(
        driver, tmp_path):
    marker = tmp_path / "ran"
    repo = repo_with(tmp_path, f"""\
        version: 0.2
        run-as: builder
        proxy:
          upload-artifacts: yes
        phases:
          biuld:
            commands: [touch {marker}]
          install:
            commands: [touch {marker}]
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    assert build.status == "Failed"
    assert build.summary.startswith("The buildspec (buildspec.yml) cannot run here: run-as: ")
    assert "; proxy: proxy servers for builds are not supported here" in build.summary
    assert '; phases.biuld: "biuld" is not a buildspec key here: use install, pre_build, ' \
           "build, post_build" in build.summary
    assert not marker.exists()
    assert "Entering phase" not in log_of(build)


def test_a_source_without_buildspec_yml_fails_naming_the_file(driver, tmp_path):
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"README.md": "no build here"})
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    assert build.status == "Failed"
    assert build.summary.startswith("YAML_FILE_ERROR: buildspec.yml was not found in the "
                                    "primary source")


def validation(act) -> list[str]:
    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}]),
                    action("T", "Source", "Simulate", outputArtifacts=[{"name": "Tools"}])]),
        ("Build", [act]),
    ])
    return [str(p) for p in validate_document(doc)]


def test_the_codebuild_configuration_is_checked_at_its_paths():
    found = validation(codebuild(
        project="", inputArtifacts=[{"name": "Src"}, {"name": "Tools"}],
        configuration={"ProjectName": "", "BatchEnabled": "true", "CombineArtifacts": "true",
                       "EnvironmentVariables": '[{"name": "A"}]', "Image": "x"}))
    assert found == [
        "stages[1].actions[0].configuration.ProjectName: is required: the build project to "
        "run (without one, buildspec.yml of the source runs)",
        "stages[1].actions[0].configuration.PrimarySource: is required when the action has "
        "several input artifacts: name the one the buildspec is in",
        'stages[1].actions[0].configuration.BatchEnabled: batch builds do not run here: '
        'remove BatchEnabled or set it to "false"',
        "stages[1].actions[0].configuration.CombineArtifacts: combines the artifacts of a "
        "batch build, and batch builds do not run here",
        "stages[1].actions[0].configuration.EnvironmentVariables: entry 0 must be an object "
        "with a name and a value (strings)",
        'stages[1].actions[0].configuration.Image: "Image" is not a setting of the CodeBuild '
        "action: use ProjectName, PrimarySource, EnvironmentVariables, BatchEnabled, "
        "CombineArtifacts, BuildspecOverride, RunOn (or the sandbox's Network, ComputeType, "
        "LimitMemoryMiB, LimitProcesses, LimitFileSizeMiB, LimitOpenFiles, LimitCpuSeconds)",
    ]


def test_the_sandbox_settings_of_a_codebuild_action_are_checked_at_their_paths():
    found = validation(codebuild(configuration={"Network": "off", "LimitProcesses": "ten"}))
    assert found == [
        'stages[1].actions[0].configuration.Network: "off" is not a network setting: use '
        '"host" (the default) or "none"',
        'stages[1].actions[0].configuration.LimitProcesses: "ten" is not a whole number '
        "above 0"]
    assert validation(codebuild(configuration={"Network": "none"})) == []


# --- variables, secrets, artifacts, reports, cache -------------------------------


def test_exported_variables_reach_a_later_action(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.2
        env:
          exported-variables:
            - CODEBUILD_BUILD_ID
            - APP_VERSION
            - GIT_SHA
        phases:
          build:
            commands:
              - APP_VERSION=$(cat VERSION)
              - GIT_SHA=$CODEBUILD_RESOLVED_SOURCE_VERSION
        """, {"VERSION": "2.0.1\n"})
    execution = run_pipeline(driver, tmp_path, repo, codebuild(namespace="BuildVariables"),
                             later=[("Deploy", [commands_action("Tag", [
                                 'echo "tag v#{BuildVariables.APP_VERSION} at '
                                 '#{BuildVariables.GIT_SHA}"'], inputArtifacts=[{"name": "Src"}]
                             )])])
    build = build_of(execution)
    assert build.status == "Succeeded", build.summary
    assert build.output_variables["APP_VERSION"] == "2.0.1"
    assert build.output_variables["GIT_SHA"] == repo.head()
    assert build.output_variables["CODEBUILD_BUILD_ID"] == f"app-build:{build.action_execution_id}"
    tag = build_of(execution, "Tag")
    assert f"tag v2.0.1 at {repo.head()}" in log_of(tag)


def test_secrets_from_the_project_and_the_buildspec_are_masked(driver, tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_SECRET_PROD_DB", json.dumps({"password": "s3cr3t-db-pw"}))
    monkeypatch.setenv("CONVEYOR_SECRET_CI_NPM_TOKEN", "npm-token-123456")
    monkeypatch.setenv("CONVEYOR_SECRET_DEPLOY_KEY", "deploy-key-abcdef")
    build_project_save(document={"name": "app-build", "environment": {"environmentVariables": [
        {"name": "NPM_TOKEN", "value": "/ci/npm-token", "type": "PARAMETER_STORE"},
        {"name": "STAGE", "value": "project", "type": "PLAINTEXT"}]}})
    repo = repo_with(tmp_path, """\
        version: 0.2
        env:
          variables:
            STAGE: buildspec
          secrets-manager:
            DB_PASSWORD: prod/db:password
        phases:
          build:
            commands:
              - echo "db=$DB_PASSWORD npm=$NPM_TOKEN key=$KEY stage=$STAGE"
              - test "$DB_PASSWORD" = s3cr3t-db-pw
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild(configuration={
        "EnvironmentVariables": json.dumps([
            {"name": "KEY", "value": "deploy-key", "type": "SECRETS_MANAGER"},
            {"name": "STAGE", "value": "action"}])})))
    assert build.status == "Succeeded", build.summary
    log = log_of(build)
    assert "db=*** npm=*** key=*** stage=action" in log
    for secret in ("s3cr3t-db-pw", "npm-token-123456", "deploy-key-abcdef"):
        assert secret not in log


def test_an_action_variable_holding_quotes_stays_one_value(driver, tmp_path):
    repo = GitRepo(tmp_path / "repo")
    command = "'echo \"msg=[$MSG]\"; env | grep -c ^INJECTED= || true'"
    repo.commit({"buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n"
                                  f"      - {command}\n"},
                'quote" }, {"name": "INJECTED", "value": "x')
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild(configuration={
        "EnvironmentVariables": '[{"name": "MSG", "value": "#{SourceVariables.CommitMessage}"}]'})))
    assert build.status == "Succeeded", build.summary
    log = log_of(build)
    assert 'msg=[quote" }, {"name": "INJECTED", "value": "x]' in log
    assert any(line.endswith(" 0") for line in log.splitlines())


def test_secondary_artifacts_fill_the_output_artifacts_of_the_same_name(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          build:
            commands:
              - mkdir -p out/web/css out/docs && echo app > out/web/app.js
              - echo css > out/web/css/site.css && echo tmp > out/web/app.js.map
              - echo "# guide" > out/docs/guide.md
              - PKG=out/docs
        artifacts:
          files: ['**/*']
          secondary-artifacts:
            Web:
              base-directory: out/web
              files: ['**/*']
              exclude-paths: ['*.map']
            Docs:
              files: ['$PKG/*.md']
              discard-paths: yes
              name: docs.zip
        """)
    execution = run_pipeline(driver, tmp_path, repo, codebuild(
        outputArtifacts=[{"name": "Web"}, {"name": "Docs"}]))
    build = build_of(execution)
    assert build.status == "Succeeded", build.summary
    assert Artifact.objects.get(execution=execution, name="Web").file_count == 2
    assert Artifact.objects.get(execution=execution, name="Docs").file_count == 1
    log = log_of(build)
    assert "Collected 2 file(s) of artifacts.secondary-artifacts.Web into output artifact Web" \
        in log
    assert 'into output artifact Docs (named "docs.zip" in the buildspec)' in log
    assert "artifacts is not stored: no output artifact of this action takes it" in log


def test_reports_feed_the_summary_without_failing_the_build(driver, tmp_path):
    junit = ('<testsuite><testcase classname="t" name="ok"/>'
             '<testcase classname="t" name="bad"><failure/></testcase></testsuite>')
    repo = repo_with(tmp_path, f"""\
        version: 0.2
        phases:
          build:
            commands:
              - mkdir -p reports && echo '{junit}' > reports/junit-1.xml
        reports:
          unit:
            files: ['junit-*.xml']
            base-directory: $CODEBUILD_SRC_DIR/reports
            file-format: JUNITXML
          coverage:
            files: [coverage.xml]
            file-format: CLOVERXML
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild(category="Test")))
    assert build.status == "Succeeded", build.summary
    assert build.summary == ("Tests: 1 passed, 1 failed, 0 skipped; failing: t.bad. "
                             "Build succeeded (BUILD)")
    assert "reports.coverage.file-format: CLOVERXML is a code coverage format" in log_of(build)


def test_the_cache_of_a_project_is_reused_by_its_next_build(driver, tmp_path, settings):
    settings.CONVEYOR_BUILD_CACHE_ROOT = tmp_path / "cache"
    build_project_save(document={"name": "app-build", "cache": {"paths": ["/root/.deps/**/*"]}})
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          build:
            commands:
              - |
                if [ -f vendor/lib.txt ] && [ -f ~/.deps/index ]; then
                  echo "cache hit: $(cat vendor/lib.txt)"
                else
                  echo "cache miss"; mkdir -p vendor ~/.deps
                  echo "downloaded $CODEBUILD_BUILD_NUMBER" > vendor/lib.txt
                  echo index > ~/.deps/index
                fi
        cache:
          paths:
            - 'vendor/**/*'
        """)
    first = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    second = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    assert (first.status, second.status) == ("Succeeded", "Succeeded"), second.summary
    assert "cache miss" in log_of(first)
    assert "cache hit: downloaded 1" in log_of(second)
    assert "Cache of project app-build: restored 2 file(s)" in log_of(second)
    assert BuildProject.objects.get().build_count == 2


@pytest.mark.usefixtures("unsandboxed")  # written before the sandbox: see the fixture
def test_codebuild_environment_variables_describe_the_build(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          build:
            commands:
              - env | grep -E '^(CODEBUILD_|HOME=)' | sort > codebuild.env
        artifacts:
          files: [codebuild.env]
        """)
    build_project_save(document={"name": "app-build"})
    execution = run_pipeline(driver, tmp_path, repo, codebuild(outputArtifacts=[{"name": "Env"}]))
    build = build_of(execution)
    assert build.status == "Succeeded", build.summary

    target = tmp_path / "env-out"
    store.extract(Artifact.objects.get(execution=execution, name="Env").storage_name, target)
    env = dict(line.split("=", 1) for line in (target / "codebuild.env").read_text().splitlines())
    workspace = Path(settings.WORKSPACE_ROOT) / str(build.action_execution_id)
    assert env["CODEBUILD_BUILD_ID"] == f"app-build:{build.action_execution_id}"
    assert env["CODEBUILD_BUILD_NUMBER"] == "1"
    assert env["CODEBUILD_INITIATOR"] == "codepipeline/cb"
    assert env["CODEBUILD_SRC_DIR"] == str(workspace / "workspace")
    assert env["CODEBUILD_RESOLVED_SOURCE_VERSION"] == env["CODEBUILD_SOURCE_VERSION"] == \
        repo.head()
    assert env["HOME"] == str(workspace / "sandbox-home")
    assert env["CODEBUILD_BUILD_SUCCEEDING"] == "1"


def test_a_project_inline_buildspec_and_a_secondary_source(driver, tmp_path):
    tools = GitRepo(tmp_path / "tools")
    tools.commit({"lint.sh": "echo linted \"$1\"\n"})
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app.txt": "app"})
    build_project_save(document={"name": "app-build", "source": {"buildspec": textwrap.dedent("""\
        version: 0.2
        phases:
          build:
            commands:
              - sh "$CODEBUILD_SRC_DIR_Tools/lint.sh" "$(cat app.txt)"
        """)}})
    tool_source = action("Tools", "Source", "Git", configuration={
        "RepositoryUrl": str(tools.path), "BranchName": "main"},
        outputArtifacts=[{"name": "Tools"}])
    doc = definition("cb-two", stages=[
        ("Source", [git_source(repo), tool_source]),
        ("Build", [codebuild(inputArtifacts=[{"name": "Src"}, {"name": "Tools"}],
                             configuration={"PrimarySource": "Src"})])])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    build = build_of(execution)
    assert build.status == "Succeeded", build.summary
    assert 'Buildspec: inline, from the build project "app-build"' in log_of(build)
    assert "linted app" in log_of(build)


@pytest.mark.parametrize("value", ["true", "TRUE"])
def test_batch_enabled_is_refused_with_a_clear_message(value):
    assert 'configuration.BatchEnabled: batch builds do not run here' in " ".join(validation(
        codebuild(configuration={"BatchEnabled": value, "PrimarySource": "Src"})))


def test_artifacts_that_match_no_file_fail_the_build_as_on_codebuild(driver, tmp_path):
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          build:
            commands: [mkdir -p dist]
        artifacts:
          files: ['*.jar']
          base-directory: dist
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild(
        outputArtifacts=[{"name": "Jar"}])))
    assert build.status == "Failed"
    assert build.summary == "artifacts: no file matched *.jar under dist"


def test_a_build_past_its_timeout_is_killed_and_names_the_phase(driver, tmp_path, monkeypatch):
    from runners import codebuild as module

    monkeypatch.setattr(module, "DEFAULT_TIMEOUT_MINUTES", 0.01)   # 0.6 s, for the test
    marker = tmp_path / "post-build-ran"
    repo = repo_with(tmp_path, f"""\
        version: 0.2
        phases:
          build:
            commands: [sleep 30]
          post_build:
            commands: [touch {marker}]
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    assert build.status == "Failed"
    assert build.summary == ("Build timed out after 0.01 minutes (the build project's timeout) "
                             "in phase BUILD")
    assert "Phase complete: BUILD State: TIMED_OUT" in log_of(build)
    assert not marker.exists()


def test_the_project_compute_type_sizes_the_build_through_the_sandbox_limits(
        driver, tmp_path):
    build_project_save(document={"name": "app-build",
                                 "environment": {"computeType": "BUILD_GENERAL1_MEDIUM"}})
    repo = repo_with(tmp_path, """\
        version: 0.2
        phases:
          build:
            commands:
              - echo "data limit $(ulimit -d) KiB"
        """)
    build = build_of(run_pipeline(driver, tmp_path, repo, codebuild()))
    assert build.status == "Succeeded", build.summary
    log = log_of(build)
    assert "Compute type BUILD_GENERAL1_MEDIUM: 7 GiB of memory for the build (and each " \
           "process)" in log
    assert f"data limit {7 * 1024 * 1024} KiB" in log


# --- network -----------------------------------------------------------------------

REACH = """\
    version: 0.2
    phases:
      build:
        commands:
          - echo hello > /dev/tcp/127.0.0.1/$LISTENER_PORT && echo "port $LISTENER_PORT answered"
    """


@pytest.fixture
def listener():
    """A TCP socket listening on 127.0.0.1 (the kernel completes a connection to it
    without an accept): what a build with a network reaches, one without cannot."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def reach(driver, tmp_path, port, *, network=None, name="net"):
    assert sandbox.probe() == (True, ""), sandbox.probe()[1]  # Network none needs it
    repo = repo_with(tmp_path, REACH, name=f"repo-{name}")
    config = {"EnvironmentVariables": json.dumps([{"name": "LISTENER_PORT",
                                                   "value": str(port)}])}
    if network:
        config["Network"] = network
    return build_of(run_pipeline(driver, tmp_path, repo, codebuild(configuration=config),
                                 name=name))


def test_a_project_with_network_none_gives_its_builds_no_network(driver, tmp_path, listener):
    build_project_save(document={"name": "app-build"})
    build = reach(driver, tmp_path, listener, name="open")
    assert build.status == "Succeeded", build.summary
    assert f"port {listener} answered" in log_of(build)

    build_project_save(document={"name": "app-build", "network": "none"})
    build = reach(driver, tmp_path, listener, name="closed")
    assert build.status == "Failed"
    assert build.summary.startswith("Phase BUILD failed: Command 1 of 1 failed with exit code 1")
    log = log_of(build)
    assert ('[Container] Network: none (build project "app-build"): the build reaches no '
            "network at all") in log
    assert f"port {listener} answered" not in log and "Connection refused" in log


@pytest.mark.parametrize(("project", "action"), [("none", "host"), ("host", "none")])
def test_the_stricter_of_the_project_and_the_action_network_wins(
        driver, tmp_path, listener, project, action):
    build_project_save(document={"name": "app-build", "network": project})
    build = reach(driver, tmp_path, listener, network=action)
    assert build.status == "Failed", build.summary
    log = log_of(build)
    assert f"port {listener} answered" not in log and "Connection refused" in log
    who = 'build project "app-build"' if project == "none" else "configuration.Network"
    assert f"[Container] Network: none ({who})" in log


# --- CodeBuild's folder for a clone ------------------------------------------------

CLONE_ARN = "arn:aws:codeconnections:us-east-1:111122223333:connection/gopher"


def test_a_clone_ref_source_is_laid_out_as_codebuild_lays_out_a_github_clone(driver, tmp_path):
    """CODEBUILD_SRC_DIR ends in <host>/<owner>/<repo>; a build moves the owner folder into
    a GOPATH (as ecs-agent's buildspec does), builds there, and the artifacts are still
    collected. Sandboxed: the layout holds inside the sandbox too."""
    assert sandbox.probe() == (True, ""), sandbox.probe()[1]
    with Forge(tmp_path / "forge", "x-access-token", "t0ken-gopher") as forge:
        repo = forge.repository("octo-org/gopher")
        sha = repo.commit({"VERSION": "2.1.0\n", "buildspec.yml": textwrap.dedent("""\
            version: 0.2
            env:
              exported-variables: [SRC, OWNER, SHORT]
            phases:
              build:
                commands:
                  - SRC=$CODEBUILD_SRC_DIR
                  - test "$PWD" = "$CODEBUILD_SRC_DIR"
                  - cd ../..
                  - OWNER=$(ls)
                  - mkdir -p src/github.com/
                  - mv $OWNER src/github.com/aws
                  - export GOPATH=$(pwd)
                  - cd src/github.com/aws/gopher
                  - SHORT=$(git rev-parse --short=8 HEAD)
                  - echo "built $(cat VERSION) in ${PWD#$GOPATH}" > gopher-$SHORT.txt
            artifacts:
              files: [gopher-*.txt]
            """)}, "The gopher")
        services.connection_save(name="gh", provider="GitHub", base_url=forge.url,
                                 arns=[CLONE_ARN], token="t0ken-gopher")
        source = action("Checkout", "Source", "CodeStarSourceConnection", configuration={
            "ConnectionArn": CLONE_ARN, "FullRepositoryId": "octo-org/gopher",
            "BranchName": "main", "OutputArtifactFormat": "CODEBUILD_CLONE_REF"},
            outputArtifacts=[{"name": "Src"}])
        source["actionTypeId"]["owner"] = "AWS"
        doc = definition("gopher", stages=[
            ("Source", [source]),
            ("Build", [codebuild(outputArtifacts=[{"name": "Built"}])])])
        execution = driver.start(pipeline_save(document=doc).pipeline)
        driver.run()
    build = build_of(execution)
    assert build.status == "Succeeded", log_of(build)
    variables = build.output_variables
    assert variables["SRC"].endswith("/src/127.0.0.1/octo-org/gopher")
    assert re.search(r"/codebuild/output/src[0-9]+/src/127\.0\.0\.1/octo-org/gopher$",
                     variables["SRC"])
    assert (variables["OWNER"], variables["SHORT"]) == ("octo-org", sha[:8])
    built = Artifact.objects.get(execution=execution, name="Built")
    assert built.file_count == 1
    target = tmp_path / "built"
    store.extract(built.storage_name, target)
    files = {p.name: p.read_text() for p in target.iterdir()}
    assert files == {f"gopher-{sha[:8]}.txt": "built 2.1.0 in /src/github.com/aws/gopher\n"}


def test_env_shell_sh_runs_the_commands_in_posix_mode_and_bash_otherwise(driver, tmp_path):
    spec = """\
        version: 0.2
        env:
          shell: {shell}
        phases:
          build:
            commands:
              - case ":$SHELLOPTS:" in *:posix:*) echo "mode=posix";; *) echo "mode=bash";; esac
        """
    sh = build_of(run_pipeline(driver, tmp_path, repo_with(
        tmp_path, spec.format(shell="sh"), name="sh"), codebuild(), name="sh"))
    bash = build_of(run_pipeline(driver, tmp_path, repo_with(
        tmp_path, spec.format(shell="bash"), name="bash"), codebuild(), name="bash"))
    assert (sh.status, bash.status) == ("Succeeded", "Succeeded")
    assert "mode=posix" in log_of(sh) and "mode=bash" in log_of(bash)
