"""The pipelines REST API: shapes, versions, YAML bodies, errors and permissions."""

import copy

import pytest
import yaml
from django.contrib.auth.models import Group

from pipelines.models import Pipeline, Stage
from tests.factories import action, definition
from tests.pipelines.conftest import load_fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("known_providers")]

LIST = "/api/pipelines/"


def detail(name="demo"):
    return f"/api/pipelines/{name}/"


def create(client, doc=None, **kwargs):
    return client.post(LIST, doc if doc is not None else definition(), format="json", **kwargs)


# --- create and read ---------------------------------------------------------


def test_creating_a_pipeline_answers_201_with_the_definition_and_version_1(api, owner):
    response = create(api(owner))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["pipeline"]["name"] == "demo"
    assert body["pipeline"]["version"] == 1
    assert body["pipeline"]["executionMode"] == "SUPERSEDED"
    assert [s["name"] for s in body["pipeline"]["stages"]] == ["Source", "Build"]
    assert set(body["metadata"]) == {"created", "updated", "group"}
    assert body["metadata"]["group"] == "default"
    assert body["warnings"] == []


def test_get_answers_in_get_pipeline_shape_with_camel_case_fields(api, owner):
    create(api(owner), definition(stages=[
        ("Source", [action("Checkout", "Source", "Git", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", runOrder=2, inputArtifacts=[{"name": "Src"}],
                          timeoutInMinutes=30, namespace="Compile")]),
    ]))
    body = api(owner).get(detail()).json()
    assert set(body) == {"pipeline", "metadata"}
    compile_action = body["pipeline"]["stages"][1]["actions"][0]
    assert compile_action["actionTypeId"] == {
        "category": "Build", "owner": "Custom", "provider": "Shell", "version": "1"}
    assert compile_action["runOrder"] == 2
    assert compile_action["inputArtifacts"] == [{"name": "Src"}]
    assert compile_action["outputArtifacts"] == []
    assert compile_action["timeoutInMinutes"] == 30
    assert compile_action["namespace"] == "Compile"


def test_a_yaml_body_creates_the_same_pipeline_as_json(api, owner):
    text = yaml.safe_dump(definition(name="from-yaml"))
    response = api(owner).post(LIST, text, content_type="application/yaml")
    assert response.status_code == 201, response.json()
    json_doc = create(api(owner), definition(name="from-json")).json()["pipeline"]
    yaml_doc = response.json()["pipeline"]
    assert {**yaml_doc, "name": "x"} == {**json_doc, "name": "x"}


@pytest.mark.parametrize("media_type", ["text/yaml", "application/x-yaml"])
def test_yaml_is_accepted_under_its_other_media_types(api, owner, media_type):
    response = api(owner).post(LIST, yaml.safe_dump(definition()), content_type=media_type)
    assert response.status_code == 201


def test_a_broken_yaml_body_answers_400_with_the_line(api, owner):
    response = api(owner).post(LIST, "name: [demo", content_type="application/yaml")
    assert response.status_code == 400
    assert "line 1" in response.json()["detail"]


def test_a_get_pipeline_answer_is_accepted_as_it_is(api, owner):
    wrapped = {"pipeline": definition(roleArn="arn:aws:iam::1:role/x"),
               "metadata": {"pipelineArn": "arn:aws:codepipeline:x"}}
    response = create(api(owner), wrapped)
    assert response.status_code == 201
    assert response.json()["pipeline"]["roleArn"] == "arn:aws:iam::1:role/x"


def test_an_aws_only_provider_is_saved_with_a_warning(api, owner):
    response = create(api(owner), load_fixture("awscli-get-pipeline-MyFirstPipeline.json"))
    assert response.status_code == 201
    assert response.json()["warnings"] == [
        {"path": "stages[0].actions[0].actionTypeId.provider",
         "message": 'provider "S3" exists only on AWS: this action cannot run in Conveyor',
         "severity": "warning"},
        {"path": "stages[1].actions[0].actionTypeId.provider",
         "message": 'provider "CodeDeploy" exists only on AWS: this action cannot run in Conveyor',
         "severity": "warning"},
    ]


def test_an_invalid_definition_answers_400_with_every_problem_and_its_path(api, owner):
    doc = definition()
    doc["stages"][1]["actions"][0]["inputArtifacts"] = [{"name": "BuildOutput"}]
    doc["stages"][1]["actions"][0]["runOrder"] = 1000
    response = create(api(owner), doc)
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The definition has 2 problems.",
        "errors": [
            {"path": "stages[1].actions[0].runOrder",
             "message": "must be between 1 and 999, not 1000", "severity": "error"},
            {"path": "stages[1].actions[0].inputArtifacts[0]",
             "message": 'artifact "BuildOutput" is not produced by any earlier action',
             "severity": "error"},
        ],
        "warnings": [],
    }
    assert not Pipeline.objects.exists()


def test_a_refused_definition_also_lists_its_warnings(api, owner):
    doc = load_fixture("awscli-get-pipeline-MyFirstPipeline.json")
    doc["pipeline"]["stages"] = doc["pipeline"]["stages"][:1]
    body = create(api(owner), doc).json()
    assert [e["message"] for e in body["errors"]] == [
        "a pipeline needs at least 2 stages, this one has 1"]
    assert [w["path"] for w in body["warnings"]] == ["stages[0].actions[0].actionTypeId.provider"]


def test_a_body_that_is_not_an_object_is_refused(api, owner):
    response = api(owner).post(LIST, "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"path": "", "message": "the definition must be an object, not a list",
         "severity": "error"}]


def test_creating_an_existing_name_is_refused(api, owner):
    create(api(owner))
    response = create(api(owner))
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "path": "name", "message": 'a pipeline named "demo" already exists', "severity": "error"}


# --- list --------------------------------------------------------------------


def test_the_list_is_most_recently_changed_first_and_paginated(api, owner):
    client = api(owner)
    for name in ("alpha", "beta", "gamma"):
        create(client, definition(name=name))
    changed = definition(name="alpha", executionMode="QUEUED")
    assert client.put(detail("alpha"), changed, format="json").status_code == 200
    body = client.get(LIST).json()
    assert body["count"] == 3
    assert [p["name"] for p in body["results"]] == ["alpha", "gamma", "beta"]
    assert body["results"][0] == {
        "name": "alpha", "version": 2, "executionMode": "QUEUED", "stageCount": 2,
        "created": body["results"][0]["created"], "updated": body["results"][0]["updated"],
        "group": "default"}
    page = client.get(LIST, {"limit": 1, "offset": 1}).json()
    assert [p["name"] for p in page["results"]] == ["gamma"]
    assert page["next"] and page["previous"] is not None


def test_the_list_sorts_by_name_on_request(api, owner):
    for name in ("beta", "alpha"):
        create(api(owner), definition(name=name))
    body = api(owner).get(LIST, {"ordering": "name"}).json()
    assert [p["name"] for p in body["results"]] == ["alpha", "beta"]


def test_the_list_filters_by_name_and_execution_mode(api, owner):
    create(api(owner), definition(name="web-app"))
    create(api(owner), definition(name="web-api", executionMode="PARALLEL"))
    create(api(owner), definition(name="batch", executionMode="PARALLEL"))
    client = api(owner)
    assert [p["name"] for p in client.get(LIST, {"name": "batch"}).json()["results"]] == [
        "batch"]
    by_part = client.get(LIST, {"nameContains": "WEB", "ordering": "name"}).json()["results"]
    assert [p["name"] for p in by_part] == ["web-api", "web-app"]
    parallel = client.get(LIST, {"executionMode": "PARALLEL", "ordering": "name"}).json()
    assert [p["name"] for p in parallel["results"]] == ["batch", "web-api"]


def test_an_unknown_execution_mode_filter_answers_400_in_the_error_body(api, owner):
    response = api(owner).get(LIST, {"executionMode": "SOMETIMES"})
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["path"] == "executionMode"
    assert "SOMETIMES" in body["errors"][0]["message"]


# --- replace, versions, delete ---------------------------------------------------


def test_put_with_the_same_document_keeps_the_version(api, owner):
    create(api(owner))
    exported = api(owner).get(detail()).json()
    response = api(owner).put(detail(), exported, format="json")
    assert response.status_code == 200
    assert response.json()["pipeline"]["version"] == 1
    assert Pipeline.objects.get().versions.count() == 1


def test_put_with_a_change_makes_a_new_version_and_keeps_the_old_one_readable(api, owner):
    client = api(owner)
    create(client)
    changed = definition()
    changed["stages"][1]["actions"][0]["commands"] = ["make"]
    response = client.put(detail(), changed, format="json")
    assert response.json()["pipeline"]["version"] == 2
    assert client.get(detail()).json()["pipeline"]["stages"][1]["actions"][0]["commands"] == [
        "make"]
    first = client.get(detail(), {"version": 1}).json()["pipeline"]
    assert first["version"] == 1
    assert first["stages"][1]["actions"][0]["commands"] == ["true"]
    assert client.get(f"{detail()}versions/1/").json()["pipeline"] == first
    versions = client.get(f"{detail()}versions/").json()
    assert versions["count"] == 2
    assert [(v["version"], v["createdBy"]) for v in versions["results"]] == [
        (2, "olivia"), (1, "olivia")]


def test_an_unknown_version_answers_404_and_a_bad_number_400(api, owner):
    create(api(owner))
    assert api(owner).get(detail(), {"version": 9}).status_code == 404
    assert api(owner).get(f"{detail()}versions/9/").status_code == 404
    response = api(owner).get(detail(), {"version": "latest"})
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "version", "message": "must be a whole number"}]


def test_put_in_yaml_is_accepted(api, owner):
    create(api(owner))
    changed = definition(executionMode="QUEUED")
    response = api(owner).put(detail(), yaml.safe_dump(changed), content_type="application/yaml")
    assert response.status_code == 200
    assert response.json()["pipeline"]["executionMode"] == "QUEUED"


def test_put_cannot_rename_a_pipeline(api, owner):
    create(api(owner))
    response = api(owner).put(detail(), definition(name="other"), format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == (
        '"other" does not match the pipeline being changed, "demo"; renaming is not supported')


def test_put_on_a_missing_pipeline_answers_404(api, owner):
    response = api(owner).put(detail("ghost"), definition(name="ghost"), format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": 'No pipeline is named "ghost".'}


def test_a_save_keeps_the_transition_state_of_each_stage(api, owner):
    create(api(owner))
    Stage.objects.filter(name="Build").update(transition_enabled=False,
                                              transition_disabled_reason="freeze")
    changed = definition()
    changed["stages"][1]["actions"].append(action("Lint", commands=["ruff"]))
    assert api(owner).put(detail(), changed, format="json").json()["pipeline"]["version"] == 2
    build = Stage.objects.get(name="Build")
    assert (build.transition_enabled, build.transition_disabled_reason) == (False, "freeze")
    assert [a.name for a in build.actions.all()] == ["Compile", "Lint"]


def test_delete_answers_204_and_the_pipeline_is_gone(api, owner):
    create(api(owner))
    assert api(owner).delete(detail()).status_code == 204
    assert api(owner).get(detail()).status_code == 404
    assert not Pipeline.objects.exists()


def test_patch_is_not_offered(api, owner):
    create(api(owner))
    assert api(owner).patch(detail(), {}, format="json").status_code == 405


# --- authentication and permissions -------------------------------------------

ENDPOINTS = ["list", "create", "get", "put", "delete", "versions", "version"]


def call(client, endpoint):
    doc = definition()
    return {
        "list": lambda: client.get(LIST),
        "create": lambda: client.post(LIST, definition(name="another"), format="json"),
        "get": lambda: client.get(detail()),
        "put": lambda: client.put(detail(), {**copy.deepcopy(doc), "executionMode": "QUEUED"},
                                  format="json"),
        "delete": lambda: client.delete(detail()),
        "versions": lambda: client.get(f"{detail()}versions/"),
        "version": lambda: client.get(f"{detail()}versions/1/"),
    }[endpoint]()


EXPECTED = {
    "owner": dict(list=200, create=201, get=200, put=200, delete=204, versions=200, version=200),
    "operator": dict(list=200, create=403, get=200, put=403, delete=403, versions=200,
                     version=200),
    "viewer": dict(list=200, create=403, get=200, put=403, delete=403, versions=200,
                   version=200),
    "outsider": dict.fromkeys(ENDPOINTS, 403),
    "anonymous": dict.fromkeys(ENDPOINTS, 401),
}


@pytest.mark.parametrize("persona", list(EXPECTED))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_each_persona_gets_what_its_role_allows(api, request, owner, persona, endpoint):
    create(api(owner))
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    response = call(api(user), endpoint)
    assert response.status_code == EXPECTED[persona][endpoint], response.content
    if response.status_code in (401, 403):
        assert set(response.json()) == {"detail"}
        assert Pipeline.objects.get().version == 1  # nothing changed


def test_an_anonymous_caller_is_told_how_to_authenticate(api):
    response = api(None).get(LIST)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_wrong_token_answers_401(client):
    response = client.get(LIST, HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401


def test_a_signed_in_browser_reads_the_api_with_its_session(client, viewer, owner, api):
    create(api(owner))
    client.force_login(viewer)
    assert client.get(detail()).status_code == 200


def test_a_session_write_needs_the_csrf_token(owner, api):
    from rest_framework.test import APIClient

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(owner)
    response = browser.post(LIST, definition(), format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_an_operator_granted_the_owner_role_on_the_group_may_replace_a_definition(
        api, owner, operator):
    from teams.models import PipelineGroup, RoleGrant

    create(api(owner))
    assert call(api(operator), "put").status_code == 403
    RoleGrant.objects.create(pipeline_group=PipelineGroup.objects.get(name="default"),
                             role="owner", user=operator)
    assert call(api(operator), "put").status_code == 200


def test_the_role_groups_hold_the_pipeline_permissions():
    perms = {g.name: set(g.permissions.values_list("codename", flat=True))
             for g in Group.objects.filter(name__in=["viewers", "operators", "owners"])}
    assert "view_pipeline" in perms["viewers"] and "change_pipeline" not in perms["viewers"]
    assert "change_pipeline" not in perms["operators"]
    assert {"add_pipeline", "change_pipeline", "delete_pipeline"} <= perms["owners"]


def test_every_name_character_works_in_the_url(api, owner):
    name = "team.app@2_x-1"
    assert create(api(owner), definition(name=name)).status_code == 201
    assert api(owner).get(detail(name)).json()["pipeline"]["name"] == name
    assert api(owner).delete(detail(name)).status_code == 204
