"""Custom action types: their definition, pipelines using them, and every surface."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from executions.models import ExecutionEvent
from jobs import action_types, services
from jobs.action_types import ActionTypeInvalid, action_type_create
from jobs.models import CustomActionType
from pipelines import services as pipeline_services
from pipelines.validation import validate_document
from tests.factories import action, definition
from tests.jobs.conftest import TYPE, custom_pipeline, sim, type_data


def _problems(doc) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in validate_document(doc) if p.severity == "error"]


def _doc(config: dict, **fields) -> dict:
    build = action("Acme", "Build", "AcmeBuild", configuration=config,
                   inputArtifacts=[{"name": "Src"}], **fields)
    return definition("custom", stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [build])])


def test_an_action_is_checked_against_the_declared_properties_at_their_paths(acme):
    path = "stages[1].actions[0]"
    assert _problems(_doc({"ProjectName": "web"})) == []
    assert _problems(_doc({})) == [(f"{path}.configuration.ProjectName", "is required")]
    assert _problems(_doc({"ProjectName": "web", "Colour": "red"})) == [
        (f"{path}.configuration.Colour", "is not a configuration property of action type "
         "Build/Custom/AcmeBuild/1: use ApiToken, ProjectName")]
    assert _problems(_doc({"ProjectName": "x" * 21})) == [
        (f"{path}.configuration.ProjectName", "a queryable value is at most 20 characters, "
         "not 21")]
    assert _problems(_doc({"ProjectName": "a b"})) == [
        (f"{path}.configuration.ProjectName",
         "a queryable value has only letters, digits, _ and -")]
    assert _problems(_doc({"ProjectName": "web"}, outputArtifacts=[{"name": "A"},
                                                                   {"name": "B"}])) == [
        (f"{path}.outputArtifacts", "action type Build/Custom/AcmeBuild/1 takes 0 to 1 "
         "outputArtifacts, not 2")]


def test_a_type_definition_reports_every_problem_at_its_path(db):
    queryable = {"required": True, "key": False, "secret": False, "queryable": True}
    with pytest.raises(ActionTypeInvalid) as refused:
        action_type_create(data=type_data(configurationProperties=[
            {"name": "A", **queryable}, {"name": "B", **queryable},
            {"name": "C", "required": False, "key": False, "secret": True, "queryable": True},
        ]))
    assert refused.value.problems == [
        ("configurationProperties[2].queryable", "a queryable property must be required"),
        ("configurationProperties[2].queryable", "a queryable property cannot be secret"),
        ("configurationProperties[1].queryable",
         "an action type has at most one queryable property")]


def test_a_built_in_provider_name_cannot_be_registered(db):
    with pytest.raises(ActionTypeInvalid) as refused:
        action_type_create(data=type_data(provider="Shell"))
    assert refused.value.problems[0][0] == "provider"


def test_a_deleted_type_is_gone_and_its_version_cannot_be_used_again(acme):
    assert action_types.action_type_delete(action_type=acme)
    with pytest.raises(ActionTypeInvalid):
        action_type_create(data=type_data())
    path = "stages[1].actions[0].actionTypeId.provider"
    assert [p for p, _ in _problems(_doc({"ProjectName": "web"}))] == [path]
    action_type_create(data=type_data(version="2"))   # a new version is fine


def test_secret_values_are_sealed_and_shown_back_masked(acme):
    pipeline = custom_pipeline(ApiToken="hunter2")
    exported = pipeline_services.pipeline_export(pipeline=pipeline)
    config = exported["pipeline"]["stages"][1]["actions"][0]["configuration"]
    assert config == {"ProjectName": "web", "ApiToken": "****"}
    assert "hunter2" not in str(pipeline.document)


def test_progress_is_an_event_the_dashboard_shows_with_the_type_links(driver, acme, owner,
                                                                      client):
    pipeline = custom_pipeline()
    driver.start(pipeline)
    driver.run()
    [job] = services.job_poll(action_type=TYPE)
    services.job_acknowledge(job_id=str(job.job_id), nonce=job.nonce)
    driver.call(services.job_succeed, job_id=str(job.job_id), continuation_token="t",
                execution_details={"summary": "tests 40%", "percentComplete": 40,
                                   "externalExecutionId": "run-9"})
    event = ExecutionEvent.objects.filter(action_name="Acme").order_by("id").last()
    assert event.data["percentComplete"] == 40 and event.summary == "tests 40%"
    client.force_login(owner)
    page = client.get(f"/pipelines/{pipeline.name}/").content.decode()
    assert '<progress max="100" value="40"' in page
    assert 'href="https://ci.example.com/web"' in page
    assert 'href="https://ci.example.com/web/run-9"' in page


# --- REST ---------------------------------------------------------------------------------


def test_rest_registers_lists_reads_and_deletes_action_types(owner):
    for codename in ("add_customactiontype", "delete_customactiontype",
                     "change_customactiontype"):
        owner.user_permissions.add(Permission.objects.get(codename=codename))
    api = APIClient()
    api.force_authenticate(owner)
    made = api.post("/api/action-types/", type_data(), format="json")
    assert made.status_code == 201, made.content
    assert made.json()["actionType"]["id"] == TYPE
    assert [t["id"] for t in api.get("/api/action-types/").json()["actionTypes"]] == [TYPE]
    url = "/api/action-types/Build/Custom/AcmeBuild/1/"
    bad = api.put(url, type_data(inputArtifactDetails={"minimumCount": 3,
                                                         "maximumCount": 1}), format="json")
    assert bad.status_code == 400
    assert bad.json()["errors"] == [{"path": "inputArtifactDetails",
                                     "message": "minimumCount is more than maximumCount"}]
    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert CustomActionType.objects.get().deleted_at is not None


def test_rest_refuses_a_viewer_who_tries_to_register_a_type(viewer):
    api = APIClient()
    api.force_authenticate(viewer)
    assert api.get("/api/action-types/").status_code == 200
    assert api.post("/api/action-types/", type_data(), format="json").status_code == 403


# --- admin --------------------------------------------------------------------------------


def _admin_form(**overrides) -> dict:
    form = {"category": "Build", "owner": "Custom", "provider": "AdminBuild", "version": "1",
            "description": "", "entity_url_template": "", "execution_url_template": "",
            "revision_url_template": "", "third_party_configuration_url": "",
            "configuration_properties": '[{"name": "Project", "required": true, '
                                        '"key": true, "secret": false}]',
            "input_minimum": "0", "input_maximum": "1", "output_minimum": "0",
            "output_maximum": "1"}
    form.update(overrides)
    return form


def test_the_admin_registers_a_type_and_refuses_a_built_in_name_at_its_path(admin_client):
    url = "/admin/jobs/customactiontype/add/"
    refused = admin_client.post(url, _admin_form(provider="Shell"))
    assert refused.status_code == 200
    assert "provider: &quot;Shell&quot; is a built-in provider" in refused.content.decode()
    assert not CustomActionType.objects.exists()
    made = admin_client.post(url, _admin_form())
    assert made.status_code == 302
    assert CustomActionType.objects.get().configuration_properties == [
        {"name": "Project", "required": True, "key": True, "secret": False,
         "queryable": False}]
