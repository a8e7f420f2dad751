"""Every real buildspec in tests/fixtures/buildspec either runs or is refused before it starts.

Each runs as it is written, as ``buildspec.yml`` at the root of a real git clone, through
the real CodeBuild runner and real bash. What a buildspec calls besides its own repository
(the AWS CLI, apt-get, npm, tox, hugo, downloads) is the edge of the world here: a folder
of stand-ins put first on PATH (through the action's EnvironmentVariables, as a user
would) records each call and writes what the real tool would leave behind. The stand-ins
also keep these builds from installing packages or writing outside their folders on the
machine that runs the tests. Real tools are used where they are harmless: git, python3
(``setup.py sdist``, ``venv``), pip (from a folder of wheels made by the test: PyPI is out
of reach here), jq, sed. ecs-agent runs through the engine as a pipeline whose source is
a connection's clone (the stand-in forge of tests/runners/forge.py).
"""

from __future__ import annotations

import inspect
import json
import os
import re
import stat
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

from executions import artifacts as store
from executions.models import ActionExecution, Artifact
from pipelines import services
from pipelines.buildspec import buildspec_parse
from pipelines.services import pipeline_save
from runners import logfile
from runners.base import ActionFailed, LogWriter, RunContext
from runners.codebuild import CodeBuildRunner
from tests.runners.conftest import GitRepo
from tests.runners.forge import Forge

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "buildspec"
runner = CodeBuildRunner()

STANDINS = {
    # Each stand-in logs its call, then does what the build relies on.
    "aws": r"""
case "$1 $2" in
  "ssm get-parameter")
    name=""; prev=""; query=""
    for a in "$@"; do [ "$prev" = --name ] && name=$a; [ "$a" = --query ] && query=1; prev=$a; done
    case $name in
      */repo-url) value=$STANDIN_AFT_REPO ;;
      */repo-git-ref) value=main ;;
      /aft/config/aft-ssh-key) exit 254 ;;
      *) value="value-of-$(basename "$name")" ;;
    esac
    # --query "Parameter.Value" --output text prints the value; without it, JSON.
    if [ -n "$query" ]; then echo "$value"
    else printf '{"Parameter": {"Value": "%s"}}\n' "$value"; fi ;;
  "cloudformation package")
    src=""; out=""; prev=""
    for a in "$@"; do
      [ "$prev" = --template-file ] && src=$a
      [ "$prev" = --output-template-file ] && out=$a
      prev=$a
    done
    cp "$src" "$out" ;;
esac""",
    "apt-get": "",
    "dpkg": "",
    "curl": r"""prev=""; for a in "$@"; do [ "$prev" = -o ] && : > "$a"; prev=$a; done""",
    "hugo": "mkdir -p public && echo '<html>workshop</html>' > public/index.html",
    "npm": "",
    "tox": "",
    "git-release": "",
    "yq": "echo ''",
    "wget": r"""prev=""; for a in "$@"; do [ "$prev" = -O ] && : > "$a"; prev=$a; done""",
    "tar": "",
    "go": "echo 'go version go1.21 linux/amd64'",
}


def standins(folder: Path, **more: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in {**STANDINS, **more}.items():
        path = folder / name
        path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$STANDIN_CALLS"\n{body}\n')
        path.chmod(0o755)
    # The interpreter the tests run on, not a pyenv shim (whose root depends on $HOME).
    (folder / "python3").symlink_to(sys._base_executable)
    return folder


def write_repo(path: Path, files: dict[str, str], executable=()) -> GitRepo:
    repo = GitRepo(path)
    for name, content in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        if name in executable:
            target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "The project")
    return repo


def run_fixture(tmp_path: Path, fixture: str, files: dict | None = None, *, env=(),
                executable=(), outputs=("Out",)) -> tuple[RunContext, object]:
    """Clone a repository holding the fixture as buildspec.yml and run it; (ctx, outcome)."""
    text = (FIXTURES / fixture).read_text()
    origin = write_repo(tmp_path / "origin", {"buildspec.yml": text, **(files or {})},
                        executable)
    root = tmp_path / "builds" / uuid.uuid4().hex[:8]   # the action's own folder
    workspace = root / "workspace"
    root.mkdir(parents=True)
    GitRepo.git(origin, "clone", "-q", str(origin.path), str(workspace))
    outputs_dirs = {}
    for name in outputs:
        outputs_dirs[name] = root / "outputs" / name
        outputs_dirs[name].mkdir(parents=True)
    path = f"{standins(tmp_path / 'standins')}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    variables = [{"name": "PATH", "value": path},
                 {"name": "STANDIN_CALLS", "value": str(tmp_path / "calls.log")},
                 *[{"name": k, "value": v} for k, v in env]]
    action = {"name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS",
                                                "provider": "CodeBuild", "version": "1"},
              "configuration": {"ProjectName": "fixture",
                                "EnvironmentVariables": json.dumps(variables)},
              "inputArtifacts": [{"name": "Src"}],
              "outputArtifacts": [{"name": n} for n in outputs]}
    ctx = RunContext(
        pipeline_name="fixtures", pipeline_execution_id=str(uuid.uuid4()), execution_number=1,
        pipeline_version=1, stage_name="Build", action_name="Build",
        action_execution_id=str(uuid.uuid4()), attempt=1, category="Build",
        provider="CodeBuild", action=action, variables={}, input_dirs={"Src": workspace},
        output_dirs=outputs_dirs, workspace=workspace,
        log=LogWriter(tmp_path / "logs" / "build.log"))
    try:
        outcome = runner.run(ctx)
    except ActionFailed as failure:
        outcome = failure
    ctx.log.close()
    return ctx, outcome


def log_of(ctx: RunContext) -> str:
    return logfile.text(ctx.log.path)


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# --- the ones that run -----------------------------------------------------------


def amplify(tmp_path):
    scripts = """\
function _runE2ETestsLinux {
  mkdir -p packages/amplify-e2e-tests && cd packages/amplify-e2e-tests
  mkdir -p reports/junit "$E2E_TEST_COVERAGE_DIR"
  echo '<testsuite><testcase classname="init" name="amplify init"/>' \
       '<testcase classname="push" name="amplify push"/></testsuite>' > reports/junit/junit-1.xml
  echo coverage > "$E2E_TEST_COVERAGE_DIR/coverage-1.json"
  cd - > /dev/null
  echo "e2e ran against $AMPLIFY_PATH"
}
function _convertCoverage { echo converted; }
function _scanArtifacts { echo "scanned, secret-looking value: $ENV_VAR_WITH_SECRETS"; }
function _uploadReportsToS3 { echo "would upload for $1 ${2:-no-batch} $3"; }
"""
    ctx, outcome = run_fixture(tmp_path, "amplify-e2e-linux-shell-bash-junit-clover-reports.yml",
                               {"shared-scripts.sh": scripts})
    assert outcome.summary == ("Tests: 2 passed, 0 failed, 0 skipped. Build succeeded "
                               "(BUILD, POST_BUILD)")
    assert files_in(ctx.output_dirs["Out"]) == ["node_v8_coverage/coverage-1.json"]
    assert f"e2e ran against {ctx.workspace}/out/amplify-pkg-linux-x64" in log_of(ctx)


def eks_anywhere(tmp_path, settings):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name, keys in {
        "packages_ci_beta": ["aws_region"],
        "github-eks-anywhere-flux-bot": ["github-token", "github-user", "github-repository",
                                         "generic-git-repository-url"],
        "harbor-registry-data": ["endpoint", "port", "username", "password", "caCert",
                                 "default_sg_id", "airgapped_sg_id", "ocinamespace_registry1",
                                 "ocinamespace_namespace1", "ocinamespace_registry2",
                                 "ocinamespace_namespace2"],
        "aws-iam-auth-role": ["ec2_role_arn"],
        "extended_support": ["license_token", "license_token2", "staging_license_token",
                             "staging_license_token2"],
    }.items():
        (secrets / name).write_text(json.dumps({k: f"{name}-{k}-value" for k in keys}))
    settings.CONVEYOR_SECRETS_DIR = secrets
    script = "cmd/integration_test/build/script/"
    ctx, outcome = run_fixture(tmp_path, "eks-anywhere-docker-test-secrets-manager-junit.yml", {
        f"{script}setup_profile.sh": "export PROFILE_READY=yes\n",
        f"{script}create_infra_config.sh": 'echo "infra config for $T_GITHUB_USER"\n',
        f"{script}start_docker.sh": "#!/bin/sh\necho docker started\n",
        "test/e2e/SKIPPED_TESTS.yaml": "skipped_tests: []\n",
        "bin/docker/e2e.test": "binary\n",
        "bin/test": '#!/bin/bash\nmkdir -p reports\necho "profile=$PROFILE_READY args=$*"\n'
                    "echo '<testsuite><testcase classname=\"docker\" name=\"TestDockerKubernetes"
                    "\"/></testsuite>' > reports/junit-testing-1.xml\n",
    }, executable=(f"{script}start_docker.sh", "bin/test"), outputs=())
    assert outcome.summary == ("Tests: 1 passed, 0 failed, 0 skipped. Build succeeded "
                               "(PRE_BUILD, BUILD)")
    log = log_of(ctx)
    assert "infra config for ***" in log and "harbor-registry-data-password" not in log
    assert "profile=yes args=e2e run -c /tmp/test-infra.yml" in log


def sagemaker(tmp_path):
    ctx, outcome = run_fixture(tmp_path, "sagemaker-pytorch-release-artifact-name-discard-paths"
                               ".yml", {
        "setup.py": "from setuptools import setup\nsetup(name='sagemaker_pytorch_training', "
                    "version='2.8.1', py_modules=[])\n"})
    assert outcome.summary == "Build succeeded (BUILD)"
    assert files_in(ctx.output_dirs["Out"]) == ["sagemaker_pytorch_training-2.8.1.tar.gz"]
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["git-release --prepare", "tox -e flake8,twine", "tox -e py38 -- test/unit",
                     "git-release --publish"]


def hugo(tmp_path):
    ctx, outcome = run_fixture(tmp_path, "serverless-workshops-hugo-runtime-versions-finally"
                               ".yml", {"workshop/content/_index.md": "# Workshop\n"})
    assert outcome.summary == "Build succeeded (INSTALL, BUILD)"
    assert files_in(ctx.output_dirs["Out"]) == ["index.html"]
    log = log_of(ctx)
    assert "not applied (golang 1.12, nodejs 10)" in log
    assert "Installation done" in log and "Building the HTML files finished" in log


def unicorn_0_1(tmp_path):
    ctx, outcome = run_fixture(tmp_path, "serverless-workshops-unicorn-api-version-0.1.yml",
                               {"app-sam.yaml": "Resources: {}\n"},
                               env=[("S3_BUCKET", "unicorn-artifacts")])
    assert outcome.summary == "Build succeeded (INSTALL, PRE_BUILD, BUILD, POST_BUILD)"
    assert files_in(ctx.output_dirs["Out"]) == ["app-sam-output.yaml"]
    assert f"Installing dependencies - {ctx.workspace}" in log_of(ctx)


# --- the ones that need more of the world: a package index, a connection's clone -----


# The packages aft's install phase asks pip for, as (project, version, module, code).
AFT_PACKAGES = [
    ("jinja2-cli", "0.7.0", "jinja2cli", "def main():\n    print('jinja2 stand-in')\n"),
    ("Jinja2", "3.0.1", "jinja2", "__version__ = '3.0.1'\n"),
    ("MarkupSafe", "2.0.1", "markupsafe", "__version__ = '2.0.1'\n"),
    ("boto3", "1.18.56", "boto3", "__version__ = '1.18.56'\n"),
    ("requests", "2.26.0", "requests", "__version__ = '2.26.0'\n"),
]


def wheel(folder: Path, project: str, version: str, module: str, code: str) -> Path:
    """A minimal pure-Python wheel (PEP 427) holding one module: pip installs it like any."""
    dist = f"{re.sub(r'[-_.]+', '_', project).lower()}-{version}"
    info = f"{dist}.dist-info"
    files = {f"{module}.py": code,
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: conveyor-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n"}
    if module == "jinja2cli":
        files[f"{info}/entry_points.txt"] = "[console_scripts]\njinja2 = jinja2cli:main\n"
    files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


def aft_run(tmp_path, *, deploy_exit: int, index: bool = True):
    """aft's buildspec against a framework repository and a package folder made here."""
    framework = write_repo(tmp_path / "aft-framework", {
        "sources/scripts/creds.sh": "#!/bin/sh\necho profiles written\n",
        "sources/scripts/workspace_manager.py":
            "import sys, jinja2, requests\n"
            "print('deploying with jinja2', jinja2.__version__, 'requests',\n"
            "      requests.__version__, 'to', sys.argv[sys.argv.index('--workspace_name') + 1])\n"
            f"sys.exit({deploy_exit})\n",
        "sources/aft-lambda-layer/aft_common/metrics.py":
            "import sys\nprint('metrics: codebuild-status', sys.argv[-1])\n"},
        executable=("sources/scripts/creds.sh",))
    packages = tmp_path / "packages"
    packages.mkdir()
    for package in AFT_PACKAGES:
        wheel(packages, *package)
    # No network here: pip reads no index, only the folder of wheels (PIP_FIND_LINKS).
    env = [("STANDIN_AFT_REPO", str(framework.path)), ("PIP_NO_INDEX", "1"),
           ("PIP_DISABLE_PIP_VERSION_CHECK", "1"), ("VENDED_ACCOUNT_ID", "123456789012"),
           ("AWS_PARTITION", "aws")]
    if index:
        env.append(("PIP_FIND_LINKS", str(packages)))
    return run_fixture(
        tmp_path, "aft-global-customizations-on-failure-continue.yml",
        {"api_helpers/python/requirements.txt": "boto3==1.18.56\nrequests\n",
         "api_helpers/pre-api-helpers.sh": "echo pre-api-helpers\n",
         "api_helpers/post-api-helpers.sh": "python -c 'import boto3; print(\"post-api-helpers "
                                            "with boto3\", boto3.__version__)'\n",
         "terraform/main.tf": 'terraform {}\n'}, env=env, outputs=())


def aft(tmp_path):
    # Runs as written: install under `set -e` with real git, a real clone of the framework,
    # two real venvs and real pip, which installs the pinned packages from a folder of
    # wheels made here (stand-ins for PyPI's, which this machine cannot reach); the build's
    # else branch (not "oss") deploys through the framework's workspace_manager.py.
    ctx, outcome = aft_run(tmp_path, deploy_exit=0)
    assert outcome.summary == "Build succeeded (INSTALL, PRE_BUILD, BUILD, POST_BUILD)", \
        log_of(ctx)
    log = log_of(ctx)
    assert "profiles written" in log
    assert "Successfully installed Jinja2-3.0.1 MarkupSafe-2.0.1 boto3-1.18.56 " \
           "jinja2-cli-0.7.0 requests-2.26.0" in log
    assert "No Jinja2 templates found - skipping template processing" in log
    assert ("deploying with jinja2 3.0.1 requests 2.26.0 to "
            "123456789012-aft-global-customizations") in log
    assert "metrics: codebuild-status 1" in log
    assert "post-api-helpers with boto3 1.18.56" in log


@pytest.mark.django_db
@pytest.mark.usefixtures("unsandboxed")  # stand-ins outside the workspace, as above
def test_aft_a_failed_deploy_continues_to_post_build_which_fails_the_build(tmp_path):
    """build's on-failure CONTINUE: post_build runs, reads CODEBUILD_BUILD_SUCCEEDING=0,
    reports it and exits 1 — the failure the fixture re-raises."""
    ctx, outcome = aft_run(tmp_path, deploy_exit=3)
    assert isinstance(outcome, ActionFailed)
    assert outcome.summary.startswith("Phase BUILD failed: Command 2 of 2 failed with exit "
                                      "code 3: if [ $TF_DISTRIBUTION = \"oss\" ]; then")
    log = log_of(ctx)
    assert "on-failure CONTINUE: going on to the next phase after BUILD failed" in log
    assert "metrics: codebuild-status 0" in log
    assert "Phase complete: POST_BUILD State: FAILED" in log
    assert "post-api-helpers with boto3" not in log


@pytest.mark.django_db
@pytest.mark.usefixtures("unsandboxed")
def test_aft_without_a_package_index_stops_at_pip_naming_the_command(tmp_path):
    ctx, outcome = aft_run(tmp_path, deploy_exit=0, index=False)
    assert isinstance(outcome, ActionFailed)
    assert outcome.summary.startswith("Phase INSTALL failed: Command 23 of 27 failed with exit "
                                      "code 1: $DEFAULT_PATH/aft-venv/bin/pip install "
                                      "jinja2-cli==0.7.0")
    log = log_of(ctx)
    assert "profiles written" in log     # the framework was really cloned and its script run
    assert "Phase BUILD does not run: phase INSTALL failed" in log


ECS_ARN = "arn:aws:codeconnections:us-west-2:111122223333:connection/ecs-agent"
ECS_MAKE = r"""
case "$*" in
  release-agent) echo "agent image $(cat VERSION)" > "ecs-agent-v$(cat VERSION).tar" ;;
  generic-rpm-integrated)
    echo rpm > "amazon-ecs-init-$(head -n 1 scripts/changelog/CHANGELOG_MASTER).x86_64.rpm" ;;
  "-C ./ecs-agent/daemonimages/csidriver")
    mkdir -p ecs-agent/daemonimages/csidriver/tarfiles
    echo csi > ecs-agent/daemonimages/csidriver/tarfiles/ebs-csi-driver.tar ;;
  *) exit 2 ;;
esac"""


def ecs_agent(tmp_path, driver):
    # It runs as it is meant to: a CodeBuild action of a pipeline whose source is a
    # connection's CODEBUILD_CLONE_REF (it reads `git rev-parse HEAD`), fetched through
    # the stand-in forge. Its build moves the folder above $CODEBUILD_SRC_DIR into a
    # GOPATH (`cd ../..`, `mv $GITHUBUSERNAME src/github.com/aws`): CodeBuild's folder
    # for a clone (…/src/<host>/<owner>/<repo>), which the runner lays out. The Go
    # toolchain and its downloads are the edge of the world: stand-ins for wget, tar, go
    # and make (which writes the files `make release-agent` and the others would).
    text = (FIXTURES / "ecs-agent-merge-build-exported-variables.yml").read_text()
    path = f"{standins(tmp_path / 'standins', make=ECS_MAKE)}:{os.environ['PATH']}"
    calls = tmp_path / "calls.log"
    with Forge(tmp_path / "forge", "x-access-token", "t0ken-ecs") as forge:
        repo = forge.repository("aws/amazon-ecs-agent")
        sha = repo.commit({"buildspec.yml": text, "GO_VERSION": "1.21.1\n",
                           "VERSION": "1.80.0\n",
                           "scripts/changelog/CHANGELOG_MASTER": "1.80.0-1\n",
                           "scripts/ecs-anywhere-install.sh": "#!/bin/sh\n"}, "Release 1.80.0")
        services.connection_save(name="github", provider="GitHub", base_url=forge.url,
                                 arns=[ECS_ARN], token="t0ken-ecs")
        source = {"name": "Source", "actionTypeId": {
            "category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection",
            "version": "1"}, "configuration": {
            "ConnectionArn": ECS_ARN, "FullRepositoryId": "aws/amazon-ecs-agent",
            "BranchName": "main", "OutputArtifactFormat": "CODEBUILD_CLONE_REF"},
            "outputArtifacts": [{"name": "Src"}]}
        build = {"name": "Build", "actionTypeId": {
            "category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {"ProjectName": "ecs-agent-merge-build",
                              "EnvironmentVariables": json.dumps([
                                  {"name": "PATH", "value": path},
                                  {"name": "STANDIN_CALLS", "value": str(calls)}])},
            "namespace": "BuildVariables",
            "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Release"}]}
        doc = {"name": "ecs-agent", "stages": [{"name": "Source", "actions": [source]},
                                               {"name": "Build", "actions": [build]}]}
        execution = driver.start(pipeline_save(document=doc).pipeline)
        driver.run()
    done = ActionExecution.objects.get(execution=execution, action_name="Build")
    log = logfile.text(Path(settings.LOG_ROOT) / done.log_path)
    assert (done.status, done.summary) == ("Succeeded", "Build succeeded (INSTALL, BUILD)"), log
    short = sha[:8]
    assert {k: v for k, v in done.output_variables.items() if k != "CODEBUILD_BUILD_ID"} == {
        "AGENT_VERSION": "1.80.0", "INIT_VERSION": "1.80.0-1", "GIT_COMMIT_SHORT_SHA": short,
        "ECS_AGENT_RPM": "amazon-ecs-init-1.80.0-1.x86_64.rpm"}
    assert done.output_variables["CODEBUILD_BUILD_ID"] == \
        f"ecs-agent-merge-build:{done.action_execution_id}"
    release = tmp_path / "release"
    store.extract(Artifact.objects.get(execution=execution, name="Release").storage_name,
                  release)
    tars = [f"ecs-agent-{n}.tar" for n in ("v1.80.0", "latest", short)]
    csi = [f"ebs-csi-driver-{n}.tar" for n in ("v1.80.0", "latest", short)]
    assert files_in(release) == sorted([
        *tars, *[f"{t}.md5" for t in tars], *[f"{t}.json" for t in tars],
        "amazon-ecs-init-1.80.0-1.x86_64.rpm", *csi, *[f"{c}.sha256" for c in csi],
        "scripts/ecs-anywhere-install.sh"])
    assert (release / f"ecs-agent-{short}.tar").read_text() == "agent image 1.80.0\n"
    assert (release / "ecs-agent-latest.tar.json").read_text() == \
        '{"agentVersion":"v1.80.0"}\n'
    assert calls.read_text().splitlines() == [
        "wget -O /tmp/go1.21.1.linux-amd64.tar.gz https://go.dev/dl/go1.21.1.linux-amd64.tar.gz",
        "tar -C /usr/local -xzf /tmp/go1.21.1.linux-amd64.tar.gz", "go version",
        "make release-agent", "make generic-rpm-integrated",
        "make -C ./ecs-agent/daemonimages/csidriver"]
    assert "/src/127.0.0.1/aws/amazon-ecs-agent: CodeBuild's folder for a clone" in log


# --- the ones refused before they start ----------------------------------------------

REFUSED = {
    "jetbrains-linux-tests-cache-reports-secondary-artifacts.yml": [
        'artifacts.base-directory: "/tmp/testArtifacts" is outside the source directory',
        'artifacts.secondary-artifacts.plugin.files[0]: "/tmp/buildArtifacts/*" is outside',
        'reports.unit-test.base-directory: "/tmp/testArtifacts/test-reports" is outside',
        'cache.paths[0]: "/home/codebuild-user/.gradle/wrapper/**/*" is outside'],
    "vscode-linux-e2e-run-as-runtime-versions-finally.yml": [
        "run-as: builds here run as the sandbox's one user",
        "phases.install.run-as: builds here run as the sandbox's one user"],
    "vscode-release-parameter-store-powershell.yml": [
        "phases.install.commands[0]: this is PowerShell",
        "phases.install.commands[1]: this is PowerShell",
        "phases.pre_build.commands[1]: this is PowerShell",
        "phases.build.commands[1]: this is PowerShell",
        "phases.build.commands[2]: this is PowerShell",
        "phases.build.commands[3]: this is PowerShell"],
}

RUNS = {
    "amplify-e2e-linux-shell-bash-junit-clover-reports.yml": amplify,
    "eks-anywhere-docker-test-secrets-manager-junit.yml": eks_anywhere,
    "sagemaker-pytorch-release-artifact-name-discard-paths.yml": sagemaker,
    "serverless-workshops-hugo-runtime-versions-finally.yml": hugo,
    "serverless-workshops-unicorn-api-version-0.1.yml": unicorn_0_1,
    "aft-global-customizations-on-failure-continue.yml": aft,
    "ecs-agent-merge-build-exported-variables.yml": ecs_agent,
}


def test_every_fixture_is_covered():
    assert {p.name for p in FIXTURES.glob("*.yml")} == set(REFUSED) | set(RUNS)


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", sorted(RUNS))
@pytest.mark.usefixtures("unsandboxed")  # written before the sandbox: see the fixture
def test_a_fixture_runs_given_the_tools_it_calls(fixture, tmp_path, request):
    check = RUNS[fixture]
    # Each check names the fixtures it needs after tmp_path (settings, driver).
    wanted = list(inspect.signature(check).parameters)[1:]
    check(tmp_path, *[request.getfixturevalue(name) for name in wanted])


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", sorted(REFUSED))
def test_a_fixture_is_refused_before_it_starts_naming_what_and_where(fixture, tmp_path):
    ctx, outcome = run_fixture(tmp_path, fixture, outputs=())
    assert isinstance(outcome, ActionFailed)
    assert outcome.summary.startswith("The buildspec (buildspec.yml) cannot run here: ")
    errors = [str(p) for p in buildspec_parse((FIXTURES / fixture).read_bytes())[1]
              if p.severity == "error"]
    assert len(errors) == len(REFUSED[fixture])
    for expected, found in zip(REFUSED[fixture], errors, strict=True):
        assert found.startswith(expected)
        assert found in outcome.summary
    assert "Entering phase" not in log_of(ctx)
    assert not (tmp_path / "calls.log").exists()
