"""The push webhook's secret: set through the API or the admin, never shown or exported."""

import pytest

from pipelines import services
from pipelines.admin import PipelineAdminForm
from pipelines.models import Pipeline
from tests.factories import action, definition


@pytest.fixture
def pipeline(db):
    doc = definition("hooked", stages=[
        ("Source", [action("Checkout", "Source", "Simulate",
                           outputArtifacts=[{"name": "SourceOutput"}])]),
        ("Build", [action("Compile", provider="Simulate")]),
    ])
    return services.pipeline_save(document=doc).pipeline


def test_the_webhook_answer_gives_the_url_and_says_no_secret_is_set(api, owner, pipeline):
    answer = api(owner).get("/api/pipelines/hooked/webhook/")
    assert answer.status_code == 200
    assert answer.json() == {"url": "http://testserver/api/hooks/hooked/", "secretSet": False}


def test_an_owner_sets_the_secret_and_it_is_never_shown_or_exported(api, owner, pipeline):
    secret = "s3cret-that-is-long-enough"
    answer = api(owner).put("/api/pipelines/hooked/webhook/", {"secret": secret}, format="json")
    assert answer.status_code == 200
    assert answer.json()["secretSet"] is True
    assert Pipeline.objects.get(name="hooked").webhook_secret == secret
    assert secret not in answer.content.decode()
    exported = api(owner).get("/api/pipelines/hooked/").content.decode()
    assert secret not in exported


def test_a_short_secret_is_refused_with_its_field_and_the_old_one_kept(api, owner, pipeline):
    services.pipeline_set_webhook_secret(pipeline=pipeline, secret="x" * 20)
    answer = api(owner).put("/api/pipelines/hooked/webhook/", {"secret": "short"}, format="json")
    assert answer.status_code == 400
    assert answer.json()["errors"] == [{
        "path": "secret", "severity": "error",
        "message": "must be at least 16 characters, or empty to turn push webhooks off"}]
    assert Pipeline.objects.get(name="hooked").webhook_secret == "x" * 20


def test_an_empty_secret_turns_push_webhooks_off(api, owner, pipeline):
    services.pipeline_set_webhook_secret(pipeline=pipeline, secret="x" * 20)
    answer = api(owner).put("/api/pipelines/hooked/webhook/", {"secret": ""}, format="json")
    assert answer.json()["secretSet"] is False
    assert Pipeline.objects.get(name="hooked").webhook_secret == ""


@pytest.mark.parametrize("persona", ["operator", "viewer", "outsider"])
def test_only_those_who_change_pipelines_may_set_the_secret(api, persona, request, pipeline):
    user = request.getfixturevalue(persona)
    answer = api(user).put("/api/pipelines/hooked/webhook/", {"secret": "y" * 20},
                           format="json")
    assert answer.status_code == 403
    assert Pipeline.objects.get(name="hooked").webhook_secret == ""


def test_anonymous_callers_get_401(api, pipeline):
    assert api().get("/api/pipelines/hooked/webhook/").status_code == 401


def test_the_admin_form_refuses_a_short_secret(pipeline):
    form = PipelineAdminForm(instance=pipeline, data={
        "execution_mode": "SUPERSEDED", "variables": "[]", "triggers": "[]",
        "other_fields": "{}", "new_webhook_secret": "short"})
    assert not form.is_valid()
    assert form.errors["new_webhook_secret"] == ["Use at least 16 characters."]
