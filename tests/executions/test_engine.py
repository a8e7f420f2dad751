"""The execution rules of docs/semantics.md, each with the sequence of events it produces."""

import pytest

from executions import engine
from executions.models import PipelineExecution, StageExecution
from tests.executions.conftest import events, sim, simple_pipeline

PE, SE, AE, IN = "PipelineExecution", "StageExecution", "ActionExecution", "Inbound"


def test_an_execution_runs_every_stage_in_order_and_succeeds(driver):
    pipeline = simple_pipeline()
    ex = driver.start(pipeline)
    assert driver.run() == 3
    ex.refresh_from_db()
    assert ex.status == "Succeeded" and ex.number == 1 and ex.ended_at is not None
    assert events(ex) == [
        (PE, "", "", "InProgress"),
        (SE, "Source", "", "InProgress"), (AE, "Source", "Checkout", "InProgress"),
        (AE, "Source", "Checkout", "Succeeded"), (SE, "Source", "", "Succeeded"),
        (SE, "Build", "", "InProgress"), (AE, "Build", "Compile", "InProgress"),
        (AE, "Build", "Compile", "Succeeded"), (SE, "Build", "", "Succeeded"),
        (SE, "Deploy", "", "InProgress"), (AE, "Deploy", "Release", "InProgress"),
        (AE, "Deploy", "Release", "Succeeded"), (SE, "Deploy", "", "Succeeded"),
        (PE, "", "", "Succeeded"),
    ]


# --- docs/semantics.md §1: stage locks ------------------------------------------------------------


def test_the_database_refuses_two_executions_in_one_stage(driver):
    from django.db import IntegrityError, transaction

    pipeline = simple_pipeline()
    first = driver.start(pipeline)
    second = driver.start(pipeline)
    held = StageExecution.objects.get(execution=first, stage_name="Source")
    with pytest.raises(IntegrityError), transaction.atomic():
        StageExecution.objects.create(execution=second, pipeline=pipeline, stage_name="Source",
                                      stage_index=0, status="InProgress")
    # A row that does not lock (PARALLEL) and an ended row are both allowed.
    StageExecution.objects.create(execution=second, pipeline=pipeline, stage_name="Source",
                                  stage_index=0, status="InProgress", locking=False)
    assert held.status == "InProgress"


# --- docs/semantics.md §2, §3, §4: inbound executions ---------------------------------------------


def test_an_execution_waits_inbound_while_the_next_stage_is_locked_and_enters_when_it_unlocks(
    driver,
):
    pipeline = simple_pipeline()
    first = driver.start(pipeline)
    driver.run_action("Source", "Checkout", first)          # first now in Build
    second = driver.start(pipeline)
    driver.run_action("Source", "Checkout", second)         # second reaches Build
    second.refresh_from_db()
    assert second.inbound_stage_name == "Build" and second.inbound_reason == "StageLocked"
    assert events(second)[-1] == (IN, "", "", "InProgress")
    # Source unlocked the moment second's Source stage ended: a third may enter it.
    assert not StageExecution.objects.filter(stage_name="Source", status="InProgress").exists()

    driver.run_action("Build", "Compile", first)            # Build unlocks
    second.refresh_from_db()
    assert second.inbound_stage_name == ""
    assert events(pipeline=pipeline, kinds=[SE])[-3:] == [
        (SE, "Build", "", "Succeeded"),                     # first leaves Build
        (SE, "Deploy", "", "InProgress"),                    # first enters Deploy
        (SE, "Build", "", "InProgress"),                     # second enters Build
    ]
    driver.run()
    assert set(PipelineExecution.objects.values_list("status", flat=True)) == {"Succeeded"}


def test_a_newer_execution_supersedes_the_inbound_one(driver):
    pipeline = simple_pipeline()
    first = driver.start(pipeline)
    driver.run_action("Source", "Checkout", first)
    second = driver.start(pipeline)
    driver.run_action("Source", "Checkout", second)
    third = driver.start(pipeline)
    driver.run_action("Source", "Checkout", third)
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.status == "Superseded" and second.superseded_by == third
    assert f"#{third.number}" in second.status_summary
    assert str(third.execution_id) in second.status_summary
    assert second.inbound_stage_name == "" and third.inbound_stage_name == "Build"
    assert events(second)[-2:] == [(IN, "", "", "InProgress"), (PE, "", "", "Superseded")]
    driver.run()
    statuses = dict(PipelineExecution.objects.values_list("number", "status"))
    assert statuses == {1: "Succeeded", 2: "Superseded", 3: "Succeeded"}


def test_executions_started_while_the_source_stage_is_busy_keep_only_the_newest(driver):
    pipeline = simple_pipeline()
    first = driver.start(pipeline)
    second = driver.start(pipeline)
    third = driver.start(pipeline)
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.status == "Superseded" and second.superseded_by == third
    assert events(second) == [(PE, "", "", "InProgress"), (IN, "", "", "InProgress"),
                              (PE, "", "", "Superseded")]
    assert third.inbound_stage_name == "Source"
    driver.run()
    first.refresh_from_db()
    third.refresh_from_db()
    assert (first.status, third.status) == ("Succeeded", "Succeeded")


def test_queued_executions_enter_in_order_and_none_is_superseded(driver):
    pipeline = simple_pipeline(mode="QUEUED")
    first = driver.start(pipeline)
    driver.run_action("Source", "Checkout", first)
    others = []
    for _ in range(3):
        ex = driver.start(pipeline)
        driver.run_action("Source", "Checkout", ex)
        others.append(ex)
    waiting = list(PipelineExecution.objects.filter(inbound_stage_name="Build")
                   .order_by("number").values_list("number", "inbound_reason"))
    assert waiting == [(2, "StageLocked"), (3, "QueuedBehind"), (4, "QueuedBehind")]
    entered = []
    while driver.pending:
        pk = driver.pending[0]
        from executions.models import ActionExecution

        ae = ActionExecution.objects.get(pk=pk)
        if ae.stage_name == "Build":
            entered.append(ae.execution.number)
        driver.run_one()
    assert entered == [1, 2, 3, 4]
    assert set(PipelineExecution.objects.values_list("status", flat=True)) == {"Succeeded"}


def test_parallel_executions_share_stages_without_locks(driver):
    pipeline = simple_pipeline(mode="PARALLEL")
    a = driver.start(pipeline)
    b = driver.start(pipeline)
    driver.run_action("Source", "Checkout", a)
    driver.run_action("Source", "Checkout", b)
    in_build = StageExecution.objects.filter(stage_name="Build", status="InProgress")
    assert in_build.count() == 2 and not in_build.filter(locking=True).exists()
    assert not PipelineExecution.objects.exclude(inbound_stage_name="").exists()
    driver.run()
    assert set(PipelineExecution.objects.values_list("status", flat=True)) == {"Succeeded"}


# --- docs/semantics.md §5, §6: runOrder groups and failures ---------------------------------------


def grouped_pipeline(**build):
    return simple_pipeline(stages=[
        ("Build", [sim("A", runOrder=1, **build.get("A", {})),
                   sim("B", runOrder=1, **build.get("B", {})),
                   sim("C", runOrder=2)]),
        ("Deploy", [sim("Release")]),
    ])


def test_actions_of_one_run_order_run_together_and_the_next_group_waits_for_all(driver):
    pipeline = grouped_pipeline()
    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    assert sorted(driver.describe()) == ["demo #1 / Build / A #1", "demo #1 / Build / B #1"]
    driver.run_action("Build", "A")
    assert sorted(driver.describe()) == ["demo #1 / Build / B #1"]
    driver.run_action("Build", "B")
    assert driver.describe() == ["demo #1 / Build / C #1"]
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Succeeded"


def test_a_failed_action_lets_running_ones_finish_then_fails_the_stage_and_unlocks_it(driver):
    pipeline = grouped_pipeline(A={"Outcome": "Failed", "Summary": "exit 2"})
    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout", ex)
    newer = driver.start(pipeline)
    driver.run_action("Source", "Checkout", newer)          # waits inbound at Build
    driver.run_action("Build", "A", ex)
    stage = StageExecution.objects.get(execution=ex, stage_name="Build")
    assert stage.status == "InProgress"                     # B still runs
    driver.run_action("Build", "B", ex)
    stage.refresh_from_db()
    ex.refresh_from_db()
    assert stage.status == "Failed" and 'Action "A" failed: exit 2' in stage.status_summary
    assert ex.status == "Failed" and 'Stage "Build" failed' in ex.status_summary
    assert not ex.action_executions.filter(action_name="C").exists()
    assert events(ex)[-6:] == [
        (AE, "Build", "A", "InProgress"), (AE, "Build", "B", "InProgress"),
        (AE, "Build", "A", "Failed"), (AE, "Build", "B", "Succeeded"),
        (SE, "Build", "", "Failed"), (PE, "", "", "Failed"),
    ]
    newer.refresh_from_db()
    assert newer.inbound_stage_name == ""                   # it entered the unlocked stage
    assert StageExecution.objects.get(execution=newer, stage_name="Build").status == "InProgress"


# --- docs/semantics.md §7: stop -------------------------------------------------------------------


def claim(driver, stage_name, action_name, execution=None, worker="test-host:1:1"):
    """Claim a pending action as a worker would (the runner's work is the test's)."""
    pk = driver.take(stage_name, action_name, execution)
    assert driver.call(engine.action_claim, pk, worker=worker) is not None
    return pk


def stop(driver, ex, abandon=False, reason="", user=None):
    from executions import services

    return driver.call(services.execution_stop, execution=ex, abandon=abandon, reason=reason,
                       user=user)


def test_stop_and_wait_lets_running_actions_finish_then_stops(driver, operator):
    pipeline = grouped_pipeline()
    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    a = claim(driver, "Build", "A")                        # A runs; B is still queued
    stop(driver, ex, reason="bad commit", user=operator)
    ex.refresh_from_db()
    assert ex.status == "Stopping" and ex.status_summary == "bad commit"
    assert ex.action_executions.get(action_name="B").status == "Abandoned"
    assert ex.action_executions.get(action_name="A").status == "InProgress"
    driver.call(engine.action_finish, a, worker="test-host:1:1", status="Succeeded")
    ex.refresh_from_db()
    assert ex.status == "Stopped" and ex.status_summary == "bad commit"
    # B's message is still in the queue: delivered now, it starts nothing.
    assert driver.run_one() is None and driver.pending == []
    assert not ex.action_executions.filter(action_name="C").exists()
    assert events(ex)[-8:] == [
        (AE, "Build", "A", "InProgress"), (AE, "Build", "B", "InProgress"),
        (PE, "", "", "Stopping"), (SE, "Build", "", "Stopping"),
        (AE, "Build", "B", "Abandoned"), (AE, "Build", "A", "Succeeded"),
        (SE, "Build", "", "Stopped"), (PE, "", "", "Stopped"),
    ]


def test_stop_and_abandon_ends_running_actions_at_once(driver):
    pipeline = simple_pipeline()
    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    compile_pk = claim(driver, "Build", "Compile")
    stop(driver, ex, abandon=True, reason="wrong branch")
    ex.refresh_from_db()
    assert ex.status == "Stopped"
    action = ex.action_executions.get(action_name="Compile")
    assert action.status == "Abandoned" and action.summary == "Abandoned: wrong branch"
    assert events(ex)[-5:] == [
        (PE, "", "", "Stopping"), (SE, "Build", "", "Stopping"),
        (AE, "Build", "Compile", "Abandoned"), (SE, "Build", "", "Stopped"),
        (PE, "", "", "Stopped"),
    ]
    # The worker's late report changes nothing.
    assert driver.call(engine.action_finish, compile_pk, worker="test-host:1:1",
                       status="Succeeded") is False
    assert ex.action_executions.get(action_name="Compile").status == "Abandoned"


def test_stopping_can_be_escalated_to_abandon_but_not_repeated(driver):
    from executions.errors import ExecutionConflict

    pipeline = simple_pipeline()
    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    claim(driver, "Build", "Compile")
    stop(driver, ex)
    with pytest.raises(ExecutionConflict, match="already stopping"):
        stop(driver, ex)
    stop(driver, ex, abandon=True)
    ex.refresh_from_db()
    assert ex.status == "Stopped"
    with pytest.raises(ExecutionConflict, match=r"has already ended \(Stopped\)"):
        stop(driver, ex, abandon=True)


def test_an_inbound_execution_stops_at_once(driver):
    pipeline = simple_pipeline()
    first = driver.start(pipeline)
    driver.run_action("Source", "Checkout", first)
    second = driver.start(pipeline)
    driver.run_action("Source", "Checkout", second)
    stop(driver, second, reason="not this one")
    second.refresh_from_db()
    assert second.status == "Stopped" and second.inbound_stage_name == ""
    assert events(second)[-2:] == [(IN, "", "", "InProgress"), (PE, "", "", "Stopped")]
    driver.run()
    first.refresh_from_db()
    assert first.status == "Succeeded"
    assert not StageExecution.objects.filter(execution=second, stage_name="Build").exists()


# --- docs/semantics.md §8: retry ------------------------------------------------------------------


def retry(driver, ex, stage_name, mode="FAILED_ACTIONS"):
    from executions import services

    return driver.call(services.stage_retry, execution=ex, stage_name=stage_name, mode=mode)


def failing_build(driver, pipeline_name="demo"):
    """An execution whose Build failed: A failed, B succeeded, C never ran."""
    pipeline = grouped_pipeline(A={"Outcome": "Failed"})
    ex = driver.start(pipeline)
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Failed"
    return pipeline, ex


def test_retrying_failed_actions_reruns_only_them_and_keeps_earlier_attempts(driver):
    from pipelines.services import pipeline_save

    pipeline, ex = failing_build(driver)
    # Fix A in a new version: the execution keeps the version it pinned, so A
    # fails again on retry; this shows the rerun uses the pinned document.
    doc = dict(pipeline.document)
    pipeline_save(document={**doc, "stages": [doc["stages"][0], {
        "name": "Build", "actions": [sim("A", runOrder=1), sim("B", runOrder=1),
                                     sim("C", runOrder=2)]}, doc["stages"][2]]})
    stage = retry(driver, ex, "Build")
    assert (stage.attempt, stage.retry_mode) == (2, "FAILED_ACTIONS")
    ex.refresh_from_db()
    assert ex.status == "InProgress" and ex.ended_at is None
    assert driver.describe() == ["demo #1 / Build / A #2"]   # B keeps its success
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Failed"
    assert list(ex.action_executions.filter(action_name="A").values_list("attempt", "status")
                ) == [(1, "Failed"), (2, "Failed")]


def test_retrying_all_actions_reruns_every_action_and_can_succeed(driver):
    pipeline = simple_pipeline(stages=[
        ("Build", [sim("Flaky", Outcome="#{variables.outcome}")]),
        ("Deploy", [sim("Release")]),
    ], variables=[{"name": "outcome", "defaultValue": "Failed"}])
    ex = driver.start(pipeline)
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Failed"
    # Retry reuses the execution's variables: still Failed. Simulate the fix
    # by changing the execution's variable, as a person would fix the world.
    type(ex).objects.filter(pk=ex.pk).update(variables={"outcome": "Succeeded"})
    retry(driver, ex, "Build", mode="ALL_ACTIONS")
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Succeeded"
    assert [e for e in events(ex) if e[0] == PE] == [
        (PE, "", "", "InProgress"), (PE, "", "", "Failed"), (PE, "", "", "InProgress"),
        (PE, "", "", "Succeeded")]
    assert list(StageExecution.objects.filter(execution=ex, stage_name="Build")
                .values_list("attempt", "status")) == [(1, "Failed"), (2, "Succeeded")]


def test_retry_is_refused_for_a_superseded_execution(driver):
    from executions.errors import ExecutionConflict

    pipeline = simple_pipeline()
    driver.start(pipeline)
    second = driver.start(pipeline)
    third = driver.start(pipeline)
    second.refresh_from_db()
    with pytest.raises(ExecutionConflict, match=f"superseded by #{third.number}"):
        retry(driver, second, "Source")


def test_retry_is_refused_once_a_newer_execution_entered_the_stage(driver):
    from executions.errors import ExecutionConflict

    pipeline, ex = failing_build(driver)
    newer = driver.start(pipeline)
    driver.run_action("Source", "Checkout", newer)          # enters the unlocked Build
    with pytest.raises(ExecutionConflict, match='#2 has entered stage "Build" since'):
        retry(driver, ex, "Build")


def test_retry_is_refused_while_running_and_for_a_stage_that_did_not_fail(driver):
    from executions.errors import ExecutionConflict, ExecutionInvalid, ExecutionNotFound

    pipeline = simple_pipeline()
    ex = driver.start(pipeline)
    with pytest.raises(ExecutionConflict, match="is InProgress"):
        retry(driver, ex, "Source")
    pipeline, failed = failing_build(driver, "other")
    with pytest.raises(ExecutionConflict, match='Stage "Source" .* is Succeeded'):
        retry(driver, failed, "Source")
    with pytest.raises(ExecutionConflict, match='never entered stage "Deploy"'):
        retry(driver, failed, "Deploy")
    with pytest.raises(ExecutionInvalid, match="not a retry mode"):
        retry(driver, failed, "Build", mode="SOME")
    with pytest.raises(ExecutionNotFound, match='no stage "Nope"'):
        retry(driver, failed, "Nope")


# --- transitions ------------------------------------------------------------------------------


def transition(driver, pipeline, stage_name, enabled, reason="", user=None):
    from executions import services

    return driver.call(services.transition_set, pipeline=pipeline, stage_name=stage_name,
                       enabled=enabled, reason=reason, user=user)


def test_a_disabled_transition_holds_executions_inbound_and_enabling_lets_the_newest_in(
    driver, operator,
):
    pipeline = simple_pipeline()
    assert transition(driver, pipeline, "Deploy", False, "freeze", operator) is True
    first = driver.start(pipeline)
    driver.run_action("Source", "Checkout", first)
    driver.run_action("Build", "Compile", first)
    first.refresh_from_db()
    assert (first.inbound_stage_name, first.inbound_reason) == ("Deploy", "TransitionDisabled")
    second = driver.start(pipeline)
    driver.run()                                             # second reaches Deploy too
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "Superseded" and first.superseded_by == second
    assert transition(driver, pipeline, "Deploy", True, user=operator) is True
    assert transition(driver, pipeline, "Deploy", True) is False      # no change
    driver.run()
    second.refresh_from_db()
    assert second.status == "Succeeded"
    assert [e[1:] for e in events(pipeline=pipeline, kinds=["Transition"])] == [
        ("Deploy", "", "Disabled"), ("Deploy", "", "Enabled")]


def test_disabling_a_transition_needs_a_reason_and_the_first_stage_has_none(driver):
    from executions.errors import ExecutionInvalid

    pipeline = simple_pipeline()
    with pytest.raises(ExecutionInvalid, match="reason is required"):
        transition(driver, pipeline, "Build", False, "  ")
    with pytest.raises(ExecutionInvalid, match="no transition into it"):
        transition(driver, pipeline, "Source", False, "x")


def test_queued_executions_held_by_a_transition_all_enter_in_order(driver):
    pipeline = simple_pipeline(mode="QUEUED")
    transition(driver, pipeline, "Build", False, "hold")
    for _ in range(3):
        ex = driver.start(pipeline)
        driver.run_action("Source", "Checkout", ex)
    assert list(PipelineExecution.objects.filter(inbound_stage_name="Build").order_by("number")
                .values_list("number", "inbound_reason")) == [
        (1, "TransitionDisabled"), (2, "TransitionDisabled"), (3, "TransitionDisabled")]
    transition(driver, pipeline, "Build", True)
    assert driver.describe() == ["demo #1 / Build / Compile #1"]
    driver.run()
    assert list(PipelineExecution.objects.order_by("number").values_list("status", flat=True)
                ) == ["Succeeded"] * 3
