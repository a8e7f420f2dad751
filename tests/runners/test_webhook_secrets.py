"""Finding 4 of the security review: an Invoke Webhook's Secret (and any configuration key
a provider declares secret) is stored sealed, never shown back (REST definition and
versions, the executions' action answers, the action page, AWS GetPipeline and
ListActionExecutions: "****"), kept when "****" is sent back, and still signs the job.
The receiver is a local HTTP server on a thread (the edge of the world)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.test import Client

import runners
from awsapi.auth import Caller
from awsapi.operations import dispatch
from executions.models import ActionExecution
from pipelines import providers
from pipelines.models import Action, Pipeline, PipelineVersion
from pipelines.services import DefinitionInvalid, pipeline_save
from runners import Result, Runner, register
from tests.factories import action, definition
from tests.runners.receiver import start_receiver

SECRET = "hunter2-webhook-signing-key"


@pytest.fixture
def receiver():
    receiver, server = start_receiver()
    yield receiver
    server.shutdown()
    server.server_close()


def hooked(url: str, secret: str = SECRET) -> dict:
    return definition("signed", stages=[
        ("Source", [action("Checkout", "Source", "Simulate",
                           outputArtifacts=[{"name": "Src"}])]),
        ("Notify", [action("Call", "Invoke", "Webhook",
                           configuration={"Url": url, "Secret": secret})]),
    ])


def stored_text() -> str:
    rows = [Pipeline.objects.get(name="signed").document,
            *PipelineVersion.objects.values_list("document", flat=True),
            *Action.objects.values_list("configuration", flat=True),
            *ActionExecution.objects.values_list("configuration", flat=True)]
    return json.dumps(rows)


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_the_secret_is_stored_sealed_and_every_viewer_answer_masks_it(
        receiver, driver, viewer, api):
    receiver.answer = (200, {"status": "Succeeded", "summary": "sent"}, {})
    pipeline = pipeline_save(document=hooked(receiver.url)).pipeline
    driver.start(pipeline)
    driver.run()
    # The job was signed with the real secret, which no row holds in the clear.
    sent = receiver.requests[0]
    assert sent.headers["X-Conveyor-Signature-256"] == signature(sent.body)
    assert SECRET not in stored_text()

    client = api(viewer)
    for url in ("/api/pipelines/signed/", "/api/pipelines/signed/versions/1/"):
        body = client.get(url).json()
        call = body["pipeline"]["stages"][1]["actions"][0]
        assert call["configuration"]["Secret"] == "****", url
    ae = ActionExecution.objects.get(action_name="Call")
    listed = client.get(f"/api/executions/{ae.execution.execution_id}/actions/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    call = next(a for a in rows if a["actionName"] == "Call")
    assert call["input"]["configuration"]["Secret"] == "****"
    assert call["input"]["resolvedConfiguration"]["Secret"] == "****"
    assert SECRET not in json.dumps(listed)

    caller = Caller(user=viewer, access_key=None, region="us-east-1")
    got = dispatch("GetPipeline", caller, {"name": "signed"})
    assert got["pipeline"]["stages"][1]["actions"][0]["configuration"]["Secret"] == "****"
    actions = dispatch("ListActionExecutions", caller, {"pipelineName": "signed"})
    assert SECRET not in json.dumps(actions)

    page = Client()
    page.force_login(viewer)
    html = page.get(f"/pipelines/signed/executions/{ae.execution.number}/stages/Notify/"
                    "actions/Call/").content.decode()
    assert SECRET not in html and "****" in html


def test_sending_the_mask_back_keeps_the_secret_and_saves_nothing_new(receiver, driver,
                                                                      owner, api):
    receiver.answer = (200, {"status": "Succeeded"}, {})
    pipeline_save(document=hooked(receiver.url))
    shown = api(owner).get("/api/pipelines/signed/").json()
    answer = api(owner).put("/api/pipelines/signed/", shown, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["pipeline"]["version"] == 1  # "****" meant "unchanged"
    driver.start(Pipeline.objects.get(name="signed"))
    driver.run()
    sent = receiver.requests[0]
    assert sent.headers["X-Conveyor-Signature-256"] == signature(sent.body)


def test_a_new_secret_replaces_the_stored_one(receiver, driver, owner, api):
    receiver.answer = (200, {"status": "Succeeded"}, {})
    pipeline_save(document=hooked(receiver.url))
    answer = api(owner).put("/api/pipelines/signed/", hooked(receiver.url, "a-new-key-0123"),
                            format="json")
    assert answer.json()["pipeline"]["version"] == 2
    driver.start(Pipeline.objects.get(name="signed"))
    driver.run()
    sent = receiver.requests[0]
    assert sent.headers["X-Conveyor-Signature-256"] == signature(sent.body, "a-new-key-0123")


def test_the_mask_for_an_action_without_a_stored_secret_is_refused_at_its_path(db):
    with pytest.raises(DefinitionInvalid) as refused:
        pipeline_save(document=hooked("https://hooks.example/x", "****"))
    assert [p.path for p in refused.value.problems] == ["stages[1].actions[0].configuration.Secret"]


def test_a_plaintext_environment_variable_that_looks_like_a_credential_is_a_warning(owner, api):
    doc = definition("env", stages=[
        ("Source", [action("Checkout", "Source", "Simulate", outputArtifacts=[{"name": "S"}])]),
        ("Build", [action(
        "Compile", "Build", "Shell", configuration={}, commands=["true"],
        environmentVariables=[{"name": "DEPLOY_TOKEN", "value": "abc123"},
                              {"name": "REGION", "value": "eu-west-1"},
                              {"name": "DB_PASSWORD", "value": "db/prod",
                               "type": "SECRETS_MANAGER"}])])])
    answer = api(owner).post("/api/pipelines/", doc, format="json")
    assert answer.status_code == 201, answer.json()
    warned = [w for w in answer.json()["warnings"] if "credential" in w["message"]]
    assert [w["path"] for w in warned] == [
        "stages[1].actions[0].environmentVariables[0].value"]
    assert "SECRETS_MANAGER" in warned[0]["message"]


class _ApiKeyRunner(Runner):
    """A provider declaring a secret key, as a custom action type's `secret: true` would."""

    provider = "PagerTest"
    categories = ("Invoke",)
    runs_processes = False
    secret_configuration_keys = frozenset({"ApiKey"})
    seen: list[str] = []

    def run(self, ctx):
        type(self).seen.append(ctx.configuration["ApiKey"])
        return Result(summary="paged")


def test_any_key_a_provider_declares_secret_is_sealed_masked_and_given_to_its_runner(
        driver, viewer, api, monkeypatch):
    # Registered in copies of the registries: the provider is gone after this test.
    monkeypatch.setattr(runners, "_registry", dict(runners._registry))
    monkeypatch.setattr(providers, "_registry", dict(providers._registry))
    register(_ApiKeyRunner)
    doc = definition("paging", stages=[
        ("Source", [action("Checkout", "Source", "Simulate", outputArtifacts=[{"name": "S"}])]),
        ("Page", [action("Page", "Invoke", "PagerTest",
                         configuration={"ApiKey": "pk-live-0000", "Team": "ops"})])])
    pipeline = pipeline_save(document=doc).pipeline
    assert "pk-live-0000" not in json.dumps(Pipeline.objects.get(name="paging").document)
    config = api(viewer).get("/api/pipelines/paging/").json()["pipeline"]["stages"][1][
        "actions"][0]["configuration"]
    assert config == {"ApiKey": "****", "Team": "ops"}
    driver.start(pipeline)
    driver.run()
    assert _ApiKeyRunner.seen == ["pk-live-0000"]
