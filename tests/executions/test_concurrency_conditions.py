"""The concurrency proof with stage conditions (docs/conditions.md §4), on PostgreSQL.

``test_concurrency``'s load (starter and worker processes, a monitor thread sampling
for a stage held twice) on a pipeline whose Test stage has a beforeEntry condition that
skips about half the executions and whose Deploy stage has a beforeEntry and an onSuccess
condition: the workers run condition evaluations too (the test's multiprocessing queue
stands in for django-q2's broker, as there). Afterwards the event log is replayed: a
condition is only ever evaluated while its execution holds the stage, and no stage
ever holds two executions.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
from django.db import connection  # noqa: F401 (the skipif condition names it)

from conditions import evaluation
from conditions import tasks as condition_tasks
from conditions.models import ConditionExecution
from executions import tasks
from executions.models import ExecutionEvent, PipelineExecution, StageExecution
from pipelines.services import pipeline_save
from tests.executions.conftest import sim, simple_pipeline
from tests.executions.test_concurrency import _no_fsync_per_commit, run_load  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the concurrency proof runs on PostgreSQL: set DATABASE_URL"),
]

COUNT = 40


def _rule(name: str, value: str, expected: str, operator: str = "EQ") -> dict:
    return {"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                         "provider": "VariableCheck", "version": "1"},
            "configuration": {"Variable": value, "Value": expected, "Operator": operator}}


def conditioned_pipeline(mode: str):
    pipeline = simple_pipeline(f"gated-{mode.lower()}", mode=mode, stages=[
        ("Build", [sim("Compile", DurationSeconds="0.002")]),
        ("Test", [sim("Check", "Test", DurationSeconds="0.002")]),
        ("Deploy", [sim("Release", "Deploy", DurationSeconds="0.002")]),
    ])
    doc = dict(pipeline.document)
    # About half the execution ids start with 0-7: those run Test, the others skip it.
    doc["stages"][2]["beforeEntry"] = {"conditions": [{"result": "SKIP", "rules": [
        _rule("Half", "#{codepipeline.PipelineExecutionId}", "[0-7].*", "MATCHES")]}]}
    doc["stages"][3]["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [
        _rule("Name", "#{codepipeline.PipelineName}", pipeline.name)]}]}
    doc["stages"][3]["onSuccess"] = {"conditions": [{"result": "FAIL", "rules": [
        _rule("Still", "#{codepipeline.PipelineName}", pipeline.name)]}]}
    return pipeline_save(document=doc).pipeline


def _run(pk: int, _action_run=tasks.action_run) -> None:
    """The worker's task: an action execution, or (negative) a condition evaluation."""
    if pk < 0:
        evaluation.condition_evaluate(-pk)
    else:
        _action_run(pk)


def load(monkeypatch, mode: str):
    pipeline = conditioned_pipeline(mode)
    monkeypatch.setattr(tasks, "action_run", _run)  # inherited by the worker processes

    def enqueue_condition(pk: int) -> None:
        tasks.enqueue(-pk)  # the same queue as the actions (run_load patches enqueue)

    monkeypatch.setattr(condition_tasks, "enqueue", enqueue_condition)
    return run_load(monkeypatch, mode, pipeline, count=COUNT)


def conditions_inside_their_stage(pipeline) -> list[str]:
    """Replay the events: every condition event of (execution, stage) falls while that
    execution holds the stage (entered, not yet left)."""
    inside: dict[str, set[int]] = defaultdict(set)
    problems = []
    for e in ExecutionEvent.objects.filter(pipeline=pipeline).order_by("id"):
        if e.kind == "StageExecution":
            if e.status == "InProgress" and e.previous_status == "":
                inside[e.stage_name].add(e.execution_id)
            elif e.status in ("Succeeded", "Failed", "Stopped", "Skipped"):
                inside[e.stage_name].discard(e.execution_id)
        elif e.kind == "condition" and e.execution_id not in inside[e.stage_name]:
            problems.append(f"#{e.id} {e.stage_name} {e.status} outside the stage")
        if any(len(s) > 1 for s in inside.values()):
            problems.append(f"#{e.id}: a stage held by two executions")
    return problems


def test_queued_executions_with_conditions_keep_the_stage_lock_and_their_order(monkeypatch):
    pipeline, executions, monitor = load(monkeypatch, "QUEUED")
    assert {e.status for e in executions} == {"Succeeded"}
    assert conditions_inside_their_stage(pipeline) == []
    test_stages = dict(StageExecution.objects.filter(pipeline=pipeline, stage_name="Test")
                       .values_list("execution__execution_id", "status"))
    for execution_id, status in test_stages.items():
        assert status == ("Succeeded" if str(execution_id)[0] in "01234567" else "Skipped")
    assert {"Succeeded", "Skipped"} <= set(test_stages.values())
    # Every execution passed Deploy's two conditions, one at a time, in order.
    entered = list(ExecutionEvent.objects.filter(
        pipeline=pipeline, kind="StageExecution", stage_name="Deploy", previous_status="",
        status="InProgress").order_by("id").values_list("execution__number", flat=True))
    assert entered == list(range(1, COUNT + 1))
    assert ConditionExecution.objects.filter(
        stage_execution__pipeline=pipeline, stage_execution__stage_name="Deploy",
        status="Succeeded").count() == 2 * COUNT


def test_superseded_executions_with_conditions_never_share_a_stage(monkeypatch):
    pipeline, executions, monitor = load(monkeypatch, "SUPERSEDED")
    assert {e.status for e in executions} <= {"Succeeded", "Superseded"}
    assert executions[-1].status == "Succeeded"
    assert conditions_inside_their_stage(pipeline) == []
    assert not ConditionExecution.objects.filter(status="InProgress").exists()
    # A superseded execution never ran an action after its entry condition was abandoned.
    for ce in ConditionExecution.objects.filter(status="Abandoned"):
        assert not ce.stage_execution.action_executions.exists()
    assert PipelineExecution.objects.filter(pipeline=pipeline, status="Succeeded").count() >= 1
