"""Stage conditions through the real engine: each result of each kind of condition
(docs/conditions.md §4, §5), with real rule providers and the real worker code."""

from __future__ import annotations

from conditions.models import ConditionExecution, RuleExecution
from executions.models import ActionExecution, ExecutionEvent, PipelineExecution, StageExecution
from tests.conditions.conftest import check, condition, gated_pipeline, sim


def stage(execution, name="Deploy"):
    return list(StageExecution.objects.filter(execution=execution, stage_name=name)
                .order_by("attempt").values_list("status", flat=True))


def ran(execution, action_name="Release") -> bool:
    return ActionExecution.objects.filter(execution=execution, action_name=action_name).exists()


def conditions_of(execution):
    return list(ConditionExecution.objects.filter(stage_execution__execution=execution)
                .order_by("id").values_list("kind", "status"))


# --- beforeEntry ---------------------------------------------------------------------


def test_before_entry_rules_that_pass_let_the_stage_run(cdriver):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", check("#{variables.gate}")))
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert conditions_of(execution) == [("beforeEntry", "Succeeded")]
    rule_row = RuleExecution.objects.get()
    assert (rule_row.rule_name, rule_row.provider, rule_row.status) == (
        "Gate", "VariableCheck", "Succeeded")
    assert rule_row.configuration["Variable"] == "go"  # resolved
    assert rule_row.started_at and rule_row.ended_at


def test_before_entry_fail_fails_the_execution_naming_the_rule_and_runs_no_action(cdriver):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", check("#{variables.gate}")))
    execution = cdriver.start(pipeline, variables={"gate": "stop"})
    cdriver.run()
    execution.refresh_from_db()
    assert execution.status == "Failed"
    assert 'Stage "Deploy" failed.' in execution.status_summary
    assert 'Rule "Gate" (VariableCheck) failed: "stop" EQ "go": false' in \
        execution.status_summary
    assert stage(execution) == ["Failed"]
    assert not ran(execution)
    assert stage(execution, "Verify") == []
    assert conditions_of(execution) == [("beforeEntry", "Failed")]


def test_before_entry_skip_skips_the_stage_and_the_execution_goes_on(cdriver):
    pipeline = gated_pipeline(beforeEntry=condition("SKIP", check("#{variables.gate}")))
    execution = cdriver.start(pipeline, variables={"gate": "stop"})
    cdriver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert stage(execution) == ["Skipped"]
    assert not ran(execution)
    assert stage(execution, "Verify") == ["Succeeded"]


def test_the_rules_of_a_condition_run_in_order_and_the_first_failure_decides(cdriver):
    pipeline = gated_pipeline(beforeEntry=condition(
        "FAIL", check("#{variables.gate}", name="First"),
        check("#{variables.gate}", "other", name="Second"),
        check("#{variables.gate}", name="Third")))
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    assert execution.status == "Failed"
    # The third rule never started: the second had already decided.
    assert list(RuleExecution.objects.order_by("position").values_list(
        "rule_name", "status")) == [("First", "Succeeded"), ("Second", "Failed")]


def test_every_condition_and_rule_status_change_is_a_live_event(cdriver):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", check("#{variables.gate}")))
    execution = cdriver.start(pipeline)
    cdriver.run()
    events = list(ExecutionEvent.objects.filter(execution=execution, kind="condition")
                  .order_by("id").values_list("stage_name", "previous_status", "status",
                                              "data__object", "data__conditionType"))
    assert events == [
        ("Deploy", "", "InProgress", "condition", "beforeEntry"),
        ("Deploy", "", "InProgress", "rule", "beforeEntry"),
        ("Deploy", "InProgress", "Succeeded", "rule", "beforeEntry"),
        ("Deploy", "InProgress", "Succeeded", "condition", "beforeEntry"),
    ]
    rule_event = ExecutionEvent.objects.filter(kind="condition", data__object="rule").first()
    assert rule_event.data["ruleName"] == "Gate"
    assert rule_event.data["ruleExecutionId"] == str(RuleExecution.objects.get().rule_execution_id)


# --- onSuccess ---------------------------------------------------------------------------


def test_on_success_rules_that_pass_let_the_stage_succeed(cdriver):
    pipeline = gated_pipeline(onSuccess=condition("FAIL", check("#{variables.gate}")))
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert conditions_of(execution) == [("onSuccess", "Succeeded")]


def test_on_success_fail_fails_the_stage_after_its_actions_ran(cdriver):
    pipeline = gated_pipeline(onSuccess=condition("FAIL", check("#{variables.gate}")),
                              onFailure={"result": "RETRY"})
    execution = cdriver.start(pipeline, variables={"gate": "stop"})
    cdriver.run()
    execution.refresh_from_db()
    assert execution.status == "Failed"
    assert ran(execution)
    # The stage's own onFailure does not act on a stage its onSuccess condition failed.
    assert stage(execution) == ["Failed"]
    assert 'onSuccess condition failed (result FAIL): Rule "Gate"' in execution.status_summary


def test_on_success_rollback_rolls_the_stage_back_to_the_last_good_execution(cdriver):
    pipeline = gated_pipeline(onSuccess=condition("ROLLBACK", check("#{variables.gate}")))
    good = cdriver.start(pipeline)
    cdriver.run()
    bad = cdriver.start(pipeline, variables={"gate": "stop"})
    cdriver.run()
    bad.refresh_from_db()
    assert bad.status == "Failed"
    assert bad.status_summary.endswith(
        f'Rolling back stage "Deploy" to execution #{good.number} (onSuccess condition '
        "ROLLBACK).")
    rollback = PipelineExecution.objects.get(execution_type="ROLLBACK")
    assert (rollback.trigger_type, rollback.rollback_target) == ("AutomatedRollback", good)
    assert rollback.status == "Succeeded"
    # A rollback evaluates no condition: it redeploys what already passed them.
    assert conditions_of(rollback) == []


# --- onFailure.conditions ------------------------------------------------------------------


def test_on_failure_rollback_engages_when_its_rules_succeed(cdriver):
    pipeline = gated_pipeline(deploy=[sim("Release", "Deploy", Outcome="#{variables.outcome}")],
                              variables=[{"name": "gate", "defaultValue": "go"},
                                         {"name": "outcome", "defaultValue": "Succeeded"}],
                              onFailure=condition("ROLLBACK", check("#{variables.gate}")))
    good = cdriver.start(pipeline)
    cdriver.run()
    bad = cdriver.start(pipeline, variables={"outcome": "Failed"})
    cdriver.run()
    bad.refresh_from_db()
    assert bad.status == "Failed"
    assert conditions_of(bad) == [("onFailure", "Succeeded")]
    assert f"to execution #{good.number} (onFailure condition ROLLBACK)" in bad.status_summary
    assert PipelineExecution.objects.get(execution_type="ROLLBACK").status == "Succeeded"


def test_on_failure_condition_whose_rules_fail_leaves_the_stage_failed(cdriver):
    pipeline = gated_pipeline(deploy=[sim("Release", "Deploy", Outcome="#{variables.outcome}")],
                              variables=[{"name": "gate", "defaultValue": "go"},
                                         {"name": "outcome", "defaultValue": "Succeeded"}],
                              onFailure=condition("ROLLBACK", check("#{variables.gate}")))
    cdriver.start(pipeline)
    cdriver.run()
    bad = cdriver.start(pipeline, variables={"outcome": "Failed", "gate": "no"})
    cdriver.run()
    bad.refresh_from_db()
    assert bad.status == "Failed"
    assert conditions_of(bad) == [("onFailure", "Failed")]
    assert "Rolling back" not in bad.status_summary
    assert 'Action "Release" failed' in bad.status_summary
    assert not PipelineExecution.objects.filter(execution_type="ROLLBACK").exists()


def test_on_failure_retry_condition_retries_the_stage_once(cdriver):
    pipeline = gated_pipeline(deploy=[sim("Release", "Deploy", Outcome="Failed")],
                              onFailure={**condition("RETRY", check("#{variables.gate}")),
                                         "retryConfiguration": {"retryMode": "ALL_ACTIONS"}})
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    # Failed twice: the condition retried once (ALL_ACTIONS), then no second retry.
    assert execution.status == "Failed"
    assert list(StageExecution.objects.filter(execution=execution, stage_name="Deploy")
                .order_by("attempt").values_list("attempt", "status", "retry_mode",
                                                 "retry_trigger")) == [
        (1, "Failed", "", ""), (2, "Failed", "ALL_ACTIONS", "AutomatedStageRetry")]
    assert conditions_of(execution) == [("onFailure", "Succeeded"), ("onFailure", "Succeeded")]


def test_which_condition_statuses_engage_the_result():
    from conditions.evaluation import outcome_engaged

    table = {(kind, status): outcome_engaged(kind, status)
             for kind in ("beforeEntry", "onSuccess", "onFailure")
             for status in ("Succeeded", "Failed", "Errored", "Overridden")}
    assert [key for key, engaged in table.items() if engaged] == [
        ("beforeEntry", "Failed"), ("beforeEntry", "Errored"),
        ("onSuccess", "Failed"), ("onSuccess", "Errored"),
        ("onFailure", "Succeeded")]
