"""The real CodePipeline documents (tests/fixtures/codepipeline) with this installation's runners.

Every definition imports; the migration report says, per action, what runs here;
the connection sources of the fixtures run once their connection exists. The
forge is a local stand-in (tests/runners/forge.py) serving a repository at the
fixture's FullRepositoryId; the fetch is real git over HTTP with a token.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings

from executions import artifacts as store
from executions import services as executions
from executions.errors import ExecutionInvalid
from executions.models import ActionExecution, Artifact
from pipelines import services
from pipelines.report import migration_report
from runners import logfile
from runners.connection_sources import CodeStarSourceConnectionRunner
from tests.pipelines.conftest import load_fixture
from tests.pipelines.test_roundtrip import FIXTURE_DEFINITIONS
from tests.runners.conftest import log_text, make_ctx
from tests.runners.forge import Forge

pytestmark = pytest.mark.django_db

TOKEN = "ghp_fixtureT0kenValue"
# What brain-tasks' build might run (its repository is not part of the fixture); the
# Docker daemon is out of reach here, so the "image" is a file naming itself.
BRAIN_BUILDSPEC = """\
version: 0.2
phases:
  pre_build:
    commands:
      - IMAGE=brain-tasks-app:$(echo $CODEBUILD_RESOLVED_SOURCE_VERSION | cut -c 1-7)
  build:
    commands:
      - echo "image $IMAGE from $(ls src/*.js package.json | wc -l) files"
  post_build:
    commands:
      - printf '[{"name":"brain-tasks-app","imageUri":"%s"}]' $IMAGE > imagedefinitions.json
artifacts:
  files: [imagedefinitions.json]
"""

# Per fixture, each action's status in the migration report.
STATUSES = {
    "awscli-create-pipeline-input-MySecondPipeline.json": ["cannot run", "cannot run"],
    "awscli-get-pipeline-MyFirstPipeline.json": ["cannot run", "cannot run"],
    "brain-tasks-pipeline-codestar-connection.json": ["needs", "runs"],
    "cicdtest-java-github-v1-cloudformation-changeset.json": [
        "cannot run", "runs", "cannot run", "cannot run", "cannot run"],
    "moto-create-pipeline-response-s3-source-manual-approval.json": ["cannot run", "runs"],
    "moto-update-pipeline-request-minimal-fields.json": ["cannot run", "runs"],
    "secureops-pipeline-ecs-deploy.json": ["needs", "runs", "cannot run"],
    "tic-tac-toe-pipeline-github-v1-ecs.json": ["cannot run", "runs", "cannot run"],
}
CONNECTION_FIXTURES = ["brain-tasks-pipeline-codestar-connection.json",
                       "secureops-pipeline-ecs-deploy.json"]


def pipeline_of(fixture: str) -> dict:
    raw = load_fixture(fixture)
    return raw.get("pipeline", raw)


@pytest.mark.parametrize("fixture", FIXTURE_DEFINITIONS)
def test_every_definition_imports_and_the_report_says_what_runs_here(fixture):
    result = services.pipeline_save(document=load_fixture(fixture))
    assert result.created
    reports = migration_report(result.pipeline.document)
    assert [r.status for r in reports] == STATUSES[fixture]
    for report in reports:
        if report.status == "cannot run":
            assert report.nearest, f"{report.provider} has no nearest way"


@pytest.fixture
def forge(tmp_path):
    with Forge(tmp_path / "forge", "x-access-token", TOKEN) as running:
        yield running


@pytest.mark.parametrize("fixture", CONNECTION_FIXTURES)
def test_the_connection_source_of_a_fixture_runs_once_its_connection_exists(
        fixture, forge, tmp_path):
    source = pipeline_of(fixture)["stages"][0]["actions"][0]
    config = source["configuration"]
    repo = forge.repository(config["FullRepositoryId"])
    sha = repo.commit({"buildspec.yml": "version: 0.2\n"}, "Add the buildspec")
    assert migration_report(pipeline_of(fixture))[0].status == "needs"
    services.connection_save(name="github", provider="GitHub", base_url=forge.url,
                             arns=[config["ConnectionArn"]], token=TOKEN)
    assert migration_report(pipeline_of(fixture))[0].status == "runs"
    ctx = make_ctx(tmp_path, source)
    result = CodeStarSourceConnectionRunner().run(ctx)
    assert result.output_variables["CommitId"] == sha
    assert result.output_variables["FullRepositoryName"] == config["FullRepositoryId"]
    assert result.output_variables["ConnectionArn"] == config["ConnectionArn"]
    output = next(iter(ctx.output_dirs.values()))
    assert (output / "buildspec.yml").exists()
    assert TOKEN not in log_text(ctx)


@pytest.mark.parametrize("fixture", CONNECTION_FIXTURES)
def test_with_its_connection_a_fixture_starts_unless_an_aws_only_action_keeps_it_back(
        fixture, forge, driver, tmp_path):
    """secureops' ECS deploy is AWS-only, so its start is refused for it alone;
    brain-tasks (source and CodeBuild) runs end to end as it is written: its source
    through the stand-in forge, its CodeBuild action (no build project of its name) with
    the repository's buildspec.yml, its output artifact stored."""
    source = pipeline_of(fixture)["stages"][0]["actions"][0]
    repo = forge.repository(source["configuration"]["FullRepositoryId"])
    sha = repo.commit({"buildspec.yml": BRAIN_BUILDSPEC, "package.json": "{}\n",
                       "src/App.js": "export default 1;\n"}, "Add the buildspec")
    pipeline = services.pipeline_save(document=load_fixture(fixture)).pipeline
    services.connection_save(name="github", provider="GitHub", base_url=forge.url,
                             arns=[source["configuration"]["ConnectionArn"]], token=TOKEN)
    blocking = [r.path for r in migration_report(pipeline.document) if r.blocking]
    assert not any(path.startswith("stages[0]") for path in blocking)
    if blocking:
        with pytest.raises(ExecutionInvalid) as refused:
            executions.execution_start(pipeline=pipeline)
        assert sorted({path.rsplit(".actionTypeId", 1)[0]
                       for path, _ in refused.value.problems}) == sorted(blocking)
        return
    execution = driver.start(pipeline)
    driver.run()
    run = ActionExecution.objects.get(execution=execution, action_name=source["name"])
    assert (run.status, run.output_variables["CommitId"]) == ("Succeeded", sha)
    build = ActionExecution.objects.get(execution=execution, action_name="DockerBuild")
    log = logfile.text(Path(settings.LOG_ROOT) / build.log_path)
    assert (build.status, build.summary) == ("Succeeded", "Build succeeded (PRE_BUILD, BUILD, "
                                                          "POST_BUILD)"), log
    assert 'No build project is named "brain-tasks-codebuild": running buildspec.yml' in log
    assert f"image brain-tasks-app:{sha[:7]} from 2 files" in log
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    target = tmp_path / "BuildOutput"
    store.extract(Artifact.objects.get(execution=execution, name="BuildOutput").storage_name,
                  target)
    assert json.loads((target / "imagedefinitions.json").read_text()) == [
        {"name": "brain-tasks-app", "imageUri": f"brain-tasks-app:{sha[:7]}"}]
