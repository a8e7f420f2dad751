"""The migration report: for every action of an imported document, whether it runs here.

The real providers are registered (the report is about this installation's runners).
"""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from executions import services as executions
from executions.errors import ExecutionInvalid
from pipelines import services
from pipelines.models import Pipeline
from pipelines.providers import Readiness
from pipelines.report import migration_report
from tests.pipelines.conftest import FIXTURES, load_fixture

pytestmark = pytest.mark.django_db

BRAIN = "brain-tasks-pipeline-codestar-connection.json"
BRAIN_ARN = ("arn:aws:codeconnections:ap-south-1:954568385582:connection/"
             "98d74a5f-f46c-453b-8087-70a4fb8a43ca")


def check(name: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_pipeline", str(FIXTURES / name), "--check", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_check_names_the_missing_connection_and_how_to_make_it_and_saves_nothing():
    out, _ = check(BRAIN)
    lines = out.splitlines()
    assert lines[0] == ("stages[0].actions[0] Source/GitHubSource (Source "
                        "CodeStarSourceConnection): needs something first")
    assert lines[1] == f'    needs a connection answering to "{BRAIN_ARN}"'
    assert lines[2].startswith("    how: make one in the admin "
                               "(/admin/pipelines/connection/add/)")
    assert "manage.py import_connections" in lines[2]
    assert not Pipeline.objects.exists()


def test_once_the_connection_exists_check_says_the_source_runs_through_it():
    services.connection_save(name="brain", provider="GitHub", base_url="https://github.com",
                             arns=[BRAIN_ARN], token="t0ken-value")
    out, _ = check(BRAIN)
    assert out.splitlines()[:3] == [
        "stages[0].actions[0] Source/GitHubSource (Source CodeStarSourceConnection): "
        "runs here",
        "    runs as Source CodeStarSourceConnection: CodePipeline's connection source "
        "(GitHub, GitLab, Bitbucket, ...): the repository is cloned through the Conveyor "
        "connection answering to ConnectionArn.",
        '    note: through connection "brain": https://github.com/jeevanantham2205/'
        "Brain-Tasks-App",
    ]


def test_check_gives_the_nearest_way_for_aws_only_deploy_providers():
    out, _ = check("cicdtest-java-github-v1-cloudformation-changeset.json")
    assert ("stages[2].actions[0] Staging/DeleteStack (Deploy CloudFormation): cannot run "
            "here (AWS only)") in out
    assert "    nearest here: a Deploy Shell action running `aws cloudformation deploy" in out
    assert ("nearest here: GitHub version 1 (OAuthToken) is deprecated on AWS too: change "
            "the action to CodeStarSourceConnection") in out
    assert out.splitlines()[-1] == ('would create pipeline "CICD-TestJava": 4 actions cannot '
                                    "run here yet")


def test_check_of_a_refused_document_lists_its_errors_and_fails():
    out = io.StringIO()
    with pytest.raises(CommandError, match="would be refused, 2 problems"):
        call_command("import_pipeline", str(FIXTURES /
                     "awsdocs-trigger-filters-MyServicePipeline-partial.json"), "--check",
                     stdout=out, stderr=io.StringIO())
    assert "error: stages[0].actions[0].actionTypeId: is required" in out.getvalue()


def test_a_dry_run_answers_the_report_and_saves_nothing(api, owner):
    response = api(owner).post("/api/pipelines/?dryRun=true", load_fixture(BRAIN),
                               format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["valid"], body["wouldCreate"], body["canStart"]) == (True, True, False)
    source = body["actions"][0]
    assert (source["path"], source["status"], source["provider"]) == (
        "stages[0].actions[0]", "needs", "CodeStarSourceConnection")
    assert source["needs"][0]["need"] == f'a connection answering to "{BRAIN_ARN}"'
    assert "POST /api/connections/" in source["needs"][0]["how"]
    assert not Pipeline.objects.exists()


def test_a_dry_run_of_a_broken_document_is_400_with_errors_and_the_report(api, owner):
    doc = load_fixture(BRAIN)
    doc["pipeline"]["stages"][0]["actions"][0]["configuration"]["OutputArtifactFormat"] = "TAR"
    response = api(owner).post("/api/pipelines/?dryRun=true", doc, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{
        "path": "stages[0].actions[0].configuration.OutputArtifactFormat",
        "message": '"TAR" is not an output artifact format: use CODE_ZIP or '
                   "CODEBUILD_CLONE_REF", "severity": "error"}]
    assert response.json()["actions"][0]["actionName"] == "GitHubSource"


def test_a_start_is_refused_naming_the_missing_connection():
    doc = load_fixture(BRAIN)
    # Only the Source stage is this branch's; a Build Shell stands in for CodeBuild.
    doc["pipeline"]["stages"][1]["actions"][0]["actionTypeId"] = {
        "category": "Build", "owner": "Custom", "provider": "Shell", "version": "1"}
    doc["pipeline"]["stages"][1]["actions"][0]["configuration"] = {}
    doc["pipeline"]["stages"][1]["actions"][0]["commands"] = ["true"]
    pipeline = services.pipeline_save(document=doc).pipeline
    with pytest.raises(ExecutionInvalid) as refused:
        executions.execution_start(pipeline=pipeline)
    assert refused.value.problems == [(
        "stages[0].actions[0]",
        f'needs a connection answering to "{BRAIN_ARN}" (make one in the admin '
        "(/admin/pipelines/connection/add/), with POST /api/connections/ or with manage.py "
        f"import_connections, and list {BRAIN_ARN} among its ARNs)")]


def test_the_pipeline_page_lists_what_an_imported_pipeline_needs_before_it_starts(
        client, viewer):
    services.pipeline_save(document=load_fixture(BRAIN))
    client.force_login(viewer)
    body = client.get("/pipelines/brain-tasks-pipeline/").content.decode()
    assert "This pipeline cannot start yet" in body
    assert 'data-path="stages[0].actions[0]"' in body
    assert f"Needs a connection answering to &quot;{BRAIN_ARN}&quot;" in body
    assert "/admin/pipelines/connection/add/" in body
    services.connection_save(name="brain", provider="GitHub", base_url="https://github.com",
                             arns=[BRAIN_ARN], token="t0ken-value")
    body = client.get("/pipelines/brain-tasks-pipeline/").content.decode()
    assert "This pipeline cannot start yet" not in body
    # What is left are notes: the source runs through its connection, the build without
    # a project of its name.
    assert "How this pipeline runs here" in body
    assert 'data-path="stages[0].actions[0]" data-status="runs"' in body
    assert "Note: through connection &quot;brain&quot;" in body


def test_a_runner_can_add_notes_and_needs_to_the_report(monkeypatch):
    from pipelines import providers

    spec = providers.get("Build", "Shell")
    monkeypatch.setitem(providers._registry, ("Build", "Shell"), providers.ProviderSpec(
        "Build", "Shell", spec.check, spec.description,
        lambda action: [Readiness(note="build project X not found: runs buildspec.yml with "
                                  "defaults"), Readiness(need="a build project", how="admin")]))
    doc = {"name": "p", "stages": [
        {"name": "S", "actions": [{"name": "A", "actionTypeId": {
            "category": "Source", "owner": "AWS", "provider": "Git", "version": "1"},
            "configuration": {"RepositoryUrl": "/srv/r", "BranchName": "main"},
            "outputArtifacts": [{"name": "O"}]}]},
        {"name": "B", "actions": [{"name": "C", "actionTypeId": {
            "category": "Build", "owner": "Custom", "provider": "Shell", "version": "1"},
            "commands": ["true"], "inputArtifacts": [{"name": "O"}]}]}]}
    source, build = migration_report(doc)
    assert (source.status, source.needs, source.notes) == ("runs", [], [])
    assert build.status == "needs"
    assert build.notes == ["build project X not found: runs buildspec.yml with defaults"]
    assert [n.need for n in build.needs] == ["a build project"]


NO_PROJECT = ('no build project "brain-tasks-codebuild": runs buildspec.yml from the primary '
              "source with default settings (60 minutes, BUILD_GENERAL1_SMALL, no project "
              "variables, no cache); to change them, make the build project in the admin "
              "(/admin/pipelines/buildproject/add/), with POST /api/build-projects/ or with "
              "manage.py import_build_project")


def test_check_notes_a_codebuild_action_whose_project_does_not_exist_and_runs_with_defaults():
    out, _ = check(BRAIN)
    lines = out.splitlines()
    build = lines.index("stages[1].actions[0] Build/DockerBuild (Build CodeBuild): runs here")
    assert lines[build + 2] == f"    note: {NO_PROJECT}"
    services.build_project_save(document={
        "name": "brain-tasks-codebuild", "source": {"buildspec": "ci/buildspec.yml"},
        "environment": {"computeType": "BUILD_GENERAL1_MEDIUM"}, "timeoutInMinutes": 20,
        "network": "none"})
    lines = check(BRAIN)[0].splitlines()
    assert lines[build + 2] == ('    note: with build project "brain-tasks-codebuild": '
                                "ci/buildspec.yml, BUILD_GENERAL1_MEDIUM, 20 minutes, network "
                                "none")


def test_a_dry_run_notes_the_missing_build_project(api, owner):
    response = api(owner).post("/api/pipelines/?dryRun=true", load_fixture(BRAIN),
                               format="json")
    build = response.json()["actions"][1]
    assert (build["path"], build["status"], build["needs"]) == ("stages[1].actions[0]", "runs",
                                                               [])
    assert build["notes"] == [NO_PROJECT]


def test_the_pipeline_page_notes_the_missing_build_project_beside_what_blocks(client, viewer):
    services.pipeline_save(document=load_fixture(BRAIN))
    client.force_login(viewer)
    body = client.get("/pipelines/brain-tasks-pipeline/").content.decode()
    assert "This pipeline cannot start yet" in body
    assert 'data-path="stages[1].actions[0]" data-status="runs"' in body
    assert ("Note: no build project &quot;brain-tasks-codebuild&quot;: runs buildspec.yml from "
            "the primary source with default settings") in body
