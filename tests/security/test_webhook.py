"""The push webhook under attack: missing or wrong signatures, replayed deliveries and
oversized bodies are refused and start nothing (real git repository, real engine; only
the django-q2 queue is held)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from executions import retention
from executions.models import HookDelivery, PipelineExecution
from tests.runners.test_triggers import github_push, make_pipeline, signed
from triggers.hooks import services as hook_services


@pytest.fixture
def hooked(driver, repo):
    return make_pipeline("hooked", str(repo.path)), repo


def post(api, driver, payload, *, delivery: str | None = None, signature="good",
         path="/api/hooks/hooked/"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"HTTP_X_GITHUB_EVENT": "push"}
    if signature == "good":
        headers["HTTP_X_HUB_SIGNATURE_256"] = signed(body)
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    if delivery is not None:
        headers["HTTP_X_GITHUB_DELIVERY"] = delivery
    return driver.call(api(None).post, path, body, content_type="application/json",
                       **headers)


@pytest.mark.parametrize("signature", [None, "", "sha256=", "sha256=" + "0" * 64,
                                       signed(b"another body"),
                                       signed(b"x", secret="another secret")])
def test_a_missing_or_wrong_signature_starts_nothing_and_records_nothing(
        hooked, api, driver, signature):
    _, repo = hooked
    response = post(api, driver, github_push(str(repo.path), repo.head()),
                    signature=signature, delivery="d-1")
    assert response.status_code == 401
    assert response.json() == {"detail": "The webhook signature is missing or wrong."}
    assert not PipelineExecution.objects.exists()
    # An unsigned request cannot fill the table of deliveries, nor burn a real id.
    assert not HookDelivery.objects.exists()


def test_a_replayed_delivery_is_refused(hooked, api, driver):
    _, repo = hooked
    payload = github_push(str(repo.path), repo.head())
    first = post(api, driver, payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert first.status_code == 202
    again = post(api, driver, payload, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert again.status_code == 409
    assert again.json() == {"detail": 'Delivery "72d3162e-cc78-11e3-81ab-4c9367dc0958" '
                                      "was received before: a replayed delivery starts "
                                      "nothing."}
    assert PipelineExecution.objects.count() == 1


def test_a_replay_cannot_bring_back_a_commit_whose_execution_was_pruned(hooked, api, driver):
    """Why replays matter: once retention pruned the execution of an old commit, the
    commit itself no longer says "already built"; a captured old delivery would then
    deploy the old commit again."""
    _, repo = hooked
    old_commit = repo.head()
    old_push = github_push(str(repo.path), old_commit)
    assert post(api, driver, old_push, delivery="old").status_code == 202
    driver.run()
    new_commit = repo.commit({"app/main.py": "print('v2')\n"}, "v2")
    assert post(api, driver, github_push(str(repo.path), new_commit, before=old_commit),
                delivery="new").status_code == 202
    driver.run()
    old = PipelineExecution.objects.get(number=1)
    PipelineExecution.objects.filter(pk=old.pk).update(
        ended_at=timezone.now() - timedelta(days=60))
    assert retention.executions_prune(days=30).executions == 1

    replay = post(api, driver, old_push, delivery="old")

    assert replay.status_code == 409
    assert list(PipelineExecution.objects.values_list("number", flat=True)) == [2]


def test_the_same_push_under_a_new_delivery_id_is_handled_as_usual(hooked, api, driver):
    _, repo = hooked
    payload = github_push(str(repo.path), repo.head())
    assert post(api, driver, payload, delivery="a").status_code == 202
    second = post(api, driver, payload, delivery="b")
    assert second.status_code == 200                     # the commit is known: no start
    assert PipelineExecution.objects.count() == 1


def test_a_delivery_that_failed_can_be_sent_again(hooked, api, driver):
    """The sender retries a delivery Conveyor could not handle: not a replay."""
    not_a_push = {"zen": "no ref here"}
    assert post(api, driver, not_a_push, delivery="retry-me").status_code == 400
    assert post(api, driver, not_a_push, delivery="retry-me").status_code == 400
    assert not HookDelivery.objects.exists()


def test_delivery_ids_are_per_pipeline(driver, repo, api):
    make_pipeline("hooked", str(repo.path))
    make_pipeline("other", str(repo.path))
    payload = github_push(str(repo.path), repo.head())
    assert post(api, driver, payload, delivery="same").status_code == 202
    assert post(api, driver, payload, delivery="same",
                path="/api/hooks/other/").status_code == 202
    assert PipelineExecution.objects.count() == 2


@pytest.mark.parametrize("header", ["HTTP_X_GITEA_DELIVERY", "HTTP_X_GITLAB_EVENT_UUID",
                                    "HTTP_X_CONVEYOR_DELIVERY"])
def test_other_senders_delivery_headers_are_read(hooked, api, driver, header):
    _, repo = hooked
    body = json.dumps(github_push(str(repo.path), repo.head())).encode()
    headers = {"HTTP_X_GITHUB_EVENT": "push", "HTTP_X_HUB_SIGNATURE_256": signed(body),
               header: "id-1"}
    for expected in (202, 409):
        response = driver.call(api(None).post, "/api/hooks/hooked/", body,
                               content_type="application/json", **headers)
        assert response.status_code == expected


def test_an_oversized_body_is_413_before_its_signature_is_computed(hooked, api, driver):
    _, repo = hooked
    payload = github_push(str(repo.path), repo.head())
    payload["padding"] = "x" * (1024 * 1024)
    body = json.dumps(payload).encode()
    assert len(body) > hook_services.DEFAULT_MAX_BYTES
    response = post(api, driver, body, delivery="big")        # correctly signed
    assert response.status_code == 413
    assert response.json() == {"detail": "The payload is larger than 1048576 bytes."}
    assert not PipelineExecution.objects.exists()
    assert not HookDelivery.objects.exists()


def test_the_size_limit_is_a_setting_and_counts_the_bytes_read(hooked, api, driver, settings):
    _, repo = hooked
    body = json.dumps(github_push(str(repo.path), repo.head())).encode()
    settings.CONVEYOR_HOOK_MAX_BYTES = len(body) - 1
    assert post(api, driver, body).status_code == 413
    # Whatever Content-Length claims, the service never takes more than the limit.
    with pytest.raises(hook_services.HookError) as refused:
        hook_services.push_receive(pipeline_name="hooked", body=body,
                                   headers={"X-Hub-Signature-256": signed(body)})
    assert refused.value.status == 413
    settings.CONVEYOR_HOOK_MAX_BYTES = len(body)
    assert post(api, driver, body).status_code == 202


def test_a_job_result_larger_than_the_limit_is_413_before_it_is_parsed(api, db):
    body = b'{"status": "Succeeded", "summary": "' + b"x" * (1024 * 1024) + b'"}'
    response = api(None).post("/api/jobs/" + "a" * 32 + "/result/", body,
                              content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"detail": "The payload is larger than 1048576 bytes."}
    # A small report with an unknown token is judged by its token.
    small = api(None).post("/api/jobs/" + "a" * 32 + "/result/", {"status": "Succeeded"},
                           format="json")
    assert small.status_code == 404
