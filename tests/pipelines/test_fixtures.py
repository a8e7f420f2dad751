"""Real CodePipeline documents (tests/fixtures/codepipeline) import as they are."""

import pytest

from pipelines import services
from pipelines.models import Pipeline
from tests.pipelines.conftest import FIXTURES, load_fixture
from tests.pipelines.test_roundtrip import FIXTURE_DEFINITIONS

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("known_providers")]


def aws_only(path, provider):
    return (path, f'provider "{provider}" exists only on AWS: this action cannot run in Conveyor')


WARNINGS = {
    "awscli-create-pipeline-input-MySecondPipeline.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "S3"),
        aws_only("stages[1].actions[0].actionTypeId.provider", "CodeDeploy")],
    "awscli-get-pipeline-MyFirstPipeline.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "S3"),
        aws_only("stages[1].actions[0].actionTypeId.provider", "CodeDeploy")],
    "brain-tasks-pipeline-codestar-connection.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "CodeStarSourceConnection")],
    "cicdtest-java-github-v1-cloudformation-changeset.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "GitHub"),
        aws_only("stages[2].actions[0].actionTypeId.provider", "CloudFormation"),
        aws_only("stages[2].actions[1].actionTypeId.provider", "CloudFormation"),
        aws_only("stages[2].actions[2].actionTypeId.provider", "CloudFormation")],
    "moto-create-pipeline-response-s3-source-manual-approval.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "S3")],
    "moto-update-pipeline-request-minimal-fields.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "S3")],
    "secureops-pipeline-ecs-deploy.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "CodeStarSourceConnection"),
        aws_only("stages[2].actions[0].actionTypeId.provider", "ECS")],
    "tic-tac-toe-pipeline-github-v1-ecs.json": [
        aws_only("stages[0].actions[0].actionTypeId.provider", "GitHub"),
        aws_only("stages[2].actions[0].actionTypeId.provider", "ECS")],
}


def test_the_fixture_folder_holds_the_documents_these_tests_name():
    present = {p.name for p in FIXTURES.glob("*.json")}
    assert set(FIXTURE_DEFINITIONS) <= present
    assert set(WARNINGS) == set(FIXTURE_DEFINITIONS)


@pytest.mark.parametrize("fixture", FIXTURE_DEFINITIONS)
def test_a_codepipeline_definition_imports_as_it_is(fixture):
    raw = load_fixture(fixture)
    result = services.pipeline_save(document=raw)
    assert result.created
    assert [(w.path, w.message) for w in result.warnings] == WARNINGS[fixture]
    source = raw.get("pipeline", raw)
    pipeline = result.pipeline
    assert pipeline.name == source["name"]
    assert pipeline.version == 1  # AWS's "version" is not Conveyor's counter
    assert pipeline.document["roleArn"] == source["roleArn"]
    assert pipeline.document["artifactStore"] == source["artifactStore"]
    assert [s.name for s in pipeline.stages.all()] == [s["name"] for s in source["stages"]]
    for stage_doc, stage in zip(source["stages"], pipeline.stages.all(), strict=True):
        assert [a.get("configuration", {}) for a in stage_doc["actions"]] == [
            a.configuration for a in stage.actions.all()]


def test_the_get_pipeline_wrapper_metadata_is_kept_with_the_version():
    raw = load_fixture("awscli-get-pipeline-MyFirstPipeline.json")
    raw["metadata"] = {"pipelineArn": "arn:aws:codepipeline:us-east-1:111111111111:MyFirst"}
    pipeline = services.pipeline_save(document=raw).pipeline
    assert pipeline.current_version.imported_metadata == {"metadata": raw["metadata"]}


def test_the_minimal_update_request_updates_the_create_response_to_version_2():
    created = services.pipeline_save(
        document=load_fixture("moto-create-pipeline-response-s3-source-manual-approval.json"))
    updated = services.pipeline_save(
        document=load_fixture("moto-update-pipeline-request-minimal-fields.json"))
    assert (created.pipeline.pk, updated.changed) == (updated.pipeline.pk, True)
    pipeline = Pipeline.objects.get()
    assert pipeline.version == 2
    assert pipeline.document["stages"][0]["actions"][0]["configuration"]["S3Bucket"] == (
        "different-bucket")


def test_the_partial_trigger_filter_example_is_refused_with_its_problems():
    raw = load_fixture("awsdocs-trigger-filters-MyServicePipeline-partial.json")
    with pytest.raises(services.DefinitionInvalid) as refused:
        services.pipeline_save(document=raw)
    assert [(p.path, p.message) for p in refused.value.problems] == [
        ("stages", "a pipeline needs at least 2 stages, this one has 1"),
        ("stages[0].actions[0].actionTypeId", "is required"),
    ]
    assert not Pipeline.objects.exists()


@pytest.mark.parametrize("fixture", ["get-pipeline-execution.json", "get-pipeline-state.json",
                                     "list-action-executions.json",
                                     "list-pipeline-executions.json"])
def test_an_api_answer_that_is_not_a_definition_is_refused(fixture):
    with pytest.raises(services.DefinitionInvalid) as refused:
        services.pipeline_save(document=load_fixture(fixture))
    assert [(p.path, p.message) for p in refused.value.problems] == [
        ("name", "is required"), ("stages", "is required")]


def test_without_a_manual_provider_the_approval_fixture_is_refused(no_providers):
    raw = load_fixture("moto-create-pipeline-response-s3-source-manual-approval.json")
    with pytest.raises(services.DefinitionInvalid) as refused:
        services.pipeline_save(document=raw)
    assert [str(p) for p in refused.value.problems if p.severity == "error"] == [
        'stages[1].actions[0].actionTypeId.provider: "Manual" is not a provider of category '
        "Approval: no provider of this category is installed"]
