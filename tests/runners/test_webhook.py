"""Invoke Webhook: a signed job POSTed to a local HTTP server on a thread (the edge of
the world: it stands for the team's own service), and results reported back through
POST /api/jobs/{token}/result."""

from __future__ import annotations

import hashlib
import hmac
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from executions.models import ActionExecution
from pipelines.services import pipeline_save
from pipelines.validation import validate_document
from runners import ActionFailed, Result, Waiting
from runners.webhook import WebhookInvokeRunner, job_token, job_token_action_id
from tests.factories import action, definition
from tests.runners.conftest import make_ctx
from tests.runners.receiver import start_receiver

runner = WebhookInvokeRunner()


@pytest.fixture
def receiver():
    receiver, server = start_receiver()
    yield receiver
    server.shutdown()
    server.server_close()


def hook_action(url, **config) -> dict:
    return action("Notify", "Invoke", "Webhook", namespace="Notify",
                  configuration={"Url": url, "Secret": "s3cret", "Channel": "#ops", **config})


def run(tmp_path, url, **config):
    ctx = make_ctx(tmp_path, hook_action(url, **config), inputs={"App": tmp_path},
                   deadline=timezone.now() + timedelta(minutes=5))
    return ctx, runner.run(ctx)


def test_the_job_is_signed_json_naming_the_action_and_its_result_url(tmp_path, receiver,
                                                                     settings):
    settings.CONVEYOR_BASE_URL = "https://conveyor.example"
    receiver.answer = (200, {"status": "Succeeded", "summary": "Posted to #ops",
                             "outputVariables": {"MessageId": "m-1", "Count": 2}}, {})
    ctx, result = run(tmp_path, receiver.url)
    assert isinstance(result, Result)
    assert result.summary == "Posted to #ops"
    assert result.output_variables == {"MessageId": "m-1", "Count": "2"}
    sent = receiver.requests[0]
    expected = "sha256=" + hmac.new(b"s3cret", sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["X-Conveyor-Signature-256"] == expected
    job = sent.json
    token = job_token(ctx.action_execution_id)
    assert job["job"]["token"] == token
    assert job["job"]["resultUrl"] == f"https://conveyor.example/api/jobs/{token}/result"
    assert job["action"]["name"] == "Notify" and job["pipeline"]["name"] == "demo"
    assert job["configuration"] == {"Channel": "#ops"}  # the Secret is not sent
    assert job["inputArtifacts"] == [{"name": "App", "url": (
        f"https://conveyor.example/api/executions/{ctx.pipeline_execution_id}/artifacts/App/")}]


def test_a_2xx_with_a_failed_result_fails_at_once(tmp_path, receiver):
    receiver.answer = (200, {"status": "Failed", "summary": "Channel is archived"}, {})
    with pytest.raises(ActionFailed, match="^Channel is archived$"):
        run(tmp_path, receiver.url)


def test_a_2xx_without_a_result_waits_with_the_job_token(tmp_path, receiver):
    receiver.answer = (202, {"externalExecutionUrl": "https://ci.example/42"}, {})
    ctx, result = run(tmp_path, receiver.url)
    assert isinstance(result, Waiting)
    assert result.token == job_token(ctx.action_execution_id)
    assert result.external_url == "https://ci.example/42"


def test_a_non_2xx_answer_fails_with_the_status_and_reason(tmp_path, receiver):
    receiver.answer = (503, "maintenance until 10:00", {})
    with pytest.raises(ActionFailed, match=r"answered 503 Service Unavailable: maintenance "
                                           r"until 10:00$"):
        run(tmp_path, receiver.url)


def test_a_redirect_is_not_followed(tmp_path, receiver):
    receiver.answer = (302, "", {"Location": "http://elsewhere.example/"})
    with pytest.raises(ActionFailed, match="answered 302"):
        run(tmp_path, receiver.url)
    assert len(receiver.requests) == 1


def test_no_answer_within_the_timeout_fails(tmp_path, receiver):
    receiver.delay = 3
    with pytest.raises(ActionFailed, match=r"did not answer within 1 s"):
        run(tmp_path, receiver.url, TimeoutSeconds="1")


def test_nobody_listening_fails_saying_so(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ActionFailed, match="Cannot reach http://127.0.0.1:.*Connection refused"):
        run(tmp_path, f"http://127.0.0.1:{port}/x")


def test_a_malformed_inline_result_fails_naming_the_field(tmp_path, receiver):
    receiver.answer = (200, {"status": "Succeeded", "outputVariables": ["x"]}, {})
    with pytest.raises(ActionFailed, match="outputVariables: must be an object"):
        run(tmp_path, receiver.url)


def test_the_url_is_checked_when_the_pipeline_is_saved():
    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Invoke", [action("N", "Invoke", "Webhook", configuration={
            "Url": "ftp://x", "TimeoutSeconds": "0"})]),
    ])
    found = [str(p) for p in validate_document(doc)]
    assert 'stages[1].actions[0].configuration.Url: "ftp://x" is not an http(s) URL' in found
    assert ('stages[1].actions[0].configuration.TimeoutSeconds: "0" is not a whole number of '
            "seconds from 1 to 3600") in found


def test_a_token_is_bound_to_its_action_execution(settings):
    import uuid

    some = str(uuid.uuid4())
    token = job_token(some)
    assert len(token) == 64 and job_token_action_id(token) == uuid.UUID(some)
    assert job_token_action_id(token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert job_token_action_id("x" * 64) is None
    settings.SECRET_KEY = "another key"
    assert job_token_action_id(token) is None


# --- through the engine and the result endpoint ------------------------------------


@pytest.fixture
def waiting(driver, receiver):
    """An execution whose Notify action waits for the receiver's later report."""
    receiver.answer = (202, None, {})
    doc = definition("hook-e2e", stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Notify", [hook_action(receiver.url),
                    action("After", "Invoke", "Simulate", runOrder=2,
                           configuration={"Summary": "got #{Notify.Ticket}"})]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    ae = ActionExecution.objects.get(execution=execution, action_name="Notify")
    assert ae.status == "InProgress" and ae.waiting_since is not None
    return execution, ae, receiver.requests[0].json["job"]["token"]


def test_the_receiver_reports_later_and_the_execution_goes_on(waiting, api, driver):
    execution, ae, token = waiting
    assert ae.token == token
    response = driver.call(api(None).post, f"/api/jobs/{token}/result", {
        "status": "Succeeded", "summary": "Ticket opened",
        "outputVariables": {"Ticket": "OPS-7"}}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"actionExecutionId": str(ae.action_execution_id),
                               "status": "Succeeded", "summary": "Ticket opened"}
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert ActionExecution.objects.get(execution=execution, action_name="After").summary == \
        "got OPS-7"


def test_a_token_is_good_for_one_report(waiting, api, driver):
    _, _, token = waiting
    first = driver.call(api(None).post, f"/api/jobs/{token}/result/",
                        {"status": "Failed", "summary": "Deploy hook broke"}, format="json")
    assert first.status_code == 200
    second = api(None).post(f"/api/jobs/{token}/result", {"status": "Succeeded"},
                            format="json")
    assert second.status_code == 409
    assert second.json() == {"detail": "This job has already ended (Failed): its token was "
                                       "good for one report."}


def test_a_reported_failure_fails_the_execution_with_its_summary(waiting, api, driver):
    execution, ae, token = waiting
    driver.call(api(None).post, f"/api/jobs/{token}/result",
                {"status": "Failed", "summary": "Smoke test failed on canary"}, format="json")
    ae.refresh_from_db()
    execution.refresh_from_db()
    assert (ae.status, ae.summary) == ("Failed", "Smoke test failed on canary")
    assert execution.status == "Failed"


def test_an_unknown_or_forged_token_is_404(waiting, api):
    _, ae, token = waiting
    forged = token[:32] + "0" * 32
    for bad in (forged, "nope"):
        response = api(None).post(f"/api/jobs/{bad}/result", {"status": "Succeeded"},
                                  format="json")
        assert response.status_code == 404
        assert response.json() == {"detail": "No job has this token."}
    ae.refresh_from_db()
    assert ae.status == "InProgress"


def test_an_expired_token_is_410(waiting, api):
    _, ae, token = waiting
    ActionExecution.objects.filter(pk=ae.pk).update(
        deadline_at=timezone.now() - timedelta(seconds=1))
    response = api(None).post(f"/api/jobs/{token}/result", {"status": "Succeeded"},
                              format="json")
    assert response.status_code == 410
    assert "expired" in response.json()["detail"]


def test_a_report_that_is_not_one_is_400_naming_the_field(waiting, api):
    _, ae, token = waiting
    response = api(None).post(f"/api/jobs/{token}/result", {"status": "Done"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"path": "status",
                                          "message": 'must be "Succeeded" or "Failed"'}]
    ae.refresh_from_db()
    assert ae.status == "InProgress"


def test_a_job_abandoned_while_it_waits_refuses_the_late_report(waiting, api, driver):
    from executions import services

    execution, ae, token = waiting
    driver.call(services.execution_stop, execution=execution, abandon=True, reason="no")
    ae.refresh_from_db()
    assert ae.status == "Abandoned"
    response = api(None).post(f"/api/jobs/{token}/result", {"status": "Succeeded"},
                              format="json")
    assert response.status_code == 409
    execution.refresh_from_db()
    assert execution.status == "Stopped"
