"""Fixtures of the execution tests: pipelines made of Simulate actions and a driver.

The ``driver`` runs the engine's steps directly: on-commit effects run when
each step's transaction commits, the actions the engine dispatches collect in
``driver.pending`` instead of going to django-q2, and ``driver.run()`` runs
them one at a time through the real worker code (claim, runner, outputs,
finish). Nothing is mocked but the queue, which is the edge the tests hold.
"""

from __future__ import annotations

import pytest
from django.db import connection

from executions import engine, services, tasks, worker
from executions.models import ActionExecution, ExecutionEvent, PipelineExecution
from pipelines.services import pipeline_save
from tests.factories import action, definition


def sim(name: str, category: str = "Build", **config) -> dict:
    """A Simulate action; keyword arguments become its configuration (strings)."""
    fields = {k: v for k, v in config.items()
              if k in ("runOrder", "inputArtifacts", "outputArtifacts", "namespace",
                       "timeoutInMinutes")}
    configuration = {k: str(v) for k, v in config.items() if k not in fields}
    return action(name, category, "Simulate", configuration=configuration, **fields)


def simple_pipeline(name: str = "demo", *, mode: str = "SUPERSEDED", stages=None,
                    variables=None, source_namespace=None):
    """Source → Build → Deploy of instant Simulate actions (or the given later stages)."""
    if stages is None:
        stages = [("Build", [sim("Compile")]), ("Deploy", [sim("Release")])]
    doc = definition(
        name,
        stages=[("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}],
                                **({"namespace": source_namespace} if source_namespace
                                   else {}))]),
                *stages],
        executionMode=mode,
    )
    if variables is not None:
        doc["variables"] = variables
    return pipeline_save(document=doc).pipeline


class Driver:
    def __init__(self, capture):
        self.capture = capture
        self.pending: list[int] = []

    def call(self, fn, *args, **kwargs):
        with self.capture(execute=True):
            return fn(*args, **kwargs)

    def start(self, pipeline, **kwargs) -> PipelineExecution:
        return self.call(services.execution_start, pipeline=pipeline, **kwargs)

    def take(self, stage_name: str, action_name: str, execution=None) -> int:
        """Remove and return the pending action execution of that stage/action."""
        for pk in self.pending:
            ae = ActionExecution.objects.get(pk=pk)
            if ae.stage_name == stage_name and ae.action_name == action_name and (
                execution is None or ae.execution_id == execution.pk
            ):
                self.pending.remove(pk)
                return pk
        raise AssertionError(f"{stage_name}/{action_name} is not pending: {self.describe()}")

    def run_one(self, pk: int | None = None) -> str | None:
        if pk is None:
            pk = self.pending.pop(0)
        return self.call(worker.run_action, pk)

    def run_action(self, stage_name: str, action_name: str, execution=None) -> str | None:
        return self.run_one(self.take(stage_name, action_name, execution))

    def run(self, limit: int = 200) -> int:
        """Run pending actions (and those they lead to) until none is left."""
        count = 0
        while self.pending:
            assert count < limit, f"runaway: more than {limit} actions"
            self.run_one()
            count += 1
        return count

    def describe(self) -> list[str]:
        return [str(ActionExecution.objects.get(pk=pk)) for pk in self.pending]


@pytest.fixture
def driver(db, monkeypatch, django_capture_on_commit_callbacks):
    d = Driver(django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks, "enqueue", d.pending.append)
    return d


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    """Inside a test transaction another thread's write would wait for the test's
    own lock: keep heartbeats off the database unless a test asks for them."""
    settings.CONVEYOR_HEARTBEAT_SECONDS = 3600
    settings.CONVEYOR_LEASE_SECONDS = 3 * 3600
    settings.CONVEYOR_RECORD_PROCESS_AFTER = 3600


def events(execution=None, pipeline=None, kinds=None) -> list[tuple]:
    """The ExecutionEvents as (kind, stage, action, status) tuples, in order."""
    qs = ExecutionEvent.objects.order_by("id")
    if execution is not None:
        qs = qs.filter(execution=execution)
    if pipeline is not None:
        qs = qs.filter(pipeline=pipeline)
    if kinds is not None:
        qs = qs.filter(kind__in=kinds)
    return [(e.kind, e.stage_name, e.action_name, e.status) for e in qs]


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


__all__ = ["Driver", "engine", "events", "is_postgresql", "sim", "simple_pipeline"]
