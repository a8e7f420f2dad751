"""Agent keys and the trust model on the job-worker protocol (``/aws/``): a key is shown
once and stored as a digest, revoking it refuses the next request, and a key reaches
only its own agent's jobs — not the REST API, not another AWS operation, not approvals,
not another agent's job or artifacts, and no secret its job does not reference
(docs/deploy.md, Trust; docs/job-workers.md, Agents)."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest
from django.test import Client

from agents import services
from agents.agent import sign_s3
from agents.models import Agent, AgentKey
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution, Artifact
from jobs.models import Job
from pipelines.services import pipeline_save
from tests.agents.test_routing import build_doc

pytestmark = pytest.mark.django_db


class Answer:
    """An answer of ``/aws/`` (its JSON is AWS's content type)."""

    def __init__(self, response):
        self.status_code, self.content = response.status_code, response.content

    def json(self) -> dict:
        return json.loads(self.content or b"{}")


def aws(client: Client, key: str, name: str, operation: str, body: dict) -> Answer:
    return Answer(client.post("/aws/", json.dumps(body), content_type="application/x-amz-json-1.1",
                       HTTP_X_AMZ_TARGET=f"CodePipeline_20150709.{operation}",
                       HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_CONVEYOR_AGENT=name))


def poll(client: Client, key: str, name: str, labels=("linux", "arm64"), wait=0):
    return aws(client, key, name, "PollForJobs", {
        "conveyorAgent": {"name": name, "labels": list(labels), "version": "1"},
        "conveyorWaitSeconds": wait, "conveyorAcknowledge": True})


def polled(client: Client, key: str, name: str) -> dict:
    answer = poll(client, key, name)
    assert answer.status_code == 200, answer.content
    [job] = answer.json()["jobs"]
    return job


def error(answer) -> str:
    return answer.json().get("__type", "")


def s3(client: Client, method: str, location: dict, creds: dict, data: bytes = b""):
    where = location["s3Location"]
    path = f"/s3/{where['bucketName']}/{where['objectKey']}"
    headers = {**sign_s3(method, "testserver", path, creds, data), "Host": "testserver"}
    if method == "PUT":
        return client.put(path, data, content_type="application/zip", headers=headers)
    return client.get(path, headers=headers)


@pytest.fixture
def routed(driver):
    """An execution whose Build (RunOn linux,arm64) waits for an agent."""
    doc = build_doc(environmentVariables=[
        {"name": "TOKEN", "value": "deploy-token", "type": "SECRETS_MANAGER"}],
        outputArtifacts=[{"name": "Out"}])
    pipeline = pipeline_save(document=doc).pipeline
    ex = driver.start(pipeline)
    driver.run()
    return ActionExecution.objects.get(execution=ex, stage_name="Build")


def test_a_key_is_stored_only_as_a_digest():
    row, key = services.agent_key_create(name="farm")
    stored = AgentKey.objects.filter(pk=row.pk).values().get()
    assert key not in json.dumps(stored, default=str)
    assert services.agent_key_authenticate(key=key) == row
    assert services.agent_key_authenticate(key=key[:-1] + ("A" if key[-1] != "A" else "B")) \
        is None


def test_admin_shows_a_new_key_once_and_revokes_it(admin_client):
    answer = admin_client.post("/admin/agents/agentkey/add/", {"name": "arm box"}, follow=True)
    text = answer.content.decode()
    row = AgentKey.objects.get(name="arm box")
    start = text.index("cva_" + row.prefix)
    key = text[start:text.index("<", start)]
    assert services.agent_key_authenticate(key=key) == row
    assert key not in admin_client.get(f"/admin/agents/agentkey/{row.pk}/change/").content \
        .decode()
    client = Client()
    assert poll(client, key, "box1").json() == {"jobs": []}
    admin_client.post("/admin/agents/agentkey/", {
        "action": "revoke", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.revoked_at is not None
    refused = poll(client, key, "box1")                          # the very next request
    assert refused.status_code == 403 and error(refused) == "UnrecognizedClientException"


def test_a_revoked_key_stops_an_agent_at_its_next_job_call(routed):
    row, key = services.agent_key_create(name="farm")
    client = Client()
    job = polled(client, key, "arm1")
    services.agent_key_revoke(key=row)
    answer = aws(client, key, "arm1", "ConveyorRenewJobLease", {"jobId": job["id"]})
    assert answer.status_code == 403 and error(answer) == "UnrecognizedClientException"


def test_revoking_a_key_fails_the_action_its_agent_runs_naming_the_key(routed):
    row, key = services.agent_key_create(name="farm")
    client = Client()
    job = polled(client, key, "arm1")
    assert services.agent_key_revoke(key=row)
    routed.refresh_from_db()
    assert routed.status == A.FAILED
    assert f'agent key "farm" ({row.prefix}…) was revoked' in routed.summary
    assert Job.objects.get(job_id=job["id"]).status == "Failed"
    late = aws(client, key, "arm1", "PutJobSuccessResult", {"jobId": job["id"]})
    assert error(late) == "UnrecognizedClientException"
    assert not services.agent_key_revoke(key=row)                 # once only


@pytest.mark.parametrize("how", ["revoked", "deleted"])
def test_a_key_revoked_by_save_or_deleted_stops_its_agents_action_too(driver, how):
    from django.utils import timezone

    pipeline = pipeline_save(document=build_doc()).pipeline
    row, key = services.agent_key_create(name=f"farm-{how}")
    driver.start(pipeline)
    driver.run()
    polled(Client(), key, f"box-{how}")
    ae = ActionExecution.objects.get(worker=f"agent:box-{how}")
    if how == "revoked":
        row.revoked_at = timezone.now()
        row.save()
    else:
        row.delete()
    ae.refresh_from_db()
    assert ae.status == A.FAILED
    assert f'agent key "farm-{how}" ({row.prefix}…) was {how}' in ae.summary
    assert error(poll(Client(), key, f"box-{how}")) == "UnrecognizedClientException"


def test_an_agent_key_opens_no_other_api(routed, owner):
    _, key = services.agent_key_create(name="farm")
    client = Client()
    for scheme in ("Bearer", "Token"):
        auth = {"HTTP_AUTHORIZATION": f"{scheme} {key}"}
        assert client.get("/api/pipelines/", **auth).status_code in (401, 403)
        assert client.get(f"/api/executions/{routed.execution.execution_id}/",
                          **auth).status_code in (401, 403)
        assert client.get("/api/approvals/", **auth).status_code in (401, 403)
        assert client.get("/agents/", **auth).status_code == 302   # the sign-in page
    # On the AWS endpoint, only the job-worker operations (not even with a registered name).
    assert poll(client, key, "arm1").status_code == 200
    for operation in ("ListPipelines", "GetPipeline", "PutApprovalResult",
                      "StartPipelineExecution", "PollForThirdPartyJobs", "CreatePipeline"):
        answer = aws(client, key, "arm1", operation, {"name": routed.execution.pipeline.name})
        assert error(answer) == "UnknownOperationException", operation


def test_an_agent_reaches_only_its_own_job(routed, settings):
    _, key = services.agent_key_create(name="farm")
    _, other_key = services.agent_key_create(name="other farm")
    client = Client()
    job = polled(client, key, "arm1")
    assert job["conveyorJob"]["actionExecutionId"] == str(routed.action_execution_id)
    assert poll(client, other_key, "arm2").json() == {"jobs": []}   # nothing left for it
    for who_key, who in ((other_key, "arm2"), (key, "arm2"), (other_key, "arm1")):
        for operation, body in (
                ("ConveyorRenewJobLease", {}), ("GetJobDetails", {}),
                ("ConveyorAppendJobLog", {"offset": 0, "data": "eA=="}),
                ("PutJobFailureResult", {"failureDetails": {"type": "JobFailed",
                                                            "message": "x"}})):
            answer = aws(client, who_key, who, operation, {"jobId": job["id"], **body})
            assert error(answer) in ("JobNotFoundException", "UnrecognizedClientException"), (
                who, operation, answer.content)
    routed.refresh_from_db()
    assert routed.status == A.IN_PROGRESS and routed.worker == "agent:arm1"
    # Its own calls work: the input it may read, the heartbeat that keeps it.
    creds = job["data"]["artifactCredentials"]
    [src] = job["data"]["inputArtifacts"]
    got = s3(client, "GET", src["location"], creds)
    assert got.status_code == 200, got.content
    other = json.loads(json.dumps(src["location"]).replace("/input/Src", "/input/Other"))
    assert s3(client, "GET", other, creds).status_code == 403
    assert aws(client, key, "arm1", "ConveyorRenewJobLease",
               {"jobId": job["id"]}).json() == {"continue": True}
    # A job worker's access key does not reach the agents' job either.
    from django.contrib.auth.models import User

    from jobs import errors
    from jobs import services as job_services

    admin = User.objects.create_superuser("root", "root@example.com", "pw")
    with pytest.raises(errors.JobNotFound):
        job_services.job_get(job_id=job["id"], user=admin)


def test_a_routed_action_is_a_job_carrying_its_labels(routed):
    job = Job.objects.get(action_execution=routed)
    assert job.labels == ["arm64", "linux"] and job.status == "Queued"
    assert job.action_type is None and (job.category, job.provider) == ("Build", "Shell")


def test_an_agent_name_of_another_live_key_is_refused():
    _, key = services.agent_key_create(name="farm")
    _, thief = services.agent_key_create(name="elsewhere")
    client = Client()
    assert poll(client, key, "arm1").json() == {"jobs": []}
    answer = poll(client, thief, "arm1")
    assert error(answer) == "ValidationException"
    assert "belongs to another key" in answer.json()["message"]


def test_a_job_carries_only_the_secrets_its_action_references(routed, settings):
    secrets_dir = settings.CONVEYOR_SECRETS_DIR
    secrets_dir.mkdir(parents=True, exist_ok=True)
    (secrets_dir / "deploy-token").write_text("s3cr3t-value\n")
    (secrets_dir / "database-password").write_text("never-shown\n")
    _, key = services.agent_key_create(name="farm")
    answer = poll(Client(), key, "arm1")
    assert answer.status_code == 200
    [job] = answer.json()["jobs"]
    assert job["conveyorJob"]["secrets"] == {"deploy-token": "s3cr3t-value"}
    assert "never-shown" not in answer.content.decode()


def test_the_log_is_appended_once_even_when_a_batch_is_sent_again(routed, settings):
    _, key = services.agent_key_create(name="farm")
    client = Client()
    job = polled(client, key, "arm1")

    def append(offset: int, data: bytes) -> dict:
        return aws(client, key, "arm1", "ConveyorAppendJobLog", {
            "jobId": job["id"], "offset": offset, "data": base64.b64encode(data).decode()}
                   ).json()

    assert append(0, b"one\n") == {"offset": 4}
    assert append(0, b"one\ntwo\n") == {"offset": 8}
    assert append(20, b"lost\n") == {"offset": 8}        # a gap: resend from 8
    routed.refresh_from_db()
    assert (settings.LOG_ROOT / routed.log_path).read_text() == "one\ntwo\n"


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def test_outputs_and_result_finish_the_action_and_an_unsafe_zip_is_refused(routed):
    _, key = services.agent_key_create(name="farm")
    client = Client()
    job = polled(client, key, "arm1")
    [out] = job["data"]["outputArtifacts"]
    assert out["name"] == "Out"
    creds = job["data"]["artifactCredentials"]
    bad = s3(client, "PUT", out["location"], creds, _zip({"../escape.txt": b"x"}))
    assert bad.status_code == 400 and b"'..'" in bad.content
    not_mine = json.loads(json.dumps(out["location"]).replace("/output/Out", "/output/Other"))
    assert s3(client, "PUT", not_mine, creds, _zip({"a": b"x"})).status_code == 403
    assert s3(client, "PUT", out["location"], creds,
              _zip({"dist/app.txt": b"built"})).status_code == 200
    done = aws(client, key, "arm1", "PutJobSuccessResult", {
        "jobId": job["id"], "outputVariables": {"Version": "2"},
        "executionDetails": {"summary": "built"},
        "conveyorLog": {"offset": 0, "data": base64.b64encode(b"the end\n").decode()}})
    assert done.status_code == 200, done.content
    routed.refresh_from_db()
    assert routed.status == A.SUCCEEDED and routed.output_variables == {"Version": "2"}
    assert routed.summary == "built"
    assert Artifact.objects.get(produced_by=routed, name="Out").file_count == 1
    assert Agent.objects.get(name="arm1").action_execution is None
    assert Job.objects.get(job_id=job["id"]).status == "Succeeded"
    again = aws(client, key, "arm1", "PutJobFailureResult", {
        "jobId": job["id"], "failureDetails": {"type": "JobFailed", "message": "late"}})
    assert error(again) == "InvalidJobStateException"   # a late report changes nothing
    # The job's credentials expired with it.
    assert s3(client, "GET", out["location"], creds).status_code == 400


def test_a_success_without_its_output_artifact_fails_the_action(routed):
    _, key = services.agent_key_create(name="farm")
    client = Client()
    job = polled(client, key, "arm1")
    aws(client, key, "arm1", "PutJobSuccessResult", {"jobId": job["id"]})
    routed.refresh_from_db()
    assert routed.status == A.FAILED and 'no output artifact "Out"' in routed.summary


def test_the_agents_page_lists_agents_for_staff_only(routed, admin_client, viewer):
    _, key = services.agent_key_create(name="farm")
    assert poll(Client(), key, "arm1", labels=("linux", "arm64", "gpu")).json()["jobs"]
    page = admin_client.get("/agents/").content.decode()
    assert 'data-agent="arm1"' in page and "<code>gpu</code>" in page
    assert f"/executions/{routed.execution.number}/stages/Build/actions/Compile/" in page
    assert 'href="/agents/"' in page                 # in the nav for staff
    client = Client()
    client.force_login(viewer)
    assert client.get("/agents/").status_code == 403
    assert 'href="/agents/"' not in client.get("/").content.decode()
    assert Client().get("/agents/")["Location"].startswith("/login/")


def test_the_agents_page_names_a_current_action_only_to_who_may_view_its_pipeline(routed):
    from django.contrib.auth.models import User

    _, key = services.agent_key_create(name="farm")
    poll(Client(), key, "arm1")
    staff = User.objects.create_user("sam", "sam@example.com", "pw", is_staff=True)
    client = Client()
    client.force_login(staff)                # staff, but no role on the pipeline's group
    page = client.get("/agents/").content.decode()
    assert 'data-agent="arm1"' in page and "busy: an action of another group" in page
    assert routed.execution.pipeline.name not in page and "/actions/Compile/" not in page


def test_an_abandoned_action_tells_its_agent_to_stop(routed, driver, owner):
    from executions import services as execution_services

    _, key = services.agent_key_create(name="farm")
    client = Client()
    job = polled(client, key, "arm1")
    driver.call(execution_services.execution_stop, execution=routed.execution, abandon=True,
                reason="enough", user=owner)
    routed.refresh_from_db()
    assert routed.status == A.ABANDONED
    answer = aws(client, key, "arm1", "ConveyorRenewJobLease", {"jobId": job["id"]})
    assert answer.json() == {"continue": False}
    late = aws(client, key, "arm1", "PutJobSuccessResult", {"jobId": job["id"]})
    assert error(late) == "InvalidJobStateException"
    routed.refresh_from_db()
    assert routed.status == A.ABANDONED


def test_a_codebuild_job_also_carries_the_secrets_its_buildspec_names(driver, settings):
    settings.CONVEYOR_SECRETS_DIR.mkdir(parents=True, exist_ok=True)
    (settings.CONVEYOR_SECRETS_DIR / "build-token").write_text("from-the-buildspec\n")
    (settings.CONVEYOR_SECRETS_DIR / "database-password").write_text("never-shown\n")
    doc = build_doc(provider="CodeBuild")
    build = doc["stages"][1]["actions"][0]
    del build["commands"]
    build["configuration"].update({"ProjectName": "none", "BuildspecOverride": (
        "version: 0.2\nenv:\n  secrets-manager:\n    TOKEN: build-token:password\n"
        "phases:\n  build:\n    commands:\n      - echo hi\n")})
    driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    _, key = services.agent_key_create(name="farm")
    answer = poll(Client(), key, "arm1")
    [job] = answer.json()["jobs"]
    assert job["conveyorJob"]["secrets"] == {"build-token": "from-the-buildspec"}
    assert b"never-shown" not in answer.content
