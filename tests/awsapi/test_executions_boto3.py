"""CodePipeline's execution operations, driven through real boto3 against a live server.

The engine runs for real: a worker thread (``conftest.worker``) runs every
action the engine dispatches through the real task body, standing in for the
django-q2 cluster. The tests watch executions the way a script would, by
polling GetPipelineState and GetPipelineExecution.
"""

import threading
import uuid
from datetime import datetime

import pytest

from approvals.models import ApprovalDecision
from executions.models import PipelineExecution
from tests.approvals.conftest import manual
from tests.awsapi.conftest import wait_for
from tests.executions.conftest import sim

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def checkout(**config) -> dict:
    return sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}],
               namespace="SourceVariables", **config)


def commit(value: str) -> list[dict]:
    """The sourceRevisions that make the Simulate source resolve ``value``."""
    return [{"actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": value}]


def stage(state: dict, name: str) -> dict:
    return next(s for s in state["stageStates"] if s["stageName"] == name)


def action_state(state: dict, stage_name: str, action_name: str) -> dict:
    return next(a for a in stage(state, stage_name)["actionStates"]
                if a["actionName"] == action_name)


def status_of(client, pipeline: str, execution_id: str) -> str:
    return client.get_pipeline_execution(
        pipelineName=pipeline, pipelineExecutionId=execution_id)["pipelineExecution"]["status"]


def finished(client, pipeline: str, execution_id: str, timeout: float = 30.0) -> str:
    """Wait until the execution has ended; its final status."""
    return wait_for(
        lambda: (s := status_of(client, pipeline, execution_id)) not in ("InProgress",
                                                                        "Stopping") and s,
        timeout=timeout, what=f"execution {execution_id} to end")


def actions_of(client, pipeline: str, execution_id: str) -> list[dict]:
    return client.list_action_executions(
        pipelineName=pipeline, filter={"pipelineExecutionId": execution_id}
    )["actionExecutionDetails"]


def release_definition(aws_definition) -> dict:
    """Source → Build (Shell) → Production (a Manual approval, then a Simulate deploy)."""
    build = {
        "name": "Compile",
        "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "Shell",
                         "version": "1"},
        "inputArtifacts": [{"name": "Src"}],
        "namespace": "BuildVariables",
        "commands": ["grep -q 'of execution' Src.txt",
                     'echo "Greeting=hello #{variables.Target}" >> "$CONVEYOR_OUTPUT"'],
    }
    return aws_definition(
        "shop",
        variables=[{"name": "Target", "defaultValue": "staging"}],
        stages=[
            ("Source", [checkout()]),
            ("Build", [build]),
            ("Production", [manual("Approve", CustomData="Ship #{SourceVariables.CommitId}?"),
                            sim("Release", "Deploy", runOrder=2)]),
        ],
    )


# --- the whole way: start, watch, approve, succeed ------------------------------------


def test_a_release_runs_waits_for_approval_by_token_and_succeeds(
        aws, owner, operator, reviewer, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=release_definition(aws_definition))
    client = aws(operator)
    started = client.start_pipeline_execution(
        name="shop", variables=[{"name": "Target", "value": "production"}],
        sourceRevisions=commit("c0ffee1"))
    execution_id = started["pipelineExecutionId"]
    assert uuid.UUID(execution_id)

    def approval_waiting():
        state = client.get_pipeline_state(name="shop")
        latest = action_state(state, "Production", "Approve").get("latestExecution")
        return state if latest and latest.get("token") else None

    state = wait_for(approval_waiting, what="the approval to wait")
    assert state["pipelineName"] == "shop" and state["pipelineVersion"] == 1
    assert isinstance(state["created"], datetime)
    for name in ("Source", "Build"):
        assert stage(state, name)["latestExecution"] == {
            "pipelineExecutionId": execution_id, "status": "Succeeded", "type": "STANDARD"}
        assert stage(state, name)["inboundTransitionState"] == {"enabled": True}
    production = stage(state, "Production")
    assert production["latestExecution"]["status"] == "InProgress"
    assert "inboundExecution" not in production and production["inboundExecutions"] == []
    approve = action_state(state, "Production", "Approve")["latestExecution"]
    assert approve["status"] == "InProgress"
    assert approve["summary"] == "Waiting for 1 approval from any reviewer"
    assert isinstance(approve["lastStatusChange"], datetime)
    token = approve["token"]
    assert uuid.UUID(token)  # CodePipeline's ApprovalToken is a UUID
    assert "latestExecution" not in action_state(state, "Production", "Release")
    assert action_state(state, "Source", "Checkout")["currentRevision"] == {
        "revisionId": "c0ffee1"}

    # Only a reviewer may decide, and only with the token of that action.
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.put_approval_result(pipelineName="shop", stageName="Production",
                                   actionName="Approve", token=token,
                                   result={"status": "Approved", "summary": "me"})
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    decider = aws(reviewer)
    with pytest.raises(decider.exceptions.InvalidApprovalTokenException):
        decider.put_approval_result(pipelineName="shop", stageName="Production",
                                    actionName="Approve", token=str(uuid.uuid4()),
                                    result={"status": "Approved", "summary": "guess"})
    assert not ApprovalDecision.objects.exists()

    answer = decider.put_approval_result(
        pipelineName="shop", stageName="Production", actionName="Approve", token=token,
        result={"status": "Approved", "summary": "Looks good"})
    decision = ApprovalDecision.objects.get()
    assert decision.surface == "aws" and decision.user == reviewer
    assert abs((answer["approvedAt"] - decision.decided_at).total_seconds()) < 0.01

    assert finished(client, "shop", execution_id) == "Succeeded"
    execution = client.get_pipeline_execution(
        pipelineName="shop", pipelineExecutionId=execution_id)["pipelineExecution"]
    assert execution["pipelineName"] == "shop" and execution["pipelineVersion"] == 1
    assert execution["pipelineExecutionId"] == execution_id
    assert execution["executionMode"] == "SUPERSEDED"
    assert execution["executionType"] == "STANDARD"
    assert "rollbackMetadata" not in execution
    assert execution["trigger"] == {"triggerType": "StartPipelineExecution",
                                    "triggerDetail": "oscar"}
    assert execution["variables"] == [{"name": "Target", "resolvedValue": "production"}]
    [revision] = execution["artifactRevisions"]
    assert revision["name"] == "Src" and revision["revisionId"] == "c0ffee1"
    assert revision["revisionSummary"] == "Simulated revision"
    assert isinstance(revision["created"], datetime)

    # A decided approval cannot be decided again.
    with pytest.raises(decider.exceptions.ApprovalAlreadyCompletedException):
        decider.put_approval_result(pipelineName="shop", stageName="Production",
                                    actionName="Approve", token=token,
                                    result={"status": "Rejected", "summary": "too late"})

    state = client.get_pipeline_state(name="shop")
    assert stage(state, "Production")["latestExecution"]["status"] == "Succeeded"
    approved = action_state(state, "Production", "Approve")["latestExecution"]
    assert approved["status"] == "Succeeded" and "token" not in approved
    assert approved["summary"] == "Approved by rita: Looks good"


def approval_token(client, pipeline: str, execution_id: str) -> str:
    """Wait until the approval of ``execution_id`` waits; its token, from GetPipelineState."""
    def token():
        state = client.get_pipeline_state(name=pipeline)
        latest = action_state(state, "Production", "Approve").get("latestExecution", {})
        return latest.get("token") if stage(state, "Production").get(
            "latestExecution", {}).get("pipelineExecutionId") == execution_id else None
    return wait_for(token, what=f"the approval of {execution_id} to wait")


def test_a_rejection_fails_the_execution_and_a_superseded_approval_is_already_completed(
        aws, owner, operator, reviewer, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=release_definition(aws_definition))
    client, decider = aws(operator), aws(reviewer)
    rejected = client.start_pipeline_execution(name="shop")["pipelineExecutionId"]
    decider.put_approval_result(
        pipelineName="shop", stageName="Production", actionName="Approve",
        token=approval_token(client, "shop", rejected),
        result={"status": "Rejected", "summary": "Not on a Friday"})
    assert finished(client, "shop", rejected) == "Failed"
    state = client.get_pipeline_state(name="shop")
    assert action_state(state, "Production", "Approve")["latestExecution"]["summary"] == \
        "Not on a Friday"
    assert "latestExecution" not in action_state(state, "Production", "Release")

    # An older execution waiting for approval gives way to a newer one arriving
    # (Conveyor's docs/semantics.md §10): its token no longer decides anything.
    older = client.start_pipeline_execution(name="shop")["pipelineExecutionId"]
    stale = approval_token(client, "shop", older)
    client.disable_stage_transition(pipelineName="shop", stageName="Production",
                                    transitionType="Inbound", reason="Hold the newer one")
    newer = client.start_pipeline_execution(name="shop")["pipelineExecutionId"]
    wait_for(lambda: stage(client.get_pipeline_state(name="shop"), "Production").get(
        "inboundExecution", {}).get("pipelineExecutionId") == newer)
    client.enable_stage_transition(pipelineName="shop", stageName="Production",
                                   transitionType="Inbound")
    fresh = approval_token(client, "shop", newer)
    assert status_of(client, "shop", older) == "Superseded"
    with pytest.raises(decider.exceptions.ApprovalAlreadyCompletedException) as caught:
        decider.put_approval_result(pipelineName="shop", stageName="Production",
                                    actionName="Approve", token=stale,
                                    result={"status": "Approved", "summary": "late"})
    assert "Superseded" in caught.value.response["Error"]["Message"]
    with pytest.raises(decider.exceptions.StageNotFoundException):
        decider.put_approval_result(pipelineName="shop", stageName="Staging",
                                    actionName="Approve", token=fresh,
                                    result={"status": "Approved", "summary": ""})
    with pytest.raises(decider.exceptions.ActionNotFoundException):
        decider.put_approval_result(pipelineName="shop", stageName="Production",
                                    actionName="Sign-off", token=fresh,
                                    result={"status": "Approved", "summary": ""})
    decider.put_approval_result(pipelineName="shop", stageName="Production",
                                actionName="Approve", token=fresh,
                                result={"status": "Approved", "summary": ""})
    assert finished(client, "shop", newer) == "Succeeded"


def test_list_action_executions_gives_inputs_and_outputs_in_codepipelines_shape(
        aws, owner, operator, reviewer, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=release_definition(aws_definition))
    client = aws(operator)
    execution_id = client.start_pipeline_execution(
        name="shop", variables=[{"name": "Target", "value": "production"}],
        sourceRevisions=commit("c0ffee1"))["pipelineExecutionId"]
    token = wait_for(lambda: action_state(client.get_pipeline_state(name="shop"), "Production",
                                          "Approve").get("latestExecution", {}).get("token"))
    aws(reviewer).put_approval_result(pipelineName="shop", stageName="Production",
                                      actionName="Approve", token=token,
                                      result={"status": "Approved", "summary": ""})
    assert finished(client, "shop", execution_id) == "Succeeded"

    details = actions_of(client, "shop", execution_id)
    # Newest first, as AWS lists them.
    assert [d["actionName"] for d in details] == ["Release", "Approve", "Compile", "Checkout"]
    assert {d["pipelineExecutionId"] for d in details} == {execution_id}
    assert all(d["status"] == "Succeeded" and d["pipelineVersion"] == 1 for d in details)
    release, approve, compile_, source = details
    assert source["input"]["actionTypeId"] == {"category": "Source", "owner": "Custom",
                                               "provider": "Simulate", "version": "1"}
    assert source["input"]["namespace"] == "SourceVariables"
    assert source["input"]["region"] == "us-east-1"
    assert source["input"]["inputArtifacts"] == []
    assert source["output"]["outputArtifacts"] == [{"name": "Src"}]
    assert source["output"]["outputVariables"] == {"CommitId": "c0ffee1"}
    assert compile_["input"]["inputArtifacts"] == [{"name": "Src"}]
    assert compile_["output"]["outputVariables"] == {"Greeting": "hello production"}
    assert compile_["startTime"] <= compile_["lastUpdateTime"]
    assert approve["input"]["configuration"] == {
        "CustomData": "Ship #{SourceVariables.CommitId}?"}
    assert approve["input"]["resolvedConfiguration"] == {"CustomData": "Ship c0ffee1?"}
    assert approve["output"]["executionResult"]["externalExecutionSummary"] == \
        "Approved by rita"
    assert approve["output"]["executionResult"]["externalExecutionUrl"].startswith(
        "https://conveyor.example.com/")
    assert release["input"]["actionTypeId"]["category"] == "Deploy"

    # Pages of two, by nextToken and through botocore's paginator.
    first = client.list_action_executions(pipelineName="shop", maxResults=2)
    assert [d["actionName"] for d in first["actionExecutionDetails"]] == ["Release", "Approve"]
    second = client.list_action_executions(pipelineName="shop", maxResults=2,
                                           nextToken=first["nextToken"])
    assert [d["actionName"] for d in second["actionExecutionDetails"]] == ["Compile",
                                                                          "Checkout"]
    assert "nextToken" not in second
    pages = client.get_paginator("list_action_executions").paginate(
        pipelineName="shop", PaginationConfig={"PageSize": 3})
    assert len([d for page in pages for d in page["actionExecutionDetails"]]) == 4


# --- SUPERSEDED, transitions --------------------------------------------------------------


def three_stages(aws_definition, name: str, **fields) -> dict:
    return aws_definition(name, stages=[("Source", [checkout()]),
                                        ("Build", [sim("Compile")]),
                                        ("Deploy", [sim("Release", "Deploy")])], **fields)


def test_a_newer_execution_supersedes_the_one_waiting_at_a_disabled_transition(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "hold"))
    client = aws(operator)
    client.disable_stage_transition(pipelineName="hold", stageName="Build",
                                    transitionType="Inbound", reason="Freeze (release day)")
    first = client.start_pipeline_execution(name="hold")["pipelineExecutionId"]

    def inbound_at_build(execution_id):
        def check():
            state = client.get_pipeline_state(name="hold")
            build = stage(state, "Build")
            return state if build.get("inboundExecution", {}).get(
                "pipelineExecutionId") == execution_id else None
        return check

    state = wait_for(inbound_at_build(first), what="the first execution to wait at Build")
    build = stage(state, "Build")
    assert build["inboundExecution"] == {"pipelineExecutionId": first, "status": "InProgress",
                                         "type": "STANDARD"}
    assert build["inboundExecutions"] == [build["inboundExecution"]]
    transition = build["inboundTransitionState"]
    assert transition["enabled"] is False
    assert transition["disabledReason"] == "Freeze (release day)"
    assert transition["lastChangedBy"] == "oscar"
    assert isinstance(transition["lastChangedAt"], datetime)
    assert "latestExecution" not in build

    second = client.start_pipeline_execution(name="hold")["pipelineExecutionId"]
    wait_for(inbound_at_build(second), what="the second execution to replace the first")
    assert status_of(client, "hold", first) == "Superseded"
    summaries = client.list_pipeline_executions(pipelineName="hold")[
        "pipelineExecutionSummaries"]
    assert [(s["pipelineExecutionId"], s["status"]) for s in summaries] == [
        (second, "InProgress"), (first, "Superseded")]

    client.enable_stage_transition(pipelineName="hold", stageName="Build",
                                   transitionType="Inbound")
    assert finished(client, "hold", second) == "Succeeded"
    state = client.get_pipeline_state(name="hold")
    assert stage(state, "Build")["inboundTransitionState"]["enabled"] is True
    assert stage(state, "Deploy")["latestExecution"]["pipelineExecutionId"] == second
    assert status_of(client, "hold", first) == "Superseded"


def test_an_outbound_transition_is_the_next_stages_inbound_and_bad_requests_are_refused(
        aws, owner, operator, viewer, aws_definition):
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "gates"))
    client = aws(operator)
    client.disable_stage_transition(pipelineName="gates", stageName="Source",
                                    transitionType="Outbound", reason="Audit")
    state = client.get_pipeline_state(name="gates")
    assert stage(state, "Build")["inboundTransitionState"]["enabled"] is False
    assert stage(state, "Build")["inboundTransitionState"]["disabledReason"] == "Audit"
    client.enable_stage_transition(pipelineName="gates", stageName="Source",
                                   transitionType="Outbound")
    assert stage(client.get_pipeline_state(name="gates"), "Build")[
        "inboundTransitionState"]["enabled"] is True

    with pytest.raises(client.exceptions.StageNotFoundException):
        client.disable_stage_transition(pipelineName="gates", stageName="Nowhere",
                                        transitionType="Inbound", reason="x")
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.disable_stage_transition(pipelineName="gates", stageName="Source",
                                        transitionType="Inbound", reason="x")
    assert "first stage" in caught.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ValidationException):
        client.disable_stage_transition(pipelineName="gates", stageName="Deploy",
                                        transitionType="Outbound", reason="x")
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.disable_stage_transition(pipelineName="gates", stageName="Build",
                                        transitionType="Inbound", reason="no_underscores")
    assert "reason" in caught.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.enable_stage_transition(pipelineName="nope", stageName="Build",
                                       transitionType="Inbound")
    looker = aws(viewer)
    with pytest.raises(looker.exceptions.ClientError) as caught:
        looker.disable_stage_transition(pipelineName="gates", stageName="Build",
                                        transitionType="Inbound", reason="mine")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert stage(client.get_pipeline_state(name="gates"), "Build")[
        "inboundTransitionState"]["enabled"] is True


# --- stop -----------------------------------------------------------------------------------


def slow_definition(aws_definition, name: str = "slow") -> dict:
    return aws_definition(name, stages=[("Source", [checkout()]),
                                        ("Build", [sim("Compile", DurationSeconds=120)])])


def build_claimed(client, pipeline: str, execution_id: str) -> bool:
    """The Build action has been claimed by the worker (its configuration is resolved)."""
    return any(d["stageName"] == "Build" and "resolvedConfiguration" in d["input"]
               for d in actions_of(client, pipeline, execution_id))


def test_stop_with_abandon_ends_the_execution_at_once_and_abandons_its_running_action(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=slow_definition(aws_definition))
    client = aws(operator)
    execution_id = client.start_pipeline_execution(name="slow")["pipelineExecutionId"]
    wait_for(lambda: build_claimed(client, "slow", execution_id), what="Build to run")

    answer = client.stop_pipeline_execution(pipelineName="slow",
                                            pipelineExecutionId=execution_id,
                                            abandon=True, reason="Wrong branch")
    assert answer["pipelineExecutionId"] == execution_id
    execution = client.get_pipeline_execution(
        pipelineName="slow", pipelineExecutionId=execution_id)["pipelineExecution"]
    assert execution["status"] == "Stopped"
    assert "Wrong branch" in execution["statusSummary"]
    build = next(d for d in actions_of(client, "slow", execution_id)
                 if d["actionName"] == "Compile")
    assert build["status"] == "Abandoned"
    state = client.get_pipeline_state(name="slow")
    assert stage(state, "Build")["latestExecution"]["status"] == "Stopped"
    assert action_state(state, "Build", "Compile")["latestExecution"]["status"] == "Abandoned"
    [summary] = client.list_pipeline_executions(pipelineName="slow")[
        "pipelineExecutionSummaries"]
    assert summary["status"] == "Stopped"
    assert "Wrong branch" in summary["stopTrigger"]["reason"]

    with pytest.raises(client.exceptions.PipelineExecutionNotStoppableException):
        client.stop_pipeline_execution(pipelineName="slow", pipelineExecutionId=execution_id,
                                       abandon=True)


def test_a_second_stop_and_wait_is_a_duplicate_and_abandon_escalates_it(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=slow_definition(aws_definition))
    client = aws(operator)
    execution_id = client.start_pipeline_execution(name="slow")["pipelineExecutionId"]
    wait_for(lambda: build_claimed(client, "slow", execution_id), what="Build to run")

    client.stop_pipeline_execution(pipelineName="slow", pipelineExecutionId=execution_id,
                                   reason="Let it finish")
    assert status_of(client, "slow", execution_id) == "Stopping"
    with pytest.raises(client.exceptions.DuplicatedStopRequestException):
        client.stop_pipeline_execution(pipelineName="slow", pipelineExecutionId=execution_id)
    assert status_of(client, "slow", execution_id) == "Stopping"

    client.stop_pipeline_execution(pipelineName="slow", pipelineExecutionId=execution_id,
                                   abandon=True)
    assert status_of(client, "slow", execution_id) == "Stopped"


def test_stopping_an_execution_that_is_not_there_raises_not_found(aws, owner, operator,
                                                                  aws_definition):
    aws(owner).create_pipeline(pipeline=slow_definition(aws_definition))
    client = aws(operator)
    with pytest.raises(client.exceptions.PipelineExecutionNotFoundException):
        client.stop_pipeline_execution(pipelineName="slow",
                                       pipelineExecutionId=str(uuid.uuid4()))
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.stop_pipeline_execution(pipelineName="gone",
                                       pipelineExecutionId=str(uuid.uuid4()))


# --- retry ----------------------------------------------------------------------------------


def flaky_definition(aws_definition, flag) -> dict:
    """The Build fails until the file ``flag`` exists (its folder readable to the
    sandboxed build through ReadablePaths)."""
    flag.parent.mkdir(exist_ok=True)
    build = {"name": "Compile",
             "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "Shell",
                              "version": "1"},
             "configuration": {"ReadablePaths": str(flag.parent)},
             "inputArtifacts": [{"name": "Src"}],
             "commands": [f"test -f {flag}"]}
    return aws_definition("flaky", stages=[("Source", [checkout()]), ("Build", [build])])


def test_a_failed_stage_is_retried_and_the_execution_succeeds(
        aws, owner, operator, aws_definition, worker, tmp_path):
    flag = tmp_path / "flags" / "ready"
    aws(owner).create_pipeline(pipeline=flaky_definition(aws_definition, flag))
    client = aws(operator)
    execution_id = client.start_pipeline_execution(name="flaky")["pipelineExecutionId"]
    assert finished(client, "flaky", execution_id) == "Failed"
    state = client.get_pipeline_state(name="flaky")
    assert stage(state, "Build")["latestExecution"]["status"] == "Failed"
    failed = action_state(state, "Build", "Compile")["latestExecution"]
    assert failed["status"] == "Failed"
    assert failed["errorDetails"] == {"code": "JobFailed", "message": failed["summary"]}
    assert "exit" in failed["summary"]

    # The source stage succeeded: nothing to retry there.
    with pytest.raises(client.exceptions.StageNotRetryableException):
        client.retry_stage_execution(pipelineName="flaky", stageName="Source",
                                     pipelineExecutionId=execution_id,
                                     retryMode="FAILED_ACTIONS")
    with pytest.raises(client.exceptions.StageNotFoundException):
        client.retry_stage_execution(pipelineName="flaky", stageName="Nowhere",
                                     pipelineExecutionId=execution_id,
                                     retryMode="FAILED_ACTIONS")
    with pytest.raises(client.exceptions.PipelineExecutionNotFoundException):
        client.retry_stage_execution(pipelineName="flaky", stageName="Build",
                                     pipelineExecutionId=str(uuid.uuid4()),
                                     retryMode="FAILED_ACTIONS")

    flag.write_text("go")
    answer = client.retry_stage_execution(pipelineName="flaky", stageName="Build",
                                          pipelineExecutionId=execution_id,
                                          retryMode="FAILED_ACTIONS")
    assert answer["pipelineExecutionId"] == execution_id
    assert finished(client, "flaky", execution_id) == "Succeeded"
    attempts = [d["status"] for d in actions_of(client, "flaky", execution_id)
                if d["actionName"] == "Compile"]
    assert attempts == ["Succeeded", "Failed"]  # newest first, both attempts kept

    def latest_in(window):
        return [(d["actionName"], d["status"]) for d in client.list_action_executions(
            pipelineName="flaky", filter={"latestInPipelineExecution": {
                "pipelineExecutionId": execution_id, "startTimeRange": window}},
        )["actionExecutionDetails"]]

    assert latest_in("Latest") == [("Compile", "Succeeded"), ("Checkout", "Succeeded")]
    assert latest_in("All") == [("Compile", "Succeeded"), ("Compile", "Failed"),
                                ("Checkout", "Succeeded")]

    with pytest.raises(client.exceptions.StageNotRetryableException):
        client.retry_stage_execution(pipelineName="flaky", stageName="Build",
                                     pipelineExecutionId=execution_id, retryMode="ALL_ACTIONS")


def test_an_execution_passed_by_a_newer_one_in_the_stage_is_not_the_latest(
        aws, owner, operator, aws_definition, worker, tmp_path):
    flag = tmp_path / "flags" / "ready"
    aws(owner).create_pipeline(pipeline=flaky_definition(aws_definition, flag))
    client = aws(operator)
    older = client.start_pipeline_execution(name="flaky")["pipelineExecutionId"]
    assert finished(client, "flaky", older) == "Failed"
    newer = client.start_pipeline_execution(name="flaky")["pipelineExecutionId"]
    assert finished(client, "flaky", newer) == "Failed"

    flag.write_text("go")
    with pytest.raises(client.exceptions.NotLatestPipelineExecutionException) as caught:
        client.retry_stage_execution(pipelineName="flaky", stageName="Build",
                                     pipelineExecutionId=older, retryMode="FAILED_ACTIONS")
    assert "has entered stage" in caught.value.response["Error"]["Message"]
    assert status_of(client, "flaky", older) == "Failed"

    client.retry_stage_execution(pipelineName="flaky", stageName="Build",
                                 pipelineExecutionId=newer, retryMode="ALL_ACTIONS")
    assert finished(client, "flaky", newer) == "Succeeded"


def test_a_superseded_execution_cannot_be_retried(aws, owner, operator, aws_definition,
                                                  worker):
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "hold"))
    client = aws(operator)
    client.disable_stage_transition(pipelineName="hold", stageName="Build",
                                    transitionType="Inbound", reason="Hold")
    first = client.start_pipeline_execution(name="hold")["pipelineExecutionId"]
    wait_for(lambda: stage(client.get_pipeline_state(name="hold"), "Build").get(
        "inboundExecution", {}).get("pipelineExecutionId") == first)
    second = client.start_pipeline_execution(name="hold")["pipelineExecutionId"]
    wait_for(lambda: status_of(client, "hold", first) == "Superseded")
    with pytest.raises(client.exceptions.NotLatestPipelineExecutionException):
        client.retry_stage_execution(pipelineName="hold", stageName="Source",
                                     pipelineExecutionId=first, retryMode="ALL_ACTIONS")
    client.stop_pipeline_execution(pipelineName="hold", pipelineExecutionId=second,
                                   abandon=True)
    assert status_of(client, "hold", second) == "Stopped"


# --- rollback -------------------------------------------------------------------------------


def deployer_definition(aws_definition, **fields) -> dict:
    return aws_definition(
        "deployer",
        variables=[{"name": "Outcome", "defaultValue": "Succeeded"}],
        stages=[("Source", [checkout()]),
                ("Deploy", [sim("Release", "Deploy", Outcome="#{variables.Outcome}")])],
        **fields)


def test_rollback_runs_the_stage_again_with_an_earlier_executions_revision(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=deployer_definition(aws_definition))
    client = aws(operator)
    good = client.start_pipeline_execution(name="deployer",
                                           sourceRevisions=commit("r1"))["pipelineExecutionId"]
    assert finished(client, "deployer", good) == "Succeeded"
    later = client.start_pipeline_execution(name="deployer",
                                            sourceRevisions=commit("r2"))["pipelineExecutionId"]
    assert finished(client, "deployer", later) == "Succeeded"

    rollback = client.rollback_stage(pipelineName="deployer", stageName="Deploy",
                                     targetPipelineExecutionId=good)["pipelineExecutionId"]
    assert rollback not in (good, later)
    assert finished(client, "deployer", rollback) == "Succeeded"
    execution = client.get_pipeline_execution(
        pipelineName="deployer", pipelineExecutionId=rollback)["pipelineExecution"]
    assert execution["executionType"] == "ROLLBACK"
    assert execution["rollbackMetadata"] == {"rollbackTargetPipelineExecutionId": good}
    assert execution["trigger"]["triggerType"] == "ManualRollback"
    assert [r["revisionId"] for r in execution["artifactRevisions"]] == ["r1"]
    deploy = stage(client.get_pipeline_state(name="deployer"), "Deploy")
    assert deploy["latestExecution"] == {"pipelineExecutionId": rollback,
                                         "status": "Succeeded", "type": "ROLLBACK"}
    newest = client.list_pipeline_executions(pipelineName="deployer", maxResults=1)[
        "pipelineExecutionSummaries"][0]
    assert newest["pipelineExecutionId"] == rollback
    assert newest["executionType"] == "ROLLBACK"
    assert newest["rollbackMetadata"] == {"rollbackTargetPipelineExecutionId": good}


def test_rollback_refusals_are_raised_as_codepipelines_exceptions(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=deployer_definition(aws_definition))
    client = aws(operator)
    good = client.start_pipeline_execution(name="deployer")["pipelineExecutionId"]
    assert finished(client, "deployer", good) == "Succeeded"
    bad = client.start_pipeline_execution(
        name="deployer", variables=[{"name": "Outcome", "value": "Failed"}])[
        "pipelineExecutionId"]
    assert finished(client, "deployer", bad) == "Failed"

    def rollback(stage_name="Deploy", target=good):
        return client.rollback_stage(pipelineName="deployer", stageName=stage_name,
                                     targetPipelineExecutionId=target)

    with pytest.raises(client.exceptions.UnableToRollbackStageException) as caught:
        rollback(target=bad)
    assert "did not succeed" in caught.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.UnableToRollbackStageException):
        rollback(stage_name="Source")
    with pytest.raises(client.exceptions.StageNotFoundException):
        rollback(stage_name="Nowhere")
    with pytest.raises(client.exceptions.PipelineExecutionNotFoundException):
        rollback(target=str(uuid.uuid4()))
    assert PipelineExecution.objects.count() == 2

    aws(owner).update_pipeline(pipeline=deployer_definition(
        aws_definition, executionMode="QUEUED"))
    with pytest.raises(client.exceptions.PipelineExecutionOutdatedException):
        rollback()
    assert PipelineExecution.objects.count() == 2


# --- starting: idempotency, validation ------------------------------------------------------


def test_a_repeated_client_request_token_answers_the_same_execution(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "once"))
    client = aws(operator)
    token = "deploy-2024-06-01-1"
    first = client.start_pipeline_execution(name="once", clientRequestToken=token)
    again = client.start_pipeline_execution(name="once", clientRequestToken=token)
    assert again["pipelineExecutionId"] == first["pipelineExecutionId"]
    assert PipelineExecution.objects.count() == 1
    other = client.start_pipeline_execution(name="once", clientRequestToken="another-1")
    assert other["pipelineExecutionId"] != first["pipelineExecutionId"]
    # botocore gives every start its own token when the caller names none.
    unnamed = client.start_pipeline_execution(name="once")
    assert unnamed["pipelineExecutionId"] not in (first["pipelineExecutionId"],
                                                  other["pipelineExecutionId"])
    assert PipelineExecution.objects.count() == 3
    for execution_id in (first["pipelineExecutionId"], other["pipelineExecutionId"],
                         unnamed["pipelineExecutionId"]):
        finished(client, "once", execution_id)


def test_starts_racing_with_one_client_request_token_start_one_execution(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "race"))
    clients = [aws(operator) for _ in range(4)]
    barrier = threading.Barrier(len(clients))
    answers, failures = [], []

    def start(client):
        barrier.wait()
        try:
            answers.append(client.start_pipeline_execution(
                name="race", clientRequestToken="same-token")["pipelineExecutionId"])
        except Exception as exc:  # reported below, with the others
            failures.append(repr(exc))

    threads = [threading.Thread(target=start, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert len(answers) == 4 and len(set(answers)) == 1
    assert PipelineExecution.objects.count() == 1
    assert finished(clients[0], "race", answers[0]) == "Succeeded"


def test_start_refusals_are_raised_as_codepipelines_exceptions(aws, owner, operator, viewer,
                                                               outsider, aws_definition):
    aws(owner).create_pipeline(pipeline=deployer_definition(aws_definition))
    client = aws(operator)
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.start_pipeline_execution(name="nope")
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.start_pipeline_execution(name="deployer",
                                        variables=[{"name": "Colour", "value": "blue"}])
    assert '"Colour" is not a variable of this pipeline' in caught.value.response["Error"][
        "Message"]
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.start_pipeline_execution(name="deployer", sourceRevisions=[
            {"actionName": "Elsewhere", "revisionType": "COMMIT_ID", "revisionValue": "x"}])
    assert "is not a source action" in caught.value.response["Error"]["Message"]
    for user in (viewer, outsider):
        refused = aws(user)
        with pytest.raises(refused.exceptions.ClientError) as caught:
            refused.start_pipeline_execution(name="deployer")
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert not PipelineExecution.objects.exists()


def test_a_pipeline_with_an_aws_only_action_cannot_start(aws, owner, operator):
    from tests.awsapi.test_operations import FIXTURES

    path = FIXTURES / "awscli-get-pipeline-MyFirstPipeline.json"
    if not path.exists():
        pytest.skip(f"fixtures not found at {FIXTURES}")
    import json

    aws(owner).create_pipeline(pipeline=json.loads(path.read_text())["pipeline"])
    client = aws(operator)
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.start_pipeline_execution(name="MyFirstPipeline")
    assert "cannot run here" in caught.value.response["Error"]["Message"]
    assert not PipelineExecution.objects.exists()


# --- reading: lists, filters, who may look --------------------------------------------------


def test_list_pipeline_executions_pages_newest_first_and_filters_by_succeeded_stage(
        aws, owner, operator, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=deployer_definition(aws_definition))
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "other"))
    client = aws(operator)
    ids = []
    for outcome in ("Succeeded", "Failed", "Succeeded"):
        ids.append(client.start_pipeline_execution(
            name="deployer", sourceRevisions=commit(f"rev-{len(ids)}"),
            variables=[{"name": "Outcome", "value": outcome}])["pipelineExecutionId"])
        assert finished(client, "deployer", ids[-1]) == outcome
    first, second, third = ids

    page = client.list_pipeline_executions(pipelineName="deployer", maxResults=2)
    summaries = page["pipelineExecutionSummaries"]
    assert [s["pipelineExecutionId"] for s in summaries] == [third, second]
    assert summaries[1]["status"] == "Failed"
    top = summaries[0]
    assert top["sourceRevisions"] == [{"actionName": "Checkout", "revisionId": "rev-2",
                                       "revisionSummary": "Simulated revision"}]
    assert top["trigger"]["triggerType"] == "StartPipelineExecution"
    assert top["executionMode"] == "SUPERSEDED" and top["executionType"] == "STANDARD"
    assert top["startTime"] <= top["lastUpdateTime"]
    assert "stopTrigger" not in top
    rest = client.list_pipeline_executions(pipelineName="deployer", maxResults=2,
                                           nextToken=page["nextToken"])
    assert [s["pipelineExecutionId"] for s in rest["pipelineExecutionSummaries"]] == [first]
    assert "nextToken" not in rest
    pages = client.get_paginator("list_pipeline_executions").paginate(
        pipelineName="deployer", PaginationConfig={"PageSize": 1})
    assert [s["pipelineExecutionId"] for p in pages
            for s in p["pipelineExecutionSummaries"]] == [third, second, first]

    succeeded = client.list_pipeline_executions(
        pipelineName="deployer", filter={"succeededInStage": {"stageName": "Deploy"}})
    assert [s["pipelineExecutionId"] for s in succeeded["pipelineExecutionSummaries"]] == [
        third, first]

    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_pipeline_executions(pipelineName="deployer", nextToken="3")
    # A token is good for the pipeline it was given out for only.
    with pytest.raises(client.exceptions.InvalidNextTokenException):
        client.list_pipeline_executions(pipelineName="other", nextToken=page["nextToken"])


def test_an_execution_is_found_only_under_its_own_pipeline(aws, owner, operator,
                                                           aws_definition, worker):
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "mine"))
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "theirs"))
    client = aws(operator)
    execution_id = client.start_pipeline_execution(name="mine")["pipelineExecutionId"]
    finished(client, "mine", execution_id)
    with pytest.raises(client.exceptions.PipelineExecutionNotFoundException):
        client.get_pipeline_execution(pipelineName="theirs", pipelineExecutionId=execution_id)
    with pytest.raises(client.exceptions.PipelineExecutionNotFoundException):
        client.list_action_executions(pipelineName="theirs",
                                      filter={"pipelineExecutionId": execution_id})
    with pytest.raises(client.exceptions.ValidationException):
        client.get_pipeline_execution(pipelineName="mine", pipelineExecutionId="not-a-uuid")
    with pytest.raises(client.exceptions.PipelineNotFoundException):
        client.get_pipeline_state(name="nope")


def test_viewers_read_executions_and_outsiders_read_nothing(aws, owner, operator, viewer,
                                                            outsider, aws_definition, worker):
    aws(owner).create_pipeline(pipeline=three_stages(aws_definition, "watched"))
    execution_id = aws(operator).start_pipeline_execution(name="watched")[
        "pipelineExecutionId"]
    looker = aws(viewer)
    assert finished(looker, "watched", execution_id) == "Succeeded"
    assert stage(looker.get_pipeline_state(name="watched"), "Deploy")["latestExecution"][
        "status"] == "Succeeded"
    assert len(looker.list_pipeline_executions(pipelineName="watched")[
        "pipelineExecutionSummaries"]) == 1
    assert len(actions_of(looker, "watched", execution_id)) == 3
    with pytest.raises(looker.exceptions.ClientError) as caught:
        looker.stop_pipeline_execution(pipelineName="watched", pipelineExecutionId=execution_id)
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"

    stranger = aws(outsider)
    calls = (
        lambda: stranger.get_pipeline_state(name="watched"),
        lambda: stranger.list_pipeline_executions(pipelineName="watched"),
        lambda: stranger.get_pipeline_execution(pipelineName="watched",
                                                pipelineExecutionId=execution_id),
        lambda: stranger.list_action_executions(pipelineName="watched"),
    )
    for call in calls:
        with pytest.raises(stranger.exceptions.ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
