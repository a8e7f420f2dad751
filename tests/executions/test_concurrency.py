"""The concurrency proof: 200 executions at once on a 4-stage pipeline, on PostgreSQL.

Worker processes run the real task code (claim, Simulate runner, finish,
continuation) while starter processes start 200 executions at once. A monitor
thread checks continuously that no stage holds two executions, and afterwards
the occupancy of every stage is rebuilt from the event log. Only the queue is
the test's: a multiprocessing queue stands in for django-q2's broker (the edge
of the world here).
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection, connections
from django.db.models import Count

from executions import services, tasks
from executions.choices import PipelineExecutionStatus
from executions.models import ActionExecution, ExecutionEvent, PipelineExecution, StageExecution
from tests.executions.conftest import sim, simple_pipeline

EXECUTIONS = 200
WORKERS = 4
STARTERS = 8
STAGES = ["Source", "Build", "Test", "Deploy"]

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the concurrency proof runs on PostgreSQL: set DATABASE_URL"),
]


@pytest.fixture(autouse=True)
def _no_fsync_per_commit():
    """Durability is not under test: commits need not wait for the disk (new
    connections, i.e. the worker threads', inherit the database setting)."""
    name = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        cursor.execute("SET synchronous_commit = off")
    yield


def four_stage_pipeline(mode: str):
    return simple_pipeline(f"load-{mode.lower()}", mode=mode, stages=[
        ("Build", [sim("Compile", DurationSeconds="0.002")]),
        ("Test", [sim("Check", "Test", DurationSeconds="0.002")]),
        ("Deploy", [sim("Release", "Deploy", DurationSeconds="0.002")]),
    ])


class Monitor(threading.Thread):
    """Samples the database continuously for a stage held by two executions."""

    def __init__(self, pipeline, locking: bool):
        super().__init__(daemon=True)
        self.pipeline, self.locking = pipeline, locking
        self.stop = threading.Event()
        self.samples = 0
        self.violations: list[str] = []
        self.max_sharing = 0

    def run(self):
        try:
            while not self.stop.is_set():
                held = (StageExecution.objects.filter(pipeline=self.pipeline,
                                                      status__in=["InProgress", "Stopping"])
                        .values("stage_name").annotate(n=Count("id")))
                running = (ActionExecution.objects.filter(pipeline=self.pipeline,
                                                          status="InProgress")
                           .values("stage_name")
                           .annotate(n=Count("execution", distinct=True)))
                for row in [*held, *running]:
                    self.max_sharing = max(self.max_sharing, row["n"])
                    if self.locking and row["n"] > 1:
                        self.violations.append(f"{row['stage_name']} held by {row['n']}")
                self.samples += 1
                time.sleep(0.01)
        finally:
            connection.close()


def _worker_process(work, done, errors):
    """A worker process: the real task code, fed from the test's queue."""
    try:
        while not done.is_set():
            try:
                pk = work.get(timeout=0.05)
            except queue.Empty:
                continue
            tasks.action_run(pk)
    except BaseException as exc:  # pragma: no cover - reported by the test
        errors.put(repr(exc))
    finally:
        connections.close_all()


def _starter_process(pipeline_pk, count, barrier, errors):
    try:
        from pipelines.models import Pipeline

        pipeline = Pipeline.objects.get(pk=pipeline_pk)
        barrier.wait()
        for _ in range(count):
            services.execution_start(pipeline=pipeline)
    except BaseException as exc:  # pragma: no cover
        errors.put(repr(exc))
    finally:
        connections.close_all()


def run_load(monkeypatch, mode: str, pipeline=None, count: int = EXECUTIONS):
    pipeline = pipeline or four_stage_pipeline(mode)
    # Processes, not threads: a thread holding the pipeline's row lock would
    # wait for the GIL behind a dozen others, and the test would measure that.
    mp = multiprocessing.get_context("fork")
    work, errors = mp.Queue(), mp.Queue()
    done, barrier = mp.Event(), mp.Barrier(STARTERS)
    monkeypatch.setattr(tasks, "enqueue", work.put)          # inherited by the children
    connections.close_all()
    workers = [mp.Process(target=_worker_process, args=(work, done, errors))
               for _ in range(WORKERS)]
    starters = [mp.Process(target=_starter_process,
                           args=(pipeline.pk, count // STARTERS, barrier, errors))
                for _ in range(STARTERS)]
    for p in [*workers, *starters]:
        p.start()
    monitor = Monitor(pipeline, locking=mode != "PARALLEL")
    monitor.start()
    started = time.monotonic()
    for p in starters:
        p.join(timeout=120)
    deadline = time.monotonic() + 300
    terminal = sorted(PipelineExecutionStatus.TERMINAL)
    while time.monotonic() < deadline:
        if PipelineExecution.objects.filter(pipeline=pipeline).count() == count and \
                not PipelineExecution.objects.filter(pipeline=pipeline).exclude(
                    status__in=terminal).exists():
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - started
    done.set()
    monitor.stop.set()
    for p in workers:
        p.join(timeout=60)
        if p.is_alive():  # pragma: no cover
            p.kill()
    monitor.join(timeout=5)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, problems
    executions = list(PipelineExecution.objects.filter(pipeline=pipeline).order_by("number"))
    assert len(executions) == count
    unfinished = [(e.number, e.status, e.inbound_stage_name) for e in executions
                  if e.status not in terminal]
    assert not unfinished, unfinished
    assert monitor.samples > 20
    assert monitor.violations == []
    print(f"{mode}: {count} executions ended in {elapsed:.1f} s, "
          f"{monitor.samples} monitor samples")
    return pipeline, executions, monitor


def occupancy_from_events(pipeline) -> tuple[int, dict[str, list[int]]]:
    """Replay the StageExecution events: the most executions ever in one stage at once,
    and the order in which executions entered each stage."""
    inside: dict[str, set[int]] = defaultdict(set)
    entered: dict[str, list[int]] = defaultdict(list)
    numbers = dict(PipelineExecution.objects.filter(pipeline=pipeline)
                   .values_list("pk", "number"))
    most = 0
    for e in ExecutionEvent.objects.filter(pipeline=pipeline, kind="StageExecution").order_by(
            "id"):
        if e.status == "InProgress" and e.previous_status == "":
            inside[e.stage_name].add(e.execution_id)
            entered[e.stage_name].append(numbers[e.execution_id])
        elif e.status in ("Succeeded", "Failed", "Stopped"):
            inside[e.stage_name].discard(e.execution_id)
        most = max(most, max((len(s) for s in inside.values()), default=0))
    return most, entered


def test_superseded_mode_never_shares_a_stage_and_the_last_started_succeeds(monkeypatch):
    pipeline, executions, monitor = run_load(monkeypatch, "SUPERSEDED")
    statuses = {e.status for e in executions}
    assert statuses <= {"Succeeded", "Superseded"}
    assert executions[-1].status == "Succeeded"
    assert "Superseded" in statuses
    most, entered = occupancy_from_events(pipeline)
    assert most == 1
    for stage in STAGES:
        assert entered[stage] == sorted(entered[stage])  # nobody overtakes


def test_queued_mode_runs_every_execution_in_order(monkeypatch):
    pipeline, executions, monitor = run_load(monkeypatch, "QUEUED")
    assert {e.status for e in executions} == {"Succeeded"}
    most, entered = occupancy_from_events(pipeline)
    assert most == 1
    for stage in STAGES[1:]:
        assert entered[stage] == list(range(1, EXECUTIONS + 1)), stage


def test_parallel_mode_runs_executions_side_by_side(monkeypatch):
    pipeline, executions, monitor = run_load(monkeypatch, "PARALLEL")
    assert {e.status for e in executions} == {"Succeeded"}
    most, _ = occupancy_from_events(pipeline)
    assert most > 1 and monitor.max_sharing > 1


def retrying_pipeline(mode: str):
    """Deploy fails at each execution's first attempt (a real shell command leaving a
    marker per execution) and its onFailure RETRY retries it (docs/semantics.md §15)."""
    import tempfile

    from pipelines.services import pipeline_save
    from tests.factories import action

    markers = tempfile.mkdtemp(prefix="conveyor-retry-")
    pipeline = simple_pipeline(f"retry-{mode.lower()}", mode=mode, stages=[
        ("Build", [sim("Compile", DurationSeconds="0.002")]),
        ("Test", [sim("Check", "Test", DurationSeconds="0.002")]),
        ("Deploy", [action("Release", "Deploy", "Shell", commands=[
            f"m={markers}/#{{codepipeline.PipelineExecutionId}}; "
            "test -f $m || { touch $m; exit 1; }"])]),
    ])
    doc = dict(pipeline.document)
    doc["stages"][3]["onFailure"] = {"result": "RETRY"}
    return pipeline_save(document=doc).pipeline


def test_an_automatic_retry_keeps_the_stage_lock_while_others_queue(monkeypatch, settings):
    settings.CONVEYOR_SANDBOX = "none"  # the markers live outside the workspaces
    pipeline, executions, monitor = run_load(monkeypatch, "QUEUED",
                                             retrying_pipeline("QUEUED"), count=40)
    assert {e.status for e in executions} == {"Succeeded"}
    most, entered = occupancy_from_events(pipeline)
    assert most == 1
    # Every execution entered Deploy twice in a row: no queued execution slipped in
    # between a failed attempt and its automatic retry.
    assert entered["Deploy"] == [n for n in range(1, 41) for _ in (1, 2)]
    assert StageExecution.objects.filter(pipeline=pipeline, stage_name="Deploy",
                                         retry_trigger="AutomatedStageRetry").count() == 40


def test_an_automatic_retry_in_superseded_mode_never_shares_the_stage(monkeypatch, settings):
    settings.CONVEYOR_SANDBOX = "none"  # the markers live outside the workspaces
    pipeline, executions, monitor = run_load(monkeypatch, "SUPERSEDED",
                                             retrying_pipeline("SUPERSEDED"), count=40)
    assert {e.status for e in executions} <= {"Succeeded", "Superseded"}
    assert executions[-1].status == "Succeeded"
    most, entered = occupancy_from_events(pipeline)
    assert most == 1
    deploy = entered["Deploy"]
    assert deploy == [n for n in sorted(set(deploy)) for _ in (1, 2)]
