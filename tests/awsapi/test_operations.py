"""CodePipeline's definition operations, driven through real boto3 against a live server."""

import json
from pathlib import Path

import pytest

from pipelines import providers
from pipelines.models import Pipeline

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codepipeline"


def test_create_pipeline_answers_the_stored_definition_with_version_1(aws, owner,
                                                                        aws_definition):
    client = aws(owner)
    answer = client.create_pipeline(pipeline=aws_definition("demo"))
    pipeline = answer["pipeline"]
    assert pipeline["name"] == "demo"
    assert pipeline["version"] == 1
    assert pipeline["roleArn"] == "arn:aws:iam::123456789012:role/conveyor"
    assert [s["name"] for s in pipeline["stages"]] == ["Source", "Build"]
    assert pipeline["stages"][1]["actions"][0]["actionTypeId"] == {
        "category": "Build", "owner": "Custom", "provider": "Shell", "version": "1"}
    stored = Pipeline.objects.get(name="demo")
    assert stored.version == 1
    assert stored.versions.get().created_by == owner


def test_get_pipeline_gives_the_document_and_metadata_with_epoch_timestamps(
        aws, owner, aws_definition, live_server):
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("demo"))
    answer = client.get_pipeline(name="demo")
    assert answer["pipeline"]["version"] == 1
    meta = answer["metadata"]
    assert meta["pipelineArn"] == "arn:aws:codepipeline:us-east-1:000000000000:demo"
    stored = Pipeline.objects.get(name="demo")
    # botocore parses the epoch numbers into aware datetimes.
    assert abs((meta["created"] - stored.created_at).total_seconds()) < 0.01
    assert meta["updated"] >= meta["created"]


def test_update_pipeline_makes_a_new_version_and_earlier_versions_stay_readable(
        aws, owner, aws_definition):
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("demo"))
    changed = aws_definition("demo", variables=[{"name": "Target", "defaultValue": "staging"}])
    changed["stages"][1]["actions"][0]["commands"] = ["make", "make test"]
    answer = client.update_pipeline(pipeline=changed)
    assert answer["pipeline"]["version"] == 2
    assert answer["pipeline"]["stages"][1]["actions"][0]["commands"] == ["make", "make test"]

    current = client.get_pipeline(name="demo")["pipeline"]
    assert current["version"] == 2
    assert current["variables"] == [{"name": "Target", "defaultValue": "staging"}]
    earlier = client.get_pipeline(name="demo", version=1)["pipeline"]
    assert earlier["version"] == 1
    assert earlier["variables"] == []
    assert earlier["stages"][1]["actions"][0]["commands"] == ["true"]


def test_an_unchanged_update_keeps_the_version(aws, owner, aws_definition):
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("demo"))
    assert client.update_pipeline(pipeline=aws_definition("demo"))["pipeline"]["version"] == 1


def test_list_pipelines_pages_by_name_with_next_token(aws, owner, aws_definition):
    client = aws(owner)
    names = ["delta", "alpha", "echo", "charlie", "bravo"]
    for name in names:
        client.create_pipeline(pipeline=aws_definition(name))
    client.update_pipeline(pipeline=aws_definition("charlie", executionMode="QUEUED"))

    first = client.list_pipelines(maxResults=2)
    assert [p["name"] for p in first["pipelines"]] == ["alpha", "bravo"]
    second = client.list_pipelines(maxResults=2, nextToken=first["nextToken"])
    assert [p["name"] for p in second["pipelines"]] == ["charlie", "delta"]
    charlie = second["pipelines"][0]
    assert charlie["version"] == 2 and charlie["executionMode"] == "QUEUED"
    assert charlie["updated"] >= charlie["created"]
    third = client.list_pipelines(maxResults=2, nextToken=second["nextToken"])
    assert [p["name"] for p in third["pipelines"]] == ["echo"]
    assert "nextToken" not in third

    everything = client.get_paginator("list_pipelines").paginate(
        PaginationConfig={"PageSize": 3})
    assert [p["name"] for page in everything for p in page["pipelines"]] == sorted(names)


def test_list_pipelines_answers_every_member_of_aws_pipeline_summary(aws, owner,
                                                                     aws_definition):
    # The answer is also checked member by member against botocore's model
    # (ListPipelines is in conftest.CHECKED_OPERATIONS): types, enums, epoch numbers.
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("untyped"))
    client.create_pipeline(pipeline=aws_definition("typed", pipelineType="V1",
                                                   executionMode="PARALLEL"))
    summaries = {p["name"]: p for p in client.list_pipelines()["pipelines"]}
    members = set(client.meta.service_model.shape_for("PipelineSummary").members)
    assert members == {"name", "version", "pipelineType", "executionMode", "created",
                       "updated"}
    assert {name: set(s) for name, s in summaries.items()} == {
        "typed": members, "untyped": members}
    # A document that names no type is answered as V2: every pipeline behaves as one.
    assert summaries["untyped"]["pipelineType"] == "V2"
    assert summaries["untyped"]["executionMode"] == "SUPERSEDED"
    assert summaries["typed"]["pipelineType"] == "V1"
    assert summaries["typed"]["executionMode"] == "PARALLEL"


def test_get_create_and_update_pipeline_always_answer_the_type_and_execution_mode(
        aws, owner, aws_definition):
    client = aws(owner)
    created = client.create_pipeline(pipeline=aws_definition("demo"))["pipeline"]
    assert (created["pipelineType"], created["executionMode"]) == ("V2", "SUPERSEDED")
    # Stored as sent: the type is answered, not written into the definition.
    assert "pipelineType" not in Pipeline.objects.get(name="demo").document
    updated = client.update_pipeline(
        pipeline=aws_definition("demo", pipelineType="V1", executionMode="QUEUED"))["pipeline"]
    assert (updated["pipelineType"], updated["executionMode"]) == ("V1", "QUEUED")
    current = client.get_pipeline(name="demo")["pipeline"]
    assert (current["pipelineType"], current["executionMode"]) == ("V1", "QUEUED")
    earlier = client.get_pipeline(name="demo", version=1)["pipeline"]
    assert (earlier["pipelineType"], earlier["executionMode"]) == ("V2", "SUPERSEDED")


def test_a_next_token_that_was_not_given_out_is_refused(aws, owner):
    client = aws(owner)
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_pipelines(nextToken="alpha")


def test_list_action_types_lists_the_providers_that_can_run_here(aws, viewer,
                                                                 runnable_providers):
    client = aws(viewer)
    types = client.list_action_types()["actionTypes"]
    ids = [(t["id"]["category"], t["id"]["provider"]) for t in types]
    assert ids == [(s.category, s.provider) for s in providers.all_specs()]
    assert ("Source", "Git") in ids and ("Build", "Shell") in ids
    assert ("Build", "Jenkins") not in ids  # AWS-only providers are not offered
    git = types[ids.index(("Source", "Git"))]
    assert git["id"] == {"category": "Source", "owner": "Custom", "provider": "Git",
                         "version": "1"}
    assert git["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 0}
    assert git["outputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 1}
    assert client.list_action_types(actionOwnerFilter="AWS")["actionTypes"] == []
    assert len(client.list_action_types(actionOwnerFilter="Custom")["actionTypes"]) == len(ids)


def test_list_rule_types_lists_the_rules_evaluated_here(aws, viewer):
    types = aws(viewer).list_rule_types()["ruleTypes"]
    assert [t["id"]["provider"] for t in types] == [
        "Commands", "DeploymentWindow", "Metrics", "VariableCheck", "Webhook"]
    assert {t["id"]["owner"] for t in types} == {"AWS"}
    window = types[1]
    assert [(p["name"], p["required"]) for p in window["ruleConfigurationProperties"]] == [
        ("Cron", True), ("TimeZone", False)]
    assert types[0]["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 10}


def test_delete_pipeline_removes_it(aws, owner, aws_definition):
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("demo"))
    client.delete_pipeline(name="demo")
    assert not Pipeline.objects.filter(name="demo").exists()
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.get_pipeline(name="demo")
    # As on AWS, deleting what is not there is not an error.
    client.delete_pipeline(name="demo")


def test_a_document_exported_from_aws_imports_as_it_is(aws, owner):
    path = FIXTURES / "awscli-get-pipeline-MyFirstPipeline.json"
    if not path.exists():
        pytest.skip(f"fixtures not found at {FIXTURES}")
    document = json.loads(path.read_text())["pipeline"]
    client = aws(owner)
    client.create_pipeline(pipeline=document)
    stored = client.get_pipeline(name="MyFirstPipeline")["pipeline"]
    assert stored["artifactStore"] == document["artifactStore"]
    assert stored["roleArn"] == document["roleArn"]
    assert stored["stages"][1]["actions"][0]["actionTypeId"]["provider"] == "CodeDeploy"


# --- errors, each as botocore's exception class ------------------------------

def test_getting_a_missing_pipeline_raises_pipeline_not_found(aws, viewer):
    client = aws(viewer)
    with pytest.raises(client.exceptions.PipelineNotFoundException) as caught:
        client.get_pipeline(name="nope")
    assert "nope" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_getting_a_version_that_does_not_exist_raises_version_not_found(aws, owner,
                                                                        aws_definition):
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("demo"))
    with pytest.raises(client.exceptions.PipelineVersionNotFoundException):
        client.get_pipeline(name="demo", version=2)


def test_creating_a_pipeline_with_a_name_in_use_raises_name_in_use(aws, owner, aws_definition):
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("demo"))
    with pytest.raises(client.exceptions.PipelineNameInUseException):
        client.create_pipeline(pipeline=aws_definition("demo"))
    assert Pipeline.objects.get(name="demo").version == 1


def test_an_invalid_definition_raises_invalid_structure_with_every_problem_and_its_path(
        aws, owner, aws_definition):
    client = aws(owner)
    document = aws_definition("demo")
    document["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "Nowhere"}]
    document["stages"][1]["actions"].append(
        {"name": "Compile", "actionTypeId": document["stages"][1]["actions"][0]["actionTypeId"],
         "commands": ["true"]})
    with pytest.raises(client.exceptions.InvalidStructureException) as caught:
        client.create_pipeline(pipeline=document)
    message = caught.value.response["Error"]["Message"]
    assert "2 problems" in message
    assert ('stages[1].actions[0].inputArtifacts[0]: artifact "Nowhere" is not produced '
            "by any earlier action") in message
    assert 'stages[1].actions[1].name: action name "Compile" is used twice' in message
    assert not Pipeline.objects.exists()


def test_updating_a_missing_pipeline_raises_pipeline_not_found(aws, owner, aws_definition):
    client = aws(owner)
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.update_pipeline(pipeline=aws_definition("ghost"))
    assert not Pipeline.objects.exists()


def test_an_invalid_update_changes_nothing(aws, owner, aws_definition):
    client = aws(owner)
    client.create_pipeline(pipeline=aws_definition("demo"))
    broken = aws_definition("demo")
    broken["stages"] = broken["stages"][:1]
    with pytest.raises(client.exceptions.InvalidStructureException) as caught:
        client.update_pipeline(pipeline=broken)
    assert "stages: a pipeline needs at least 2 stages" in caught.value.response["Error"][
        "Message"]
    assert client.get_pipeline(name="demo")["pipeline"]["version"] == 1


# --- permissions, as in the REST API -------------------------------------------

def test_a_user_without_add_pipeline_cannot_create_one(aws, operator, aws_definition):
    client = aws(operator)
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.create_pipeline(pipeline=aws_definition("demo"))
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "codepipeline:CreatePipeline" in error["Message"]
    assert not Pipeline.objects.exists()


def test_a_viewer_can_read_but_not_change_or_delete(aws, owner, viewer, aws_definition):
    aws(owner).create_pipeline(pipeline=aws_definition("demo"))
    client = aws(viewer)
    assert client.get_pipeline(name="demo")["pipeline"]["name"] == "demo"
    assert [p["name"] for p in client.list_pipelines()["pipelines"]] == ["demo"]
    for call in (lambda: client.update_pipeline(pipeline=aws_definition("demo", variables=[
                     {"name": "x", "defaultValue": "1"}])),
                 lambda: client.delete_pipeline(name="demo")):
        with pytest.raises(client.exceptions.ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert Pipeline.objects.get(name="demo").version == 1


def test_an_outsider_sees_nothing(aws, owner, outsider, aws_definition):
    aws(owner).create_pipeline(pipeline=aws_definition("demo"))
    client = aws(outsider)
    for call in (client.list_pipelines, lambda: client.get_pipeline(name="demo"),
                 client.list_action_types):
        with pytest.raises(client.exceptions.ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
