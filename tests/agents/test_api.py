"""Agent keys and the trust model: a key is shown once and stored as a digest, revoking
it refuses the next request, and a key reaches only its own agent's jobs — not the REST
API, not the AWS endpoint, not approvals, not another agent's job, and no secret its
job does not reference (docs/deploy.md, Trust)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.test import Client

from agents import services
from agents.models import Agent, AgentKey
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution, Artifact
from pipelines.services import pipeline_save
from tests.agents.test_routing import build_doc

pytestmark = pytest.mark.django_db


def bearer(key: str, name: str = "") -> dict:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if name:
        headers["HTTP_X_CONVEYOR_AGENT"] = name
    return headers


def poll(client: Client, key: str, name: str, labels=("linux", "arm64"), wait=0):
    return client.post("/api/agent/poll", json.dumps(
        {"name": name, "labels": list(labels), "version": "1", "wait": wait}),
        content_type="application/json", **bearer(key))


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
    assert poll(client, key, "box1").status_code == 204
    admin_client.post("/admin/agents/agentkey/", {
        "action": "revoke", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert poll(client, key, "box1").status_code == 401          # the very next request


def test_a_revoked_key_stops_an_agent_at_its_next_job_call(routed):
    row, key = services.agent_key_create(name="farm")
    client = Client()
    job = poll(client, key, "arm1").json()
    services.agent_key_revoke(key=row)
    answer = client.post(f"/api/agent/jobs/{job['jobId']}/heartbeat", **bearer(key, "arm1"))
    assert answer.status_code == 401


def test_an_agent_key_opens_no_other_api(routed, owner):
    _, key = services.agent_key_create(name="farm")
    client = Client()
    for scheme in ("Bearer", "Token"):
        auth = {"HTTP_AUTHORIZATION": f"{scheme} {key}"}
        assert client.get("/api/pipelines/", **auth).status_code in (401, 403)
        assert client.get(f"/api/executions/{routed.execution.execution_id}/",
                          **auth).status_code in (401, 403)
        assert client.get("/api/approvals/", **auth).status_code in (401, 403)
        aws = client.post("/aws/", "{}", content_type="application/x-amz-json-1.1",
                          HTTP_X_AMZ_TARGET="CodePipeline_20150709.ListPipelines", **auth)
        assert aws.status_code in (400, 401, 403)
        assert client.get("/agents/", **auth).status_code == 302   # the sign-in page


def test_an_agent_reaches_only_its_own_job(routed):
    _, key = services.agent_key_create(name="farm")
    _, other_key = services.agent_key_create(name="other farm")
    client = Client()
    job = poll(client, key, "arm1").json()
    assert job["actionExecutionId"] == str(routed.action_execution_id)
    assert poll(client, other_key, "arm2").status_code == 204     # nothing left for it
    base = f"/api/agent/jobs/{job['jobId']}"
    for who in (bearer(other_key, "arm2"), bearer(key, "arm2"), bearer(other_key, "arm1")):
        assert client.post(f"{base}/heartbeat", **who).status_code in (401, 404)
        assert client.post(f"{base}/log?offset=0", b"x", content_type="text/plain",
                           **who).status_code in (401, 404)
        assert client.get(f"{base}/inputs/Src", **who).status_code in (401, 404)
        assert client.post(f"{base}/result", json.dumps({"status": "Failed"}),
                           content_type="application/json", **who).status_code in (401, 404)
    routed.refresh_from_db()
    assert routed.status == A.IN_PROGRESS and routed.worker == "agent:arm1"
    # Its own calls work: the input it may read, the heartbeat that keeps it.
    mine = bearer(key, "arm1")
    assert client.get(f"{base}/inputs/Src", **mine).status_code == 200
    assert client.get(f"{base}/inputs/Other", **mine).status_code == 404
    assert client.post(f"{base}/heartbeat", **mine).json() == {"continue": True}


def test_an_agent_name_of_another_live_key_is_refused():
    _, key = services.agent_key_create(name="farm")
    _, thief = services.agent_key_create(name="elsewhere")
    client = Client()
    assert poll(client, key, "arm1").status_code == 204
    answer = poll(client, thief, "arm1")
    assert answer.status_code == 409 and "belongs to another key" in answer.json()["detail"]


def test_a_job_carries_only_the_secrets_its_action_references(routed, settings):
    secrets_dir = settings.CONVEYOR_SECRETS_DIR
    secrets_dir.mkdir(parents=True, exist_ok=True)
    (secrets_dir / "deploy-token").write_text("s3cr3t-value\n")
    (secrets_dir / "database-password").write_text("never-shown\n")
    _, key = services.agent_key_create(name="farm")
    answer = poll(Client(), key, "arm1")
    assert answer.status_code == 200
    job = answer.json()
    assert job["secrets"] == {"deploy-token": "s3cr3t-value"}
    assert "never-shown" not in answer.content.decode()


def test_the_log_is_appended_once_even_when_a_batch_is_sent_again(routed, settings):
    _, key = services.agent_key_create(name="farm")
    client = Client()
    job = poll(client, key, "arm1").json()
    base, mine = f"/api/agent/jobs/{job['jobId']}", bearer(key, "arm1")
    assert client.post(f"{base}/log?offset=0", b"one\n", content_type="text/plain",
                       **mine).json() == {"offset": 4}
    assert client.post(f"{base}/log?offset=0", b"one\ntwo\n", content_type="text/plain",
                       **mine).json() == {"offset": 8}
    gap = client.post(f"{base}/log?offset=20", b"lost\n", content_type="text/plain", **mine)
    assert gap.status_code == 416 and gap.json() == {"offset": 8}
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
    job = poll(client, key, "arm1").json()
    assert job["outputArtifacts"] == ["Out"]
    base, mine = f"/api/agent/jobs/{job['jobId']}", bearer(key, "arm1")
    bad = client.put(f"{base}/outputs/Out", _zip({"../escape.txt": b"x"}),
                     content_type="application/zip", **mine)
    assert bad.status_code == 400 and "'..'" in bad.json()["detail"]
    assert client.put(f"{base}/outputs/NotMine", _zip({"a": b"x"}),
                      content_type="application/zip", **mine).status_code == 404
    good = client.put(f"{base}/outputs/Out", _zip({"dist/app.txt": b"built"}),
                      content_type="application/zip", **mine)
    assert good.status_code == 201 and good.json()["fileCount"] == 1
    done = client.post(f"{base}/result", json.dumps({
        "status": "Succeeded", "summary": "built", "outputVariables": {"Version": "2"}}),
        content_type="application/json", **mine)
    assert done.status_code == 200
    routed.refresh_from_db()
    assert routed.status == A.SUCCEEDED and routed.output_variables == {"Version": "2"}
    assert Artifact.objects.get(produced_by=routed, name="Out").file_count == 1
    assert Agent.objects.get(name="arm1").action_execution is None
    again = client.post(f"{base}/result", json.dumps({"status": "Failed"}),
                        content_type="application/json", **mine)
    assert again.status_code == 409                    # a late report changes nothing


def test_a_success_without_its_output_artifact_fails_the_action(routed):
    _, key = services.agent_key_create(name="farm")
    client = Client()
    job = poll(client, key, "arm1").json()
    client.post(f"/api/agent/jobs/{job['jobId']}/result", json.dumps({"status": "Succeeded"}),
                content_type="application/json", **bearer(key, "arm1"))
    routed.refresh_from_db()
    assert routed.status == A.FAILED and 'no output artifact "Out"' in routed.summary


def test_the_agents_page_lists_agents_for_staff_only(routed, admin_client, viewer):
    _, key = services.agent_key_create(name="farm")
    poll(Client(), key, "arm1", labels=("linux", "arm64", "gpu"))
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
    job = poll(client, key, "arm1").json()
    driver.call(execution_services.execution_stop, execution=routed.execution, abandon=True,
                reason="enough", user=owner)
    routed.refresh_from_db()
    assert routed.status == A.ABANDONED
    answer = client.post(f"/api/agent/jobs/{job['jobId']}/heartbeat", **bearer(key, "arm1"))
    assert answer.json() == {"continue": False}
    late = client.post(f"/api/agent/jobs/{job['jobId']}/result", json.dumps(
        {"status": "Succeeded"}), content_type="application/json", **bearer(key, "arm1"))
    assert late.status_code == 409
    routed.refresh_from_db()
    assert routed.status == A.ABANDONED
