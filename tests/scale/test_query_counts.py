"""The history surfaces ask the database as many questions with 3 executions as with 30.

Each surface is read once with a short history and once with a ten times longer
one (made by the engine itself: executions that succeed, and every third one
failing in Build and retried), and must make exactly the same number of queries:
no query per execution, per row shown, per stage execution or per attempt.
bench/history_scale.py measures the same surfaces with 100,000 executions.
"""

import json

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from awsapi.services import access_key_create
from executions import services
from executions.choices import RetryMode
from executions.models import ActionExecution, PipelineExecution
from tests.executions.conftest import sim, simple_pipeline

pytestmark = pytest.mark.django_db


def _history_pipeline():
    return simple_pipeline(
        stages=[("Build", [sim("Compile", Outcome="#{variables.Outcome}"), sim("Lint")]),
                ("Deploy", [sim("Release")])],
        variables=[{"name": "Outcome", "defaultValue": "Succeeded"}],
    )


def _grow(driver, pipeline, operator, total: int) -> None:
    """Run executions until the pipeline has ``total``; every third fails and is retried."""
    while (n := PipelineExecution.objects.filter(pipeline=pipeline).count()) < total:
        failing = (n + 1) % 3 == 0
        ex = driver.start(pipeline, user=operator,
                          variables={"Outcome": "Failed"} if failing else None)
        driver.run()
        if failing:
            driver.call(services.stage_retry, execution=ex, stage_name="Build",
                        mode=RetryMode.ALL_ACTIONS, user=operator)
            driver.run()


def _aws(owner_client: Client, key_id: str, secret: str, target: str, body: dict):
    """A SigV4-signed /aws/ request, signed as botocore signs it."""
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url="http://testserver/aws/", data=data, headers={
        "X-Amz-Target": f"CodePipeline_20150709.{target}",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(key_id, secret), "codepipeline", "us-east-1").add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-type"}
    headers["Host"] = "testserver"  # the test Client sends SERVER_NAME only
    return owner_client.post("/aws/", data=data, content_type="application/x-amz-json-1.1",
                             headers=headers)


@pytest.fixture
def surfaces(api, viewer):
    """{surface: () -> response}, each read as a viewer would."""
    rest = api(viewer)
    page = Client()
    page.force_login(viewer)
    key, secret = access_key_create(user=viewer)
    return {
        "GetPipelineState (REST)": lambda: rest.get("/api/pipelines/demo/state/"),
        "GetPipelineState (/aws/)": lambda: _aws(Client(), key.access_key_id, secret,
                                                 "GetPipelineState", {"name": "demo"}),
        "execution history page": lambda: page.get("/pipelines/demo/executions/"),
        "execution history page, filtered": lambda: page.get(
            "/pipelines/demo/executions/?status=Failed"),
        "executions list API": lambda: rest.get("/api/pipelines/demo/executions/"),
        "executions list API, second page": lambda: rest.get(
            "/api/pipelines/demo/executions/?limit=2&offset=2"),
        "pipeline page": lambda: page.get("/pipelines/demo/"),
        "pipelines list": lambda: page.get("/"),
    }


def _counts(surfaces) -> dict[str, int]:
    counts = {}
    for name, read in surfaces.items():
        assert read().status_code == 200, name   # warm: sessions, permissions, caches
        with CaptureQueriesContext(connection) as captured:
            response = read()
        assert response.status_code == 200, (name, response.content[:300])
        counts[name] = len(captured)
    return counts


def test_each_history_surface_makes_the_same_queries_for_3_or_30_executions(
        driver, operator, surfaces):
    pipeline = _history_pipeline()
    _grow(driver, pipeline, operator, 3)
    few = _counts(surfaces)
    _grow(driver, pipeline, operator, 30)
    assert ActionExecution.objects.filter(pipeline=pipeline).count() == 20 * 4 + 10 * 5
    assert _counts(surfaces) == few


def test_the_surfaces_show_the_newest_of_a_long_history(driver, operator, surfaces):
    """The counts above are of pages that really list the history."""
    pipeline = _history_pipeline()
    _grow(driver, pipeline, operator, 30)
    newest = PipelineExecution.objects.get(pipeline=pipeline, number=30)
    deployed = PipelineExecution.objects.get(pipeline=pipeline, number=29)
    listed = surfaces["executions list API"]().json()
    assert listed["count"] == 30
    assert [e["number"] for e in listed["results"]] == list(range(30, 0, -1))
    state = surfaces["GetPipelineState (REST)"]().json()
    latest = {s["stageName"]: s["latestExecution"] for s in state["stageStates"]}
    # #30 failed in Build (twice: it was retried); #29 is the newest to reach Deploy.
    assert newest.status == "Failed"
    assert latest["Build"] == {"pipelineExecutionId": str(newest.execution_id),
                               "status": "Failed"}
    assert latest["Deploy"] == {"pipelineExecutionId": str(deployed.execution_id),
                                "status": "Succeeded"}
    compile_ = state["stageStates"][1]["actionStates"][0]["latestExecution"]
    assert compile_["actionExecutionId"] == str(ActionExecution.objects.filter(
        pipeline=pipeline, action_name="Compile").latest("id").action_execution_id)
    aws = json.loads(surfaces["GetPipelineState (/aws/)"]().content)
    assert aws["stageStates"][2]["latestExecution"]["pipelineExecutionId"] == str(
        deployed.execution_id)
    history = surfaces["execution history page"]().content.decode()
    assert ">#30<" in history and ">#6<" in history and ">#5<" not in history
    assert "Page 1 of 2 · 30 executions" in history
