"""Conditions that hold a stage: a deployment window waiting then passing (time frozen
and moved with time-machine), rule timeouts, override (service, REST, AWS endpoint,
audit trail), stop, inbound executions and superseding while a rule is InProgress
(docs/conditions.md §3–§6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from botocore.loaders import Loader
from botocore.model import ServiceModel

from awsapi.operations import dispatch
from conditions import services
from conditions.models import ConditionExecution, RuleExecution
from executions import services as execution_services
from executions.models import ActionExecution, ExecutionEvent, PipelineExecution
from observability.models import AuditEntry
from tests.awsapi.conftest import model_mismatches
from tests.conditions.conftest import condition, gated_pipeline, rule
from tests.runners.test_rules import StandIn, vector

SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
MONDAY_OPEN = datetime(2026, 12, 7, 9, 0, 30, tzinfo=UTC)
WORKING_HOURS = "0 0 9-17 ? * MON-FRI *"


def window(**more) -> dict:
    return rule("DeploymentWindow", {"Cron": WORKING_HOURS, "TimeZone": "UTC"},
                name="Window", **more)


def held(execution, kind="beforeEntry") -> ConditionExecution:
    return ConditionExecution.objects.get(stage_execution__execution=execution, kind=kind)


@pytest.fixture
def saturday():
    with time_machine.travel(SATURDAY, tick=False) as traveller:
        yield traveller


def test_a_deployment_window_holds_the_stage_until_it_opens_then_the_stage_runs(
        cdriver, saturday):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", window()))
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    ce = held(execution)
    rule_row = RuleExecution.objects.get()
    # Outside the window: InProgress, no action started, nobody sleeps on it.
    assert (execution.status, ce.status, rule_row.status) == (
        "InProgress", "InProgress", "InProgress")
    assert rule_row.recheck_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    assert "opens at 2026-12-07 09:00 UTC" in rule_row.summary
    # The default timeout of a window: 7 days.
    assert rule_row.deadline_at == SATURDAY + timedelta(days=7)
    assert not ActionExecution.objects.filter(execution=execution,
                                              stage_name="Deploy").exists()
    # The sweeper before the opening hands nothing out.
    saturday.move_to(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))
    cdriver.sweep()
    assert cdriver.conditions == []
    saturday.move_to(MONDAY_OPEN)
    cdriver.sweep()
    assert cdriver.conditions == [ce.pk]
    cdriver.run()
    execution.refresh_from_db()
    ce.refresh_from_db()
    assert (execution.status, ce.status) == ("Succeeded", "Succeeded")
    assert "inside the window" in RuleExecution.objects.get().summary


def test_a_rule_that_waits_past_its_timeout_fails_and_so_does_the_execution(cdriver,
                                                                           saturday):
    stand_in = StandIn()  # stands in for Prometheus: the edge of the world
    try:
        stand_in.routes["/api/v1/query"] = (200, vector(({"job": "api"}, "0.5")))
        metrics = rule("Metrics", {"PrometheusUrl": stand_in.url,
                                   "Query": "sum(rate(http_errors[5m]))", "Operator": "LT",
                                   "Threshold": "0.05", "WaitTime": "60"},
                       name="ErrorRate", timeoutInMinutes=5)
        pipeline = gated_pipeline(onSuccess=condition("FAIL", metrics))
        execution = cdriver.start(pipeline)
        cdriver.run()
        rule_row = RuleExecution.objects.get()
        assert rule_row.status == "InProgress"  # inside its WaitTime: checked again
        assert rule_row.recheck_at == SATURDAY + timedelta(minutes=1)
        saturday.move_to(SATURDAY + timedelta(minutes=3))
        cdriver.sweep()
        cdriver.run()
        assert RuleExecution.objects.get().status == "InProgress"
        saturday.move_to(SATURDAY + timedelta(minutes=5, seconds=1))
        cdriver.sweep()
        cdriver.run()
    finally:
        stand_in.server.shutdown()
        stand_in.server.server_close()
    rule_row.refresh_from_db()
    execution.refresh_from_db()
    assert rule_row.status == "Failed"
    assert rule_row.summary.startswith("Rule timed out after 5 min: sum(rate(http_errors[5m]))")
    assert execution.status == "Failed"
    assert 'Rule "ErrorRate" (Metrics) failed: Rule timed out after 5 min' in \
        execution.status_summary
    # The stand-in was asked at each look: the first, at 3 minutes and at the timeout.
    assert len(stand_in.requests) == 3


def test_the_metrics_rule_lets_a_healthy_release_through(cdriver):
    stand_in = StandIn()  # stands in for Prometheus: the edge of the world
    try:
        stand_in.routes["/api/v1/query"] = (200, vector(({"job": "api"}, "0.01")))
        metrics = rule("Metrics", {"PrometheusUrl": stand_in.url, "Query": "errors",
                                   "Operator": "LT", "Threshold": "0.05"}, name="ErrorRate")
        pipeline = gated_pipeline(onSuccess=condition("ROLLBACK", metrics))
        execution = cdriver.start(pipeline)
        cdriver.run()
    finally:
        stand_in.server.shutdown()
        stand_in.server.server_close()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert RuleExecution.objects.get().summary == "errors = 0.01 (< 0.05)"


# --- override -----------------------------------------------------------------------------


def test_an_operator_overrides_a_held_entry_condition_and_the_stage_runs(cdriver, saturday,
                                                                        operator):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", window()))
    execution = cdriver.start(pipeline)
    cdriver.run()
    cdriver.call(services.stage_condition_override, execution=execution, stage_name="Deploy",
                 condition_type="BEFORE_ENTRY", user=operator, reason="hotfix for INC-7")
    cdriver.run()
    execution.refresh_from_db()
    ce = held(execution)
    assert execution.status == "Succeeded"
    assert (ce.status, ce.overridden_by, ce.override_reason) == (
        "Overridden", operator, "hotfix for INC-7")
    assert ce.summary == "Overridden by oscar: hotfix for INC-7"
    assert RuleExecution.objects.get().status == "Abandoned"
    entry = AuditEntry.objects.get(action="condition.override")
    assert (entry.actor, entry.stage, entry.reason, entry.detail) == (
        "oscar", "Deploy", "hotfix for INC-7",
        {"conditionType": "BEFORE_ENTRY", "result": "FAIL"})
    event = ExecutionEvent.objects.get(kind="condition", status="Overridden")
    assert event.data["overriddenBy"] == "oscar"


def test_nothing_held_or_a_skip_condition_cannot_be_overridden(cdriver, saturday, operator):
    pipeline = gated_pipeline(beforeEntry=condition("SKIP", rule(
        "VariableCheck", {"Variable": "a", "Value": "a", "Operator": "EQ"})))
    execution = cdriver.start(pipeline)
    cdriver.run()
    with pytest.raises(services.ConditionNotOverridable,
                       match=r'has already ended \(Succeeded\): there is nothing to override'):
        services.stage_condition_override(execution=execution, stage_name="Deploy",
                                          condition_type="BEFORE_ENTRY", user=operator)
    with pytest.raises(services.ConditionNotOverridable, match="no onSuccess condition"):
        services.stage_condition_override(execution=execution, stage_name="Deploy",
                                          condition_type="ON_SUCCESS", user=operator)
    assert services.override_refusal(number=1, stage_name="Deploy", kind="beforeEntry",
                                     status="InProgress", result="SKIP").message.endswith(
        "a SKIP condition cannot be overridden.")
    assert not AuditEntry.objects.filter(action="condition.override").exists()


def test_the_rest_override_needs_the_operators_permission_and_answers_the_states(
        cdriver, saturday, api, operator, viewer):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", window()))
    execution = cdriver.start(pipeline)
    cdriver.run()
    url = f"/api/executions/{execution.execution_id}/stages/Deploy/override-condition/"
    body = {"conditionType": "BEFORE_ENTRY", "reason": "release train"}
    assert api(viewer).post(url, body, format="json").status_code == 403
    with cdriver.capture(execute=True):
        answer = api(operator).post(url, body, format="json")
    assert answer.status_code == 200, answer.content
    state = answer.json()["beforeEntryConditionState"]
    assert state["latestExecution"] == {"status": "Overridden",
                                        "summary": "Overridden by oscar: release train"}
    rule_state = state["conditionStates"][0]["ruleStates"][0]
    assert (rule_state["ruleName"], rule_state["latestExecution"]["status"],
            rule_state["latestExecution"]["lastUpdatedBy"]) == ("Window", "Abandoned", "oscar")
    entry = AuditEntry.objects.get(action="condition.override")
    assert (entry.surface, entry.reason) == ("rest", "release train")
    # Again: nothing is held any more.
    again = api(operator).post(url, body, format="json")
    assert again.status_code == 409
    assert "nothing to override" in again.json()["detail"]


def aws_model():
    return ServiceModel(Loader().load_service_model("codepipeline", "service-2"))


def test_the_aws_endpoint_overrides_lists_rule_executions_and_answers_condition_states(
        cdriver, saturday, operator):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", window()))
    execution = cdriver.start(pipeline)
    cdriver.run()
    caller = SimpleNamespace(user=operator, region="eu-west-1")
    model = aws_model()
    state = dispatch("GetPipelineState", caller, {"name": pipeline.name})
    assert model_mismatches(state, model.operation_model("GetPipelineState").output_shape) \
        == []
    deploy = next(s for s in state["stageStates"] if s["stageName"] == "Deploy")
    waiting = deploy["beforeEntryConditionState"]
    assert waiting["latestExecution"] == {"status": "InProgress", "summary": "Evaluating 1 rule"}
    assert waiting["conditionStates"][0]["ruleStates"][0]["latestExecution"]["status"] == \
        "InProgress"
    with cdriver.capture(execute=True):
        assert dispatch("OverrideStageCondition", caller, {
            "pipelineName": pipeline.name, "stageName": "Deploy",
            "pipelineExecutionId": str(execution.execution_id),
            "conditionType": "BEFORE_ENTRY"}) == {}
    cdriver.run()
    assert AuditEntry.objects.get(action="condition.override").surface == "aws"
    listed = dispatch("ListRuleExecutions", caller, {
        "pipelineName": pipeline.name,
        "filter": {"pipelineExecutionId": str(execution.execution_id)}})
    assert model_mismatches(listed, model.operation_model("ListRuleExecutions").output_shape) \
        == []
    [detail] = listed["ruleExecutionDetails"]
    assert (detail["ruleName"], detail["stageName"], detail["status"], detail["updatedBy"]) == (
        "Window", "Deploy", "Abandoned", "oscar")
    assert detail["input"]["ruleTypeId"]["provider"] == "DeploymentWindow"
    assert detail["input"]["configuration"] == {"Cron": WORKING_HOURS, "TimeZone": "UTC"}
    from awsapi import errors

    with pytest.raises(errors.AwsError) as refused:
        dispatch("OverrideStageCondition", caller, {
            "pipelineName": pipeline.name, "stageName": "Deploy",
            "pipelineExecutionId": str(execution.execution_id),
            "conditionType": "BEFORE_ENTRY"})
    assert refused.value.code == "ConditionNotOverridableException"


def test_list_rule_executions_pages_newest_first(cdriver, operator):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", rule(
        "VariableCheck", {"Variable": "#{variables.gate}", "Value": "go", "Operator": "EQ"})))
    for _ in range(3):
        cdriver.start(pipeline)
        cdriver.run()
    caller = SimpleNamespace(user=operator, region="eu-west-1")
    first = dispatch("ListRuleExecutions", caller, {"pipelineName": pipeline.name,
                                                     "maxResults": 2})
    second = dispatch("ListRuleExecutions", caller, {"pipelineName": pipeline.name,
                                                      "maxResults": 2,
                                                      "nextToken": first["nextToken"]})
    ids = [d["ruleExecutionId"] for d in first["ruleExecutionDetails"]
           + second["ruleExecutionDetails"]]
    assert ids == [str(r) for r in RuleExecution.objects.order_by("-id")
                   .values_list("rule_execution_id", flat=True)]
    assert "nextToken" not in second


# --- stop, inbound, supersede ----------------------------------------------------------


def test_stopping_an_execution_cancels_its_condition_and_abandons_the_waiting_rule(
        cdriver, saturday, operator):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", window()))
    execution = cdriver.start(pipeline)
    cdriver.run()
    cdriver.call(execution_services.execution_stop, execution=execution, abandon=False,
                 reason="not this week", user=operator)
    execution.refresh_from_db()
    assert execution.status == "Stopped"
    assert held(execution).status == "Cancelled"
    assert RuleExecution.objects.get().status == "Abandoned"
    # The sweeper does not wake a rule whose condition ended.
    saturday.move_to(MONDAY_OPEN)
    cdriver.sweep()
    assert cdriver.conditions == []


def test_queued_executions_wait_inbound_while_a_condition_holds_the_stage(cdriver, saturday,
                                                                        operator):
    pipeline = gated_pipeline(mode="QUEUED", beforeEntry=condition("FAIL", window()))
    first = cdriver.start(pipeline)
    cdriver.run()
    second = cdriver.start(pipeline)
    cdriver.run()
    second.refresh_from_db()
    assert (second.inbound_stage_name, second.inbound_reason) == ("Deploy", "StageLocked")
    saturday.move_to(MONDAY_OPEN)
    cdriver.sweep()
    cdriver.run()
    first.refresh_from_db()
    second.refresh_from_db()
    # The second entered when the first left, and passed its own (now open) window.
    assert (first.status, second.status) == ("Succeeded", "Succeeded")
    assert held(second).status == "Succeeded"


def test_a_newer_execution_supersedes_one_waiting_for_its_entry_condition(cdriver, saturday):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", window()))
    first = cdriver.start(pipeline)
    cdriver.run()
    second = cdriver.start(pipeline)
    cdriver.run()
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "Superseded"
    assert first.superseded_by == second
    assert held(first).status == "Abandoned"
    assert held(second).status == "InProgress"  # the newer one waits for the window now
    assert second.inbound_stage_name == ""


def test_an_on_success_condition_keeps_the_stage_while_newer_executions_wait(cdriver,
                                                                           saturday):
    pipeline = gated_pipeline(onSuccess=condition("FAIL", window()))
    first = cdriver.start(pipeline)
    cdriver.run()
    second = cdriver.start(pipeline)
    cdriver.run()
    first.refresh_from_db()
    second.refresh_from_db()
    # The first's actions ran: it is not superseded; the newer one waits at the gate.
    assert (first.status, held(first, "onSuccess").status) == ("InProgress", "InProgress")
    assert (second.inbound_stage_name, second.inbound_reason) == ("Deploy", "StageLocked")
    saturday.move_to(MONDAY_OPEN)
    cdriver.sweep()
    cdriver.run()
    assert set(PipelineExecution.objects.values_list("status", flat=True)) == {"Succeeded"}
    assert held(second, "onSuccess").status == "Succeeded"


def test_a_rule_that_crashes_errors_its_condition_and_fails_the_execution(cdriver):
    stand_in = StandIn()  # stands in for Prometheus: the edge of the world
    try:
        stand_in.routes["/api/v1/query"] = (200, vector(({"job": "api"}, "0.01")))
        metrics = rule("Metrics", {"PrometheusUrl": stand_in.url, "Query": "errors",
                                   "Operator": "LT", "Threshold": "#{variables.gate}"},
                       name="ErrorRate")
        pipeline = gated_pipeline(beforeEntry=condition("FAIL", metrics))
        # "go" is no number: the rule cannot be evaluated (a crash, not an answer).
        execution = cdriver.start(pipeline)
        cdriver.run()
    finally:
        stand_in.server.shutdown()
        stand_in.server.server_close()
    execution.refresh_from_db()
    ce = held(execution)
    rule_row = RuleExecution.objects.get()
    assert (ce.status, rule_row.status) == ("Errored", "Failed")
    assert rule_row.summary.startswith("The rule could not be evaluated: ValueError")
    assert "Traceback" in rule_row.error
    assert execution.status == "Failed"
    assert 'Rule "ErrorRate" (Metrics) could not be evaluated' in execution.status_summary


def test_overriding_a_held_on_success_condition_lets_the_stage_succeed(cdriver, saturday,
                                                                      operator):
    pipeline = gated_pipeline(onSuccess=condition("ROLLBACK", window()))
    execution = cdriver.start(pipeline)
    cdriver.run()
    assert held(execution, "onSuccess").status == "InProgress"
    cdriver.call(services.stage_condition_override, execution=execution, stage_name="Deploy",
                 condition_type="ON_SUCCESS", user=operator, reason="verified by hand")
    cdriver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert held(execution, "onSuccess").status == "Overridden"
    assert not PipelineExecution.objects.filter(execution_type="ROLLBACK").exists()
