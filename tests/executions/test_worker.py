"""Claims, duplicate deliveries, leases, the sweeper and timeouts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from executions import engine, tasks, worker
from executions.models import ActionExecution, ExecutionEvent
from tests.executions.conftest import events, sim, simple_pipeline

PE, SE, AE = "PipelineExecution", "StageExecution", "ActionExecution"


def test_a_task_delivered_twice_runs_its_action_once(driver):
    pipeline = simple_pipeline()
    ex = driver.start(pipeline)
    pk = driver.pending[0]
    assert driver.run_one(pk) == "Succeeded"
    before = ExecutionEvent.objects.count()
    assert driver.run_one(pk) is None                        # second delivery
    assert ExecutionEvent.objects.count() == before
    assert ActionExecution.objects.filter(execution=ex, action_name="Checkout").count() == 1


def test_a_repeated_or_foreign_finish_report_changes_nothing(driver):
    pipeline = simple_pipeline()
    driver.start(pipeline)
    pk = driver.take("Source", "Checkout")
    driver.call(engine.action_claim, pk, worker="host:1:1")
    assert driver.call(engine.action_finish, pk, worker="other:2:2", status="Failed") is False
    assert driver.call(engine.action_finish, pk, worker="host:1:1", status="Succeeded") is True
    assert driver.call(engine.action_finish, pk, worker="host:1:1", status="Failed") is False
    assert ActionExecution.objects.get(pk=pk).status == "Succeeded"


def test_the_sweeper_fails_an_action_whose_worker_stopped_renewing_its_lease(driver, settings):
    settings.CONVEYOR_LEASE_SECONDS = 30
    pipeline = simple_pipeline()
    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    pk = driver.take("Build", "Compile")
    driver.call(engine.action_claim, pk, worker="gone-host:99:1")
    soon = timezone.now() + timedelta(seconds=20)
    assert driver.call(engine.sweep, soon).lost == 0          # lease still valid
    assert engine.lease_renew(pk, worker="gone-host:99:1") is True
    later = timezone.now() + timedelta(seconds=31)
    report = driver.call(engine.sweep, later)
    assert report.lost == 1
    ex.refresh_from_db()
    action = ActionExecution.objects.get(pk=pk)
    assert action.status == "Failed" and action.summary.startswith(
        "Worker lost: no heartbeat from gone-host:99:1")
    assert ex.status == "Failed"
    assert events(ex)[-3:] == [(AE, "Build", "Compile", "Failed"), (SE, "Build", "", "Failed"),
                               (PE, "", "", "Failed")]
    assert engine.lease_renew(pk, worker="gone-host:99:1") is False   # the worker hears it


def test_the_sweeper_hands_out_again_an_action_no_worker_claimed(driver, settings):
    settings.CONVEYOR_DISPATCH_SECONDS = 60
    pipeline = simple_pipeline()
    ex = driver.start(pipeline)
    lost_message = driver.pending.pop()
    report = driver.call(engine.sweep, timezone.now() + timedelta(seconds=61))
    assert report.redispatched == 1 and driver.pending == [lost_message]
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Succeeded"


def test_a_waiting_action_past_its_timeout_fails_with_the_time_it_had(driver):
    pipeline = simple_pipeline(stages=[
        ("Approve", [sim("Review", "Approval", Outcome="Waiting", timeoutInMinutes=5)]),
        ("Deploy", [sim("Release")]),
    ])
    ex = driver.start(pipeline)
    driver.run()
    assert driver.call(engine.sweep, timezone.now() + timedelta(minutes=4)).timed_out == 0
    assert driver.call(engine.sweep, timezone.now() + timedelta(minutes=6)).timed_out == 1
    review = ActionExecution.objects.get(execution=ex, action_name="Review")
    assert (review.status, review.summary) == ("Failed", "Action timed out after 5 min")
    ex.refresh_from_db()
    assert ex.status == "Failed"


def test_a_running_action_past_its_deadline_is_stopped_by_its_own_worker(driver):
    pipeline = simple_pipeline(stages=[("Build", [sim("Slow", DurationSeconds=30)]),
                                       ("Deploy", [sim("Release")])])
    driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    pk = driver.take("Build", "Slow")
    # Claim it with a deadline already near: the heartbeat must stop the runner.
    original = engine.action_claim

    def claim_with_short_deadline(pk, *, worker):
        claim = original(pk, worker=worker)
        claim.action_execution.deadline_at = timezone.now() + timedelta(seconds=0.3)
        return claim

    engine_claim = engine.action_claim
    engine.action_claim = claim_with_short_deadline
    try:
        started = timezone.now()
        assert driver.run_one(pk) == "Failed"
    finally:
        engine.action_claim = engine_claim
    assert (timezone.now() - started).total_seconds() < 5
    action = ActionExecution.objects.get(pk=pk)
    assert action.summary == "Action timed out after 60 min"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_continuation_runs_the_next_action_in_the_same_task(driver):
    # Transactional: continuation happens at the real commit of the worker's step.
    pipeline = simple_pipeline(stages=[
        ("Build", [sim("A"), sim("B")]),
        ("Deploy", [sim("Release")]),
    ])
    ex = driver.start(pipeline)
    first = driver.pending.pop()
    with driver.capture(execute=True):
        tasks.action_run(first)
    # Source → Build's A ran in-process; B was enqueued; Release waits for B.
    assert [ActionExecution.objects.get(pk=pk).action_name for pk in driver.pending] == ["B"]
    assert ActionExecution.objects.get(execution=ex, action_name="A").status == "Succeeded"
    # A was claimed for this thread in the transaction that started it; B waits
    # unclaimed in the queue for any worker.
    assert ActionExecution.objects.get(execution=ex, action_name="A").worker == \
        engine.worker_name()
    assert ActionExecution.objects.get(execution=ex, action_name="B").worker == ""
    with driver.capture(execute=True):
        tasks.action_run(driver.pending.pop())
    ex.refresh_from_db()
    assert ex.status == "Succeeded" and driver.pending == []


def test_a_runner_crash_fails_the_action_with_its_traceback(driver, monkeypatch):
    from runners.simulate import SimulateRunner

    def boom(self, ctx):
        raise KeyError("no such thing")

    monkeypatch.setattr(SimulateRunner, "run", boom)
    ex = driver.start(simple_pipeline())
    assert driver.run_one() == "Failed"
    action = ex.action_executions.get()
    assert action.summary == "Crashed: KeyError: 'no such thing'"
    assert "Traceback" in action.traceback and "boom" in action.traceback
    assert worker  # the module under test


def test_the_sweep_command_reports_what_it_ended(driver, settings):
    from io import StringIO

    from django.core.management import call_command
    from django_q.models import Schedule

    settings.CONVEYOR_LEASE_SECONDS = 0.001
    driver.start(simple_pipeline())
    pk = driver.take("Source", "Checkout")
    driver.call(engine.action_claim, pk, worker="gone:1:1")
    out = StringIO()
    with driver.capture(execute=True):
        call_command("sweep_actions", stdout=out)
    assert out.getvalue().strip() == "lost 1, timed out 0, redispatched 0"
    assert Schedule.objects.get(name="conveyor-sweep-actions").func == "executions.tasks.sweep"


def test_an_action_claimed_ahead_is_not_claimed_again_by_a_second_delivery(driver):
    pipeline = simple_pipeline(source_namespace="SourceVariables", stages=[
        ("Build", [sim("Compile", inputArtifacts=[{"name": "Src"}],
                       Summary="built #{SourceVariables.CommitId}")]),
    ])
    ex = driver.start(pipeline)
    source = driver.take("Source", "Checkout")
    me = engine.worker_name()
    tasks._local.slot = slot = tasks._Continuation()     # inside a worker's task
    try:
        assert driver.run_one(source) == "Succeeded"
    finally:
        tasks._local.slot = None
    commit = ActionExecution.objects.get(pk=source).output_variables["CommitId"]
    claim = slot.next
    assert isinstance(claim, engine.Claim) and driver.pending == []     # nothing queued
    row = ActionExecution.objects.get(pk=claim.action_execution.pk)
    assert (row.action_name, row.worker, row.status) == ("Compile", me, "InProgress")
    assert row.lease_expires_at > timezone.now() + timedelta(seconds=5)
    assert row.configuration["configuration"]["Summary"] == f"built {commit}"   # resolved
    assert claim.inputs == {"Src": ex.artifacts.get(name="Src").storage_name}
    assert driver.run_one(row.pk) is None          # a late delivery finds it claimed
    assert driver.call(worker.run_claimed, claim, me) == "Succeeded"
    ex.refresh_from_db()
    assert ex.status == "Succeeded"
    assert ActionExecution.objects.get(pk=row.pk).summary == f"built {commit}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_action_that_cannot_be_resolved_is_not_claimed_ahead_and_fails_naming_it(driver):
    pipeline = simple_pipeline(source_namespace="SourceVariables", stages=[
        ("Build", [sim("Compile", Summary="#{SourceVariables.NoSuchVariable}")]),
    ])
    ex = driver.start(pipeline)
    with driver.capture(execute=True):
        tasks.action_run(driver.pending.pop())
    ex.refresh_from_db()
    compile_ = ActionExecution.objects.get(execution=ex, action_name="Compile")
    assert (ex.status, compile_.status) == ("Failed", "Failed")
    assert compile_.summary.startswith('Cannot resolve "#{SourceVariables.NoSuchVariable}"')
    assert driver.pending == []


def test_the_workspace_of_a_finished_action_is_removed(driver, settings):
    driver.start(simple_pipeline())
    assert driver.run() == 3
    assert worker.janitor.drain(timeout=10)
    root = settings.WORKSPACE_ROOT
    assert not root.exists() or list(root.iterdir()) == []
