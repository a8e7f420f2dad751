"""The executions REST API: shapes, lists, commands and their conflicts.

The engine runs synchronously through the ``driver`` (tests/executions/conftest.py):
a request that changes state is made inside ``driver.call`` so the engine's
on-commit effects run, and the actions it dispatches wait in ``driver.pending``
until the test runs them through the real worker code. The queue is the only
thing replaced (the edge of the world).
"""

import io
import uuid
import zipfile

import pytest

from executions.models import ActionExecution, ExecutionEvent, PipelineExecution
from tests.executions.conftest import sim, simple_pipeline

EXECUTION_KEYS = {
    "pipelineExecutionId", "pipelineName", "pipelineVersion", "number", "status",
    "statusSummary", "executionMode", "executionType", "trigger", "artifactRevisions",
    "variables", "startTime", "lastUpdateTime", "endTime", "rollbackMetadata", "stages",
}
SUMMARY_KEYS = {
    "pipelineExecutionId", "number", "status", "statusSummary", "startTime", "lastUpdateTime",
    "endTime", "sourceRevisions", "trigger", "executionMode", "executionType",
    "rollbackMetadata",
}
ACTION_EXECUTION_KEYS = {
    "actionExecutionId", "pipelineExecutionId", "pipelineVersion", "stageName", "actionName",
    "attempt", "status", "startTime", "lastUpdateTime", "endTime", "summary",
    "outputVariables", "externalExecutionUrl", "input", "output",
}


def executions_url(name="demo"):
    return f"/api/pipelines/{name}/executions/"


def execution_url(ex, suffix=""):
    return f"/api/executions/{ex.execution_id}/{suffix}"


def post(driver, client, url, data=None):
    """A command: the engine's on-commit effects run when the request's transaction commits."""
    return driver.call(client.post, url, data or {}, format="json")


def start(driver, client, name="demo", **body):
    response = post(driver, client, executions_url(name), body)
    assert response.status_code == 201, response.content
    return PipelineExecution.objects.get(execution_id=response.json()["pipelineExecutionId"])


def outcome_pipeline(name="demo", mode="SUPERSEDED"):
    """Source → Build → Deploy; Build's outcome is the variable ``outcome``."""
    return simple_pipeline(
        name, mode=mode,
        stages=[("Build", [sim("Compile", Outcome="#{variables.outcome}",
                               inputArtifacts=[{"name": "Src"}],
                               outputArtifacts=[{"name": "Bin"}])]),
                ("Deploy", [sim("Release", inputArtifacts=[{"name": "Bin"}])])],
        variables=[{"name": "outcome", "defaultValue": "Succeeded"},
                   {"name": "tag", "defaultValue": "latest"}],
    )


# --- start ---------------------------------------------------------------------------------------


def test_starting_an_execution_answers_201_with_its_id_and_where_to_read_it(driver, api,
                                                                            operator):
    simple_pipeline()
    response = post(driver, api(operator), executions_url())
    assert response.status_code == 201, response.content
    ex = PipelineExecution.objects.get()
    assert response.json() == {"pipelineExecutionId": str(ex.execution_id)}
    assert response["Location"] == f"/api/executions/{ex.execution_id}/"
    assert (ex.number, ex.status, ex.triggered_by) == (1, "InProgress", operator)
    assert ex.trigger_type == "StartPipelineExecution"
    assert len(driver.pending) == 1  # the source action was handed to a worker


def test_a_start_takes_variables_and_source_revisions_in_codepipeline_s_shape(
        driver, api, operator):
    outcome_pipeline()
    ex = start(driver, api(operator),
               variables=[{"name": "tag", "value": "v1.2"}],
               sourceRevisions=[{"actionName": "Checkout", "revisionType": "COMMIT_ID",
                                 "revisionValue": "abc123"}])
    driver.run()
    body = api(operator).get(execution_url(ex)).json()
    assert body["status"] == "Succeeded"
    assert body["variables"] == [{"name": "outcome", "resolvedValue": "Succeeded"},
                                 {"name": "tag", "resolvedValue": "v1.2"}]
    [revision] = body["artifactRevisions"]
    assert (revision["name"], revision["revisionId"]) == ("Src", "abc123")


def test_an_undeclared_variable_is_refused_with_its_path(driver, api, operator):
    outcome_pipeline()
    response = post(driver, api(operator), executions_url(),
                    {"variables": [{"name": "nope", "value": "x"}]})
    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == [{"path": "variables.nope",
                               "message": '"nope" is not a variable of this pipeline'}]
    assert "nope" in body["detail"]
    assert not PipelineExecution.objects.exists()


def test_a_malformed_start_body_names_each_wrong_field(driver, api, operator):
    simple_pipeline()
    response = post(driver, api(operator), executions_url(),
                    {"variables": [{"value": "x"}],
                     "sourceRevisions": [{"actionName": "Checkout", "revisionType": "BRANCH"}]})
    assert response.status_code == 400
    paths = {e["path"] for e in response.json()["errors"]}
    assert paths == {"variables[0].name", "sourceRevisions[0].revisionType",
                     "sourceRevisions[0].revisionValue"}


def test_a_source_revision_for_an_action_that_is_not_a_source_is_refused(driver, api, operator):
    simple_pipeline()
    response = post(driver, api(operator), executions_url(),
                    {"sourceRevisions": [{"actionName": "Compile", "revisionValue": "abc"}]})
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "sourceRevisions[0].actionName"


def test_a_repeated_client_request_token_answers_the_execution_it_started(driver, api,
                                                                          operator):
    simple_pipeline()
    first = post(driver, api(operator), executions_url(), {"clientRequestToken": "deploy-42"})
    again = post(driver, api(operator), executions_url(), {"clientRequestToken": "deploy-42"})
    other = post(driver, api(operator), executions_url(), {"clientRequestToken": "deploy-43"})
    assert first.status_code == again.status_code == other.status_code == 201
    assert first.json() == again.json() != other.json()
    assert PipelineExecution.objects.count() == 2


def test_starting_a_pipeline_that_does_not_exist_answers_404(driver, api, operator):
    response = post(driver, api(operator), executions_url("ghost"))
    assert response.status_code == 404
    assert response.json() == {"detail": 'No pipeline is named "ghost".'}


# --- list -------------------------------------------------------------------------------------


def test_the_list_is_newest_first_paginated_and_in_the_summary_shape(driver, api, viewer,
                                                                    operator):
    simple_pipeline()
    for _ in range(3):
        start(driver, api(operator))
        driver.run()
    response = api(viewer).get(executions_url(), {"limit": 2})
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 3 and page["next"] and page["previous"] is None
    assert [row["number"] for row in page["results"]] == [3, 2]
    row = page["results"][0]
    assert set(row) == SUMMARY_KEYS
    assert row["trigger"] == {"triggerType": "StartPipelineExecution", "triggerDetail": "oscar"}
    assert row["status"] == "Succeeded" and row["executionMode"] == "SUPERSEDED"
    assert row["sourceRevisions"][0]["actionName"] == "Checkout"
    assert row["endTime"] is not None and row["rollbackMetadata"] is None
    rest = api(viewer).get(page["next"]).json()
    assert [r["number"] for r in rest["results"]] == [1]


def test_the_list_filters_by_status_and_refuses_an_unknown_one(driver, api, viewer, operator):
    outcome_pipeline()
    start(driver, api(operator))
    driver.run()
    start(driver, api(operator), variables=[{"name": "outcome", "value": "Failed"}])
    driver.run()
    start(driver, api(operator))                      # waits in Source
    client = api(viewer)

    def numbers(**query):
        return [r["number"] for r in client.get(executions_url(), query).json()["results"]]

    assert numbers(status="Failed") == [2]
    assert numbers(status="InProgress") == [3]
    assert client.get(f"{executions_url()}?status=Succeeded&status=Failed").json()[
        "count"] == 2
    bad = client.get(executions_url(), {"status": "Done"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["path"] == "status"


def test_the_list_shows_only_that_pipeline_s_executions(driver, api, viewer, operator):
    simple_pipeline("demo")
    simple_pipeline("other")
    start(driver, api(operator), "other")
    assert api(viewer).get(executions_url("demo")).json()["count"] == 0
    assert api(viewer).get(executions_url("ghost")).status_code == 404


# --- detail ----------------------------------------------------------------------------------


def test_an_execution_answers_in_get_pipeline_execution_shape_with_stages_and_actions(
        driver, api, viewer, operator):
    outcome_pipeline()
    ex = start(driver, api(operator))
    driver.run()
    body = api(viewer).get(execution_url(ex)).json()
    assert set(body) == EXECUTION_KEYS
    assert body["pipelineExecutionId"] == str(ex.execution_id)
    assert (body["pipelineName"], body["pipelineVersion"], body["number"]) == ("demo", 1, 1)
    assert (body["status"], body["statusSummary"]) == ("Succeeded", "Succeeded")
    assert (body["executionMode"], body["executionType"]) == ("SUPERSEDED", "STANDARD")
    assert body["trigger"] == {"triggerType": "StartPipelineExecution", "triggerDetail": "oscar"}
    assert [s["stageName"] for s in body["stages"]] == ["Source", "Build", "Deploy"]
    build = body["stages"][1]
    assert (build["status"], build["attempt"], build["retryMode"]) == ("Succeeded", 1, None)
    [compile_] = build["actions"]
    latest = compile_["latestExecution"]
    assert compile_["actionName"] == "Compile" and compile_["runOrder"] == 1
    assert latest["status"] == "Succeeded" and latest["attempt"] == 1
    ae = ActionExecution.objects.get(action_name="Compile")
    assert latest["actionExecutionId"] == str(ae.action_execution_id)
    assert latest["endTime"] is not None


def test_a_stage_not_yet_entered_shows_no_status_and_no_action_executions(driver, api,
                                                                          operator):
    simple_pipeline()
    ex = start(driver, api(operator))
    body = api(operator).get(execution_url(ex)).json()
    source, build, _deploy = body["stages"]
    assert source["status"] == "InProgress"
    assert source["actions"][0]["latestExecution"]["status"] == "InProgress"
    assert source["actions"][0]["latestExecution"]["endTime"] is None
    assert build["status"] is None and build["attempt"] is None
    assert build["actions"] == [{"actionName": "Compile", "runOrder": 1,
                                 "latestExecution": None}]
    assert body["endTime"] is None


@pytest.mark.parametrize("execution_id", ["not-a-uuid", "0b9e3c1e-5d0a-4c55-9f4e-6c1f2a7d8e90"],
                         ids=["not-a-uuid", "unknown-uuid"])
def test_an_unknown_execution_answers_404_in_the_error_body(api, viewer, execution_id):
    response = api(viewer).get(f"/api/executions/{execution_id}/")
    assert response.status_code == 404
    assert response.json() == {"detail": f'No execution has the id "{execution_id}".'}


# --- stop -------------------------------------------------------------------------------------


def waiting_pipeline():
    """Source → Build, whose action waits to be completed from outside (it holds a worker)."""
    return simple_pipeline(stages=[("Build", [sim("Compile", Outcome="Waiting")])])


def test_stop_and_wait_leaves_a_running_action_to_finish_and_a_second_stop_is_a_conflict(
        driver, api, operator):
    waiting_pipeline()
    ex = start(driver, api(operator))
    driver.run()                                   # Compile now waits, InProgress
    response = post(driver, api(operator), execution_url(ex, "stop/"),
                    {"abandon": False, "reason": "hold on"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["statusSummary"]) == ("Stopping", "hold on")
    assert body["stages"][1]["status"] == "Stopping"
    assert body["stages"][1]["actions"][0]["latestExecution"]["status"] == "InProgress"

    again = post(driver, api(operator), execution_url(ex, "stop/"), {"abandon": False})
    assert again.status_code == 409
    assert again.json() == {"detail": f"Execution #{ex.number} is already stopping; stop and "
                            "abandon to end its running actions at once."}


def test_stop_and_abandon_ends_running_actions_at_once(driver, api, operator):
    waiting_pipeline()
    ex = start(driver, api(operator))
    driver.run()
    post(driver, api(operator), execution_url(ex, "stop/"), {})        # stop and wait first
    response = post(driver, api(operator), execution_url(ex, "stop/"),
                    {"abandon": True, "reason": "enough"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "Stopped" and body["endTime"] is not None
    assert body["stages"][1]["actions"][0]["latestExecution"]["status"] == "Abandoned"


def test_stopping_an_execution_that_has_ended_answers_409(driver, api, operator):
    simple_pipeline()
    ex = start(driver, api(operator))
    driver.run()
    response = post(driver, api(operator), execution_url(ex, "stop/"), {"abandon": True})
    assert response.status_code == 409
    assert response.json() == {"detail": f"Execution #{ex.number} has already ended "
                               "(Succeeded): it cannot be stopped."}


def test_a_stop_body_of_the_wrong_type_answers_400(driver, api, operator):
    simple_pipeline()
    ex = start(driver, api(operator))
    response = post(driver, api(operator), execution_url(ex, "stop/"), {"abandon": "maybe"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["path"] == "abandon"
    assert PipelineExecution.objects.get().status == "InProgress"


# --- retry ------------------------------------------------------------------------------------


def failed_in_build(driver, client):
    outcome_pipeline()
    ex = start(driver, client, variables=[{"name": "outcome", "value": "Failed"}])
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Failed"
    return ex


def test_retrying_the_failed_stage_starts_its_next_attempt(driver, api, operator):
    ex = failed_in_build(driver, api(operator))
    response = post(driver, api(operator), execution_url(ex, "stages/Build/retry/"),
                    {"retryMode": "FAILED_ACTIONS"})
    assert response.status_code == 200, response.content
    assert response.json() == {"pipelineExecutionId": str(ex.execution_id),
                               "stageName": "Build", "attempt": 2, "status": "InProgress"}
    body = api(operator).get(execution_url(ex)).json()
    assert body["status"] == "InProgress"
    assert (body["stages"][1]["attempt"], body["stages"][1]["retryMode"]) == (
        2, "FAILED_ACTIONS")
    assert body["stages"][1]["actions"][0]["latestExecution"]["attempt"] == 2


def test_retrying_a_superseded_execution_answers_409_naming_the_newer_one(driver, api,
                                                                          operator):
    simple_pipeline()
    client = api(operator)
    first = start(driver, client)
    driver.run_action("Source", "Checkout", first)          # first holds Build
    second = start(driver, client)
    driver.run_action("Source", "Checkout", second)         # second waits at Build
    third = start(driver, client)
    driver.run_action("Source", "Checkout", third)          # ... and is superseded
    response = post(driver, client, execution_url(second, "stages/Source/retry/"),
                    {"retryMode": "ALL_ACTIONS"})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Execution #2 was superseded by #3: it cannot be retried."}


def test_retrying_after_a_newer_execution_entered_the_stage_answers_409(driver, api, operator):
    ex = failed_in_build(driver, api(operator))
    newer = start(driver, api(operator))
    driver.run()
    newer.refresh_from_db()
    assert newer.status == "Succeeded"
    response = post(driver, api(operator), execution_url(ex, "stages/Build/retry/"),
                    {"retryMode": "FAILED_ACTIONS"})
    assert response.status_code == 409
    assert "#2 has entered stage \"Build\" since" in response.json()["detail"]


def test_retrying_a_running_execution_answers_409(driver, api, operator):
    simple_pipeline()
    ex = start(driver, api(operator))
    response = post(driver, api(operator), execution_url(ex, "stages/Source/retry/"),
                    {"retryMode": "ALL_ACTIONS"})
    assert response.status_code == 409
    assert "only a Failed or Stopped execution can be retried" in response.json()["detail"]


def test_a_retry_needs_a_known_mode_and_stage(driver, api, operator):
    ex = failed_in_build(driver, api(operator))
    bad_mode = post(driver, api(operator), execution_url(ex, "stages/Build/retry/"),
                    {"retryMode": "SOME_ACTIONS"})
    assert bad_mode.status_code == 400
    assert bad_mode.json()["errors"][0]["path"] == "retryMode"
    missing = post(driver, api(operator), execution_url(ex, "stages/Build/retry/"), {})
    assert missing.status_code == 400
    no_stage = post(driver, api(operator), execution_url(ex, "stages/Nope/retry/"),
                    {"retryMode": "ALL_ACTIONS"})
    assert no_stage.status_code == 404
    assert no_stage.json() == {"detail": 'The pipeline has no stage "Nope".'}


# --- rollback ---------------------------------------------------------------------------------


def test_rolling_a_stage_back_starts_a_rollback_execution_of_the_target(driver, api, operator):
    outcome_pipeline()
    client = api(operator)
    target = start(driver, client, variables=[{"name": "tag", "value": "good"}])
    driver.run()
    start(driver, client, variables=[{"name": "tag", "value": "bad"}])
    driver.run()
    response = post(driver, client, "/api/pipelines/demo/stages/Deploy/rollback/",
                    {"targetPipelineExecutionId": str(target.execution_id)})
    assert response.status_code == 201, response.content
    rollback = PipelineExecution.objects.get(
        execution_id=response.json()["pipelineExecutionId"])
    driver.run()
    body = client.get(execution_url(rollback)).json()
    assert (body["executionType"], body["status"], body["number"]) == (
        "ROLLBACK", "Succeeded", 3)
    assert body["trigger"]["triggerType"] == "ManualRollback"
    assert body["rollbackMetadata"] == {
        "rollbackTargetPipelineExecutionId": str(target.execution_id), "stageName": "Deploy"}
    assert {"name": "tag", "resolvedValue": "good"} in body["variables"]
    assert [s["status"] for s in body["stages"]] == [None, None, "Succeeded"]


def test_a_rollback_of_the_source_stage_or_to_a_failed_target_is_refused(driver, api,
                                                                         operator):
    failed = failed_in_build(driver, api(operator))
    url = "/api/pipelines/demo/stages/{}/rollback/"
    source = post(driver, api(operator), url.format("Source"),
                  {"targetPipelineExecutionId": str(failed.execution_id)})
    assert source.status_code == 400
    assert source.json()["errors"] == [{"path": "stageName",
                                        "message": "the source stage cannot be rolled back"}]
    build = post(driver, api(operator), url.format("Build"),
                 {"targetPipelineExecutionId": str(failed.execution_id)})
    assert build.status_code == 409
    assert "did not succeed in stage \"Build\"" in build.json()["detail"]
    unknown = post(driver, api(operator), url.format("Build"),
                   {"targetPipelineExecutionId": str(uuid.uuid4())})
    assert unknown.status_code == 404
    assert PipelineExecution.objects.count() == 1


# --- transitions and pipeline state --------------------------------------------------------------


def test_disabling_a_transition_holds_the_next_execution_inbound_and_enabling_lets_it_in(
        driver, api, operator, viewer):
    simple_pipeline()
    client = api(operator)
    url = "/api/pipelines/demo/stages/Build/transition/"
    response = post(driver, client, url, {"enabled": False, "reason": "freeze"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["stageName"] == "Build" and body["changed"] is True
    state = body["inboundTransitionState"]
    assert (state["enabled"], state["disabledReason"], state["lastChangedBy"]) == (
        False, "freeze", "oscar")
    assert state["lastChangedAt"] is not None
    assert post(driver, client, url, {"enabled": False, "reason": "freeze"}).json()[
        "changed"] is False

    ex = start(driver, client)
    driver.run()
    build = api(viewer).get("/api/pipelines/demo/state/").json()["stageStates"][1]
    assert build["inboundTransitionState"]["enabled"] is False
    assert build["inboundExecutions"] == [{
        "pipelineExecutionId": str(ex.execution_id), "status": "InProgress",
        "waitingReason": "The transition into the stage is disabled",
        "waitingSince": build["inboundExecutions"][0]["waitingSince"]}]
    assert build["inboundExecution"] == build["inboundExecutions"][0]
    assert build["latestExecution"] is None

    assert post(driver, client, url, {"enabled": True}).json()["changed"] is True
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Succeeded"


def test_a_transition_change_is_refused_without_a_reason_into_the_first_stage_or_a_missing_one(
        driver, api, operator):
    simple_pipeline()
    client = api(operator)
    no_reason = post(driver, client, "/api/pipelines/demo/stages/Build/transition/",
                     {"enabled": False})
    assert no_reason.status_code == 400
    assert no_reason.json()["detail"] == "A reason is required to disable a transition."
    assert no_reason.json()["errors"]
    first = post(driver, client, "/api/pipelines/demo/stages/Source/transition/",
                 {"enabled": False, "reason": "x"})
    assert first.status_code == 400
    assert first.json()["errors"] == [{"path": "stageName",
                                       "message": "the first stage has no inbound transition"}]
    missing = post(driver, client, "/api/pipelines/demo/stages/Nope/transition/",
                   {"enabled": False, "reason": "x"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": 'Pipeline "demo" has no stage "Nope".'}
    body = post(driver, client, "/api/pipelines/demo/stages/Build/transition/", {"reason": "x"})
    assert body.status_code == 400 and body.json()["errors"][0]["path"] == "enabled"


def test_the_pipeline_state_shows_each_stage_s_latest_execution_and_actions(driver, api,
                                                                           viewer, operator):
    waiting_pipeline()
    first = start(driver, api(operator))
    driver.run()                                    # first waits in Build (Compile waiting)
    second = start(driver, api(operator))
    driver.run()                                    # second waits inbound at Build
    response = api(viewer).get("/api/pipelines/demo/state/")
    assert response.status_code == 200
    state = response.json()
    assert (state["pipelineName"], state["pipelineVersion"]) == ("demo", 1)
    assert {"created", "updated"} <= set(state)
    source, build = state["stageStates"]
    assert set(source) == {"stageName", "inboundTransitionState", "inboundExecution",
                           "inboundExecutions", "latestExecution", "actionStates"}
    assert source["latestExecution"] == {"pipelineExecutionId": str(second.execution_id),
                                         "status": "Succeeded"}
    assert source["actionStates"][0]["currentRevision"]["revisionId"]
    assert build["latestExecution"] == {"pipelineExecutionId": str(first.execution_id),
                                        "status": "InProgress"}
    assert [e["pipelineExecutionId"] for e in build["inboundExecutions"]] == [
        str(second.execution_id)]
    assert build["inboundExecutions"][0]["waitingReason"] == (
        "The stage is in use by another execution")
    [compile_] = build["actionStates"]
    waiting = ActionExecution.objects.get(action_name="Compile")
    assert compile_["latestExecution"]["actionExecutionId"] == str(waiting.action_execution_id)
    assert compile_["latestExecution"]["status"] == "InProgress"
    assert compile_["latestExecution"]["token"] == waiting.token and waiting.token


def test_the_state_of_a_missing_pipeline_answers_404(api, viewer):
    assert api(viewer).get("/api/pipelines/ghost/state/").status_code == 404


# --- action executions ----------------------------------------------------------------------------


def test_action_executions_list_every_attempt_newest_first_with_input_and_output(
        driver, api, viewer, operator):
    ex = failed_in_build(driver, api(operator))
    post(driver, api(operator), execution_url(ex, "stages/Build/retry/"),
         {"retryMode": "FAILED_ACTIONS"})
    response = api(viewer).get(execution_url(ex, "actions/"))
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 3
    rows = page["results"]
    assert [(r["stageName"], r["actionName"], r["attempt"], r["status"]) for r in rows] == [
        ("Build", "Compile", 2, "InProgress"),
        ("Build", "Compile", 1, "Failed"),
        ("Source", "Checkout", 1, "Succeeded"),
    ]
    assert all(set(r) == ACTION_EXECUTION_KEYS for r in rows)
    running, failed, source = rows
    assert running["endTime"] is None and failed["endTime"] is not None
    assert failed["pipelineExecutionId"] == str(ex.execution_id)
    assert failed["pipelineVersion"] == 1
    assert failed["summary"] == "Simulated failure"
    assert failed["input"]["actionTypeId"] == {"category": "Build", "owner": "Custom",
                                               "provider": "Simulate", "version": "1"}
    assert failed["input"]["configuration"] == {"Outcome": "#{variables.outcome}"}
    assert failed["input"]["resolvedConfiguration"] == {"Outcome": "Failed"}
    assert failed["input"]["inputArtifacts"] == [{"name": "Src"}]
    # Not yet claimed by a worker: nothing resolved yet.
    assert running["input"]["resolvedConfiguration"] is None
    [src] = source["output"]["outputArtifacts"]
    assert src["name"] == "Src" and len(src["sha256"]) == 64 and src["fileCount"] == 1
    assert source["outputVariables"]["CommitId"]
    assert source["output"]["outputVariables"] == source["outputVariables"]
    assert source["output"]["executionResult"]["externalExecutionSummary"] == source["summary"]


def test_action_executions_filter_by_stage_action_and_status(driver, api, viewer, operator):
    failed_in_build(driver, api(operator))
    ex = PipelineExecution.objects.get()
    client = api(viewer)

    def names(**query):
        return [r["actionName"] for r in client.get(execution_url(ex, "actions/"),
                                                    query).json()["results"]]

    assert names(stageName="Source") == ["Checkout"]
    assert names(status="Failed") == ["Compile"]
    assert names(actionName="Nope") == []


# --- artifacts ------------------------------------------------------------------------------------


def test_an_artifact_downloads_as_its_zip_with_a_safe_file_name(driver, api, viewer, operator):
    outcome_pipeline()
    ex = start(driver, api(operator))
    driver.run()
    response = api(viewer).get(execution_url(ex, "artifacts/Src/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="demo-1-Src.zip"'
    content = b"".join(response.streaming_content)
    artifact = ex.artifacts.get(name="Src")
    assert response["ETag"] == f'"{artifact.sha256}"'
    assert int(response["Content-Length"]) == len(content) == artifact.size
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.namelist() == ["Src.txt"]
        assert archive.read("Src.txt").decode() == f"Src of execution {ex.execution_id}\n"


def test_an_artifact_the_execution_did_not_produce_answers_404(driver, api, viewer, operator):
    simple_pipeline()
    ex = start(driver, api(operator))
    response = api(viewer).get(execution_url(ex, "artifacts/Src/"))   # not produced yet
    assert response.status_code == 404
    assert response.json() == {"detail": 'Execution #1 has no artifact "Src".'}
    assert api(viewer).get(execution_url(ex, "artifacts/..%2F..%2Fetc/")).status_code == 404


# --- events -----------------------------------------------------------------------------------


def test_events_replay_in_sequence_and_resume_after_the_last_one_seen(driver, api, viewer,
                                                                     operator):
    simple_pipeline()
    ex = start(driver, api(operator))
    driver.run()
    client = api(viewer)
    body = client.get(execution_url(ex, "events/")).json()
    events = body["results"]
    assert body["count"] == len(events) == 14
    sequences = [e["sequence"] for e in events]
    assert sequences == sorted(sequences)
    assert (events[0]["kind"], events[0]["status"]) == ("PipelineExecution", "InProgress")
    assert (events[-1]["kind"], events[-1]["status"]) == ("PipelineExecution", "Succeeded")
    assert {e["pipelineExecutionId"] for e in events} == {str(ex.execution_id)}
    action_event = next(e for e in events if e["actionName"] == "Compile")
    compile_ = ActionExecution.objects.get(action_name="Compile")
    assert action_event["actionExecutionId"] == str(compile_.action_execution_id)
    assert set(action_event) == {"sequence", "time", "kind", "pipelineExecutionId",
                                 "stageName", "actionName", "actionExecutionId",
                                 "previousStatus", "status", "summary", "data"}

    rest = client.get(execution_url(ex, "events/"), {"after": sequences[9]}).json()
    assert [e["sequence"] for e in rest["results"]] == sequences[10:]
    assert client.get(execution_url(ex, "events/"), {"after": "x"}).status_code == 400


def test_events_of_other_executions_are_not_shown(driver, api, viewer, operator):
    simple_pipeline()
    first = start(driver, api(operator))
    start(driver, api(operator))
    ids = {e["pipelineExecutionId"]
           for e in api(viewer).get(execution_url(first, "events/")).json()["results"]}
    assert ids == {str(first.execution_id)}
    assert ExecutionEvent.objects.exclude(execution=first).exists()


# --- the service errors keep the one error body -----------------------------------------------


def test_every_command_error_is_the_one_error_body(driver, api, operator):
    simple_pipeline()
    ex = start(driver, api(operator))
    driver.run()
    conflict = post(driver, api(operator), execution_url(ex, "stop/"))
    invalid = post(driver, api(operator), executions_url(),
                   {"variables": [{"name": "x", "value": "y"}]})
    missing = post(driver, api(operator), execution_url(ex, "stages/Nope/retry/"),
                   {"retryMode": "ALL_ACTIONS"})
    assert (conflict.status_code, invalid.status_code, missing.status_code) == (409, 400, 404)
    assert set(conflict.json()) == {"detail"} == set(missing.json())
    assert set(invalid.json()) == {"detail", "errors"}
