"""Retention: ended executions older than N days go, with their logs and unreferenced
artifact contents, in batches; running ones and the ones still read never go."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from conditions.logs import rule_log_name
from executions import artifacts, engine, retention, services
from executions.models import (
    ActionExecution,
    Artifact,
    ExecutionEvent,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from pipelines.services import pipeline_save
from runners import logfile
from tests.executions.conftest import sim
from tests.factories import definition
from triggers import changes


def _pipeline(name, mode):
    """Source (artifact Src holding the variable ``content``) → Build (ends as the variable
    ``outcome`` says) → Deploy, of Simulate actions."""
    doc = definition(name, executionMode=mode, stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}],
                        OutputContent="#{variables.content}")]),
        ("Build", [sim("Compile", Outcome="#{variables.outcome}", inputArtifacts=[
            {"name": "Src"}])]),
        ("Deploy", [sim("Release")]),
    ], variables=[{"name": "content", "defaultValue": "same"},
                  {"name": "outcome", "defaultValue": "Succeeded"}])
    return pipeline_save(document=doc).pipeline


def run(driver, pipeline, **variables) -> PipelineExecution:
    execution = driver.start(pipeline, variables=variables or None)
    driver.run()
    execution.refresh_from_db()
    return execution


def age(execution: PipelineExecution, days: float) -> None:
    """Make an execution look as if it ended (and started) ``days`` days ago."""
    then = timezone.now() - timedelta(days=days)
    PipelineExecution.objects.filter(pk=execution.pk).update(
        created_at=then, started_at=then, ended_at=then if execution.ended_at else None)


def log_files(execution) -> list[Path]:
    return [Path(settings.LOG_ROOT) / p for p in ActionExecution.objects.filter(
        execution=execution).exclude(log_path="").values_list("log_path", flat=True)]


def stored(execution) -> list[str]:
    return list(Artifact.objects.filter(execution=execution)
                .values_list("storage_name", flat=True))


def rows_of(execution_pk: int) -> dict[str, int]:
    return {
        "stages": StageExecution.objects.filter(execution_id=execution_pk).count(),
        "actions": ActionExecution.objects.filter(execution_id=execution_pk).count(),
        "artifacts": Artifact.objects.filter(execution_id=execution_pk).count(),
        "revisions": SourceRevision.objects.filter(execution_id=execution_pk).count(),
        "events": ExecutionEvent.objects.filter(execution_id=execution_pk).count(),
    }


def test_old_ended_executions_go_with_their_logs_and_artifacts(driver):
    pipeline = _pipeline("demo", "PARALLEL")
    old_ok = run(driver, pipeline, content="first")
    old_failed = run(driver, pipeline, content="second", outcome="Failed")
    recent = run(driver, pipeline, content="third")
    assert [old_ok.status, old_failed.status, recent.status] == [
        "Succeeded", "Failed", "Succeeded"]
    age(old_ok, 40)
    age(old_failed, 31)
    old_logs = log_files(old_ok) + log_files(old_failed)
    old_content = stored(old_ok) + stored(old_failed)
    assert len(old_logs) == 5 and all(p.exists() for p in old_logs)
    assert len(old_content) == 2 and all(artifacts.storage().exists(n) for n in old_content)

    report = retention.executions_prune(days=30)

    assert (report.executions, report.action_executions, report.logs,
            report.artifacts_deleted, report.artifacts_kept) == (2, 5, 5, 2, 0)
    assert list(PipelineExecution.objects.values_list("number", flat=True)) == [recent.number]
    for gone in (old_ok, old_failed):
        assert rows_of(gone.pk) == dict.fromkeys(rows_of(gone.pk), 0)
        # Their folders LOG_ROOT/demo/<execution id>/ went too.
        assert not (Path(settings.LOG_ROOT) / "demo" / str(gone.execution_id)).exists()
    assert not any(p.exists() for p in old_logs)
    # and the indexes beside them (when each line arrived, runners/logfile.py)
    assert all(logfile.index_path(p).exists() for p in log_files(recent))
    assert not any(logfile.index_path(p).exists() for p in old_logs)
    assert not any(artifacts.storage().exists(n) for n in old_content)
    # The recent execution is whole.
    assert all(p.exists() for p in log_files(recent))
    assert all(artifacts.storage().exists(n) for n in stored(recent))
    assert rows_of(recent.pk)["events"] > 0


def test_an_executions_commands_rule_logs_go_with_its_folder(driver):
    pipeline = _pipeline("demo", "PARALLEL")
    old = run(driver, pipeline, content="first")
    run(driver, pipeline, content="second")   # the latest is kept whatever its age
    age(old, 40)
    # Where conditions.evaluation writes a Commands rule's log: the execution's folder.
    rule_log = Path(settings.LOG_ROOT) / rule_log_name(
        pipeline_name="demo", execution_id=old.execution_id,
        rule_execution_id="00000000-0000-0000-0000-00000000000a")
    rule_log.write_text("2026-12-03T00:00:00.000Z checked\n")
    action_logs = log_files(old)

    report = retention.executions_prune(days=30)

    assert report.logs == len(action_logs) + 1
    assert not rule_log.exists()
    assert not (Path(settings.LOG_ROOT) / "demo" / str(old.execution_id)).exists()


def test_an_artifact_content_another_execution_still_names_is_kept(driver, api, owner):
    pipeline = _pipeline("demo", "PARALLEL")
    old = run(driver, pipeline, content="shared bytes")
    kept = run(driver, pipeline, content="shared bytes")
    [name] = stored(old)
    assert stored(kept) == [name]                      # one content, stored once
    age(old, 90)

    report = retention.executions_prune(days=30)

    assert (report.executions, report.artifacts_deleted, report.artifacts_kept) == (1, 0, 1)
    assert artifacts.storage().exists(name)
    response = api(owner).get(f"/api/executions/{kept.execution_id}/artifacts/Src/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body == artifacts.storage().open(name).read()


def test_running_and_stopping_executions_are_never_pruned_whatever_their_age(driver):
    pipeline = _pipeline("demo", "PARALLEL")
    running = driver.start(pipeline)               # its source action is pending: InProgress
    stopping = driver.start(pipeline)
    # A worker holds its source action, so stop-and-wait leaves it Stopping.
    driver.call(engine.action_claim, driver.take("Source", "Checkout", stopping),
                worker="elsewhere:1:1")
    stopping = driver.call(services.execution_stop, execution=stopping, abandon=False,
                           reason="wait for it")
    assert stopping.status == "Stopping"
    for execution in (running, stopping):
        age(execution, 400)
    driver.pending.clear()                         # leave them unfinished
    old_ended = run(driver, pipeline)
    age(old_ended, 400)
    run(driver, pipeline)

    report = retention.executions_prune(days=1)

    assert report.executions == 1                  # the old ended one only
    assert not PipelineExecution.objects.filter(pk=old_ended.pk).exists()
    statuses = dict(PipelineExecution.objects.values_list("number", "status"))
    assert statuses[running.number] == "InProgress"
    assert statuses[stopping.number] == "Stopping"


def test_executions_are_deleted_in_batches_of_the_given_size(driver):
    pipeline = _pipeline("demo", "PARALLEL")
    old = [run(driver, pipeline, content=f"c{i}") for i in range(5)]
    newest = run(driver, pipeline)
    for execution in old:
        age(execution, 60)

    first = retention.executions_prune(days=30, batch_size=2, max_batches=1)
    assert (first.batches, first.executions) == (1, 2)
    # The first batch committed on its own: its two oldest executions are gone.
    assert not PipelineExecution.objects.filter(pk__in=[old[0].pk, old[1].pk]).exists()

    rest = retention.executions_prune(days=30, batch_size=2)
    assert (rest.batches, rest.executions) == (2, 3)
    assert list(PipelineExecution.objects.values_list("pk", flat=True)) == [newest.pk]


def test_a_dry_run_counts_and_deletes_nothing(driver):
    pipeline = _pipeline("demo", "PARALLEL")
    old = run(driver, pipeline, content="a")
    shared_old = run(driver, pipeline, content="b")
    run(driver, pipeline, content="b")
    age(old, 45)
    age(shared_old, 45)
    before = (PipelineExecution.objects.count(), ActionExecution.objects.count(),
              sum(1 for _ in Path(settings.LOG_ROOT).rglob("*.log")))

    report = retention.executions_prune(days=30, dry_run=True)

    assert (report.executions, report.action_executions, report.logs,
            report.artifacts_deleted, report.artifacts_kept) == (2, 6, 6, 1, 1)
    assert str(report).startswith("would prune 2 execution(s)")
    assert before == (PipelineExecution.objects.count(), ActionExecution.objects.count(),
                      sum(1 for _ in Path(settings.LOG_ROOT).rglob("*.log")))


def test_retention_off_by_default_prunes_nothing(driver, settings):
    settings.CONVEYOR_RETENTION_DAYS = 0
    pipeline = _pipeline("demo", "PARALLEL")
    old = run(driver, pipeline)
    run(driver, pipeline)
    age(old, 3650)
    report = retention.executions_prune()
    assert report.executions == 0
    assert str(report).startswith("Retention is off")
    assert PipelineExecution.objects.count() == 2


def test_the_setting_gives_the_default_age(driver, settings):
    settings.CONVEYOR_RETENTION_DAYS = 10
    pipeline = _pipeline("demo", "PARALLEL")
    eleven, nine = run(driver, pipeline), run(driver, pipeline)
    run(driver, pipeline)
    age(eleven, 11)
    age(nine, 9)
    assert retention.executions_prune().executions == 1
    assert not PipelineExecution.objects.filter(pk=eleven.pk).exists()
    assert PipelineExecution.objects.filter(pk=nine.pk).exists()


def test_change_detection_still_knows_the_commits_it_released(driver):
    """Without the newest execution per pipeline and per source action, polling would
    release an unchanged repository again once its executions were pruned."""
    doc = definition("git", executionMode="PARALLEL", stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}],
                        RevisionId="#{variables.rev}", Outcome="#{variables.outcome}")]),
        ("Build", [sim("Compile")]),
    ], variables=[{"name": "rev", "defaultValue": "a" * 40},
                  {"name": "outcome", "defaultValue": "Succeeded"}])
    pipeline = pipeline_save(document=doc).pipeline
    older = run(driver, pipeline, rev="1" * 40)
    built = run(driver, pipeline, rev="2" * 40)
    failed_at_source = run(driver, pipeline, rev="3" * 40, outcome="Failed")
    assert SourceRevision.objects.filter(execution=built).exists()
    assert not SourceRevision.objects.filter(execution=failed_at_source).exists()
    for execution in (older, built, failed_at_source):
        age(execution, 100)

    report = retention.executions_prune(days=30)

    assert report.executions == 1
    assert set(PipelineExecution.objects.values_list("pk", flat=True)) == {
        built.pk, failed_at_source.pk}
    assert changes.change_seen(pipeline, "Checkout", "2" * 40).pk == built.pk


def test_the_rollback_target_of_a_running_rollback_is_kept(driver):
    pipeline = _pipeline("demo", "SUPERSEDED")
    target = run(driver, pipeline, content="v1")
    run(driver, pipeline, content="v2")
    rollback = driver.call(services.stage_rollback, pipeline=pipeline, stage_name="Deploy",
                           target_execution=target)
    assert rollback.status == "InProgress"
    age(target, 100)

    retention.executions_prune(days=30)
    assert PipelineExecution.objects.filter(pk=target.pk).exists()

    driver.run()
    rollback.refresh_from_db()
    assert rollback.status == "Succeeded"
    assert retention.executions_prune(days=30).executions == 1
    assert not PipelineExecution.objects.filter(pk=target.pk).exists()


def test_a_log_path_outside_log_root_is_never_deleted(driver, tmp_path):
    pipeline = _pipeline("demo", "PARALLEL")
    old = run(driver, pipeline)
    run(driver, pipeline)
    age(old, 100)
    outside = tmp_path / "precious.txt"
    outside.write_text("keep me")
    # LOG_ROOT is tmp_path/logs (tests/conftest.py): "../precious.txt" is beside it.
    ActionExecution.objects.filter(execution=old).update(log_path=f"../{outside.name}")

    assert retention.executions_prune(days=30).executions == 1
    assert outside.read_text() == "keep me"


def test_the_command_prunes_and_reports(driver):
    pipeline = _pipeline("demo", "PARALLEL")
    old = run(driver, pipeline, content="x")
    run(driver, pipeline)
    age(old, 40)
    out = StringIO()
    call_command("prune_executions", "--days", "30", "--dry-run", stdout=out)
    assert out.getvalue().startswith("would prune 1 execution(s)")
    assert PipelineExecution.objects.filter(pk=old.pk).exists()
    out = StringIO()
    call_command("prune_executions", "--days", "30", "--batch-size", "10", stdout=out)
    assert out.getvalue().startswith("pruned 1 execution(s)")
    assert "3 action execution(s), 3 log file(s), 1 stored artifact(s)" in out.getvalue()
    assert "in 1 batch(es)" in out.getvalue()
    assert not PipelineExecution.objects.filter(pk=old.pk).exists()


def test_the_command_refuses_a_negative_age_or_an_empty_batch(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--days"):
        call_command("prune_executions", "--days", "-1")
    with pytest.raises(CommandError, match="--batch-size"):
        call_command("prune_executions", "--batch-size", "0")


def test_the_daily_schedule_follows_the_setting_and_is_made_once(db, settings):
    from django_q.models import Schedule

    settings.CONVEYOR_RETENTION_DAYS = 30
    retention.retention_schedule_ensure()
    retention.retention_schedule_ensure()
    call_command("prune_executions", "--install-schedule", stdout=StringIO())
    schedule = Schedule.objects.get(name=retention.SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "executions.retention.prune_task", Schedule.DAILY, -1)
    assert Schedule.objects.filter(name=retention.SCHEDULE_NAME).count() == 1
    settings.CONVEYOR_RETENTION_DAYS = 0
    retention.retention_schedule_ensure()
    assert not Schedule.objects.filter(name=retention.SCHEDULE_NAME).exists()


def test_the_scheduled_task_prunes_with_the_setting(driver, settings):
    settings.CONVEYOR_RETENTION_DAYS = 7
    pipeline = _pipeline("demo", "PARALLEL")
    old = run(driver, pipeline)
    run(driver, pipeline)
    age(old, 8)
    assert retention.prune_task().startswith("pruned 1 execution(s)")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED: PostgreSQL only")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_batch_skips_an_execution_the_engine_holds_and_waits_for_nothing(
        driver, django_capture_on_commit_callbacks):
    """Another transaction holds one old execution's row (as the engine's compare-and-set
    would): the prune neither waits for it nor deletes it, and takes the others."""
    pipeline = _pipeline("demo", "PARALLEL")
    held, free = run(driver, pipeline), run(driver, pipeline)
    run(driver, pipeline)
    age(held, 50)
    age(free, 50)
    locked, release = threading.Event(), threading.Event()

    def hold():
        from django.db import connections
        try:
            with transaction.atomic():
                PipelineExecution.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(10)
        report = retention.executions_prune(days=30)
    finally:
        release.set()
        thread.join()
    assert report.executions == 1
    assert PipelineExecution.objects.filter(pk=held.pk).exists()
    assert not PipelineExecution.objects.filter(pk=free.pk).exists()
    assert retention.executions_prune(days=30).executions == 1
