"""Fixtures of the stage-condition tests: the executions driver, which also evaluates
conditions.

``cdriver`` is ``tests.executions.conftest.Driver`` whose queue also collects the
condition evaluations the engine hands out (``conditions.tasks.enqueue``); ``run()``
runs actions and evaluations, in the order they were handed out, through the real
worker and evaluation code. Nothing is mocked but the queue.
"""

from __future__ import annotations

import copy

import pytest

from conditions import evaluation
from conditions import tasks as condition_tasks
from executions import tasks
from pipelines.services import pipeline_save
from tests.executions.conftest import Driver, sim
from tests.factories import action, definition


class ConditionDriver(Driver):
    def __init__(self, capture):
        super().__init__(capture)
        self.conditions: list[int] = []

    def evaluate(self) -> int:
        """Evaluate the conditions handed out so far (and those they lead to)."""
        count = 0
        while self.conditions:
            self.call(evaluation.condition_evaluate, self.conditions.pop(0))
            count += 1
        return count

    def sweep(self, now=None):
        from executions import engine

        return self.call(engine.sweep, now)

    def run(self, limit: int = 200) -> int:
        count = 0
        while self.pending or self.conditions:
            assert count < limit, f"runaway: more than {limit} steps"
            if self.conditions:
                self.call(evaluation.condition_evaluate, self.conditions.pop(0))
            else:
                self.run_one()
            count += 1
        return count


@pytest.fixture
def cdriver(db, monkeypatch, django_capture_on_commit_callbacks):
    d = ConditionDriver(django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks, "enqueue", d.pending.append)
    monkeypatch.setattr(condition_tasks, "enqueue", d.conditions.append)
    return d


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    settings.CONVEYOR_HEARTBEAT_SECONDS = 3600
    settings.CONVEYOR_LEASE_SECONDS = 3 * 3600
    settings.CONVEYOR_RECORD_PROCESS_AFTER = 3600


def rule(provider: str, configuration: dict | None = None, name: str = "Gate", **more) -> dict:
    return {"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                         "provider": provider, "version": "1"},
            "configuration": configuration or {}, **more}


def check(value: str, expected: str = "go", name: str = "Gate") -> dict:
    """A VariableCheck rule: ``value`` (a reference) EQ ``expected``."""
    return rule("VariableCheck", {"Variable": value, "Value": expected, "Operator": "EQ"},
                name=name)


def gated_pipeline(name: str = "gated", *, mode: str = "SUPERSEDED", deploy=None,
                   variables=None, **conditions):
    """Source → Deploy (→ Verify): Deploy carries the given conditions (``beforeEntry=``,
    ``onSuccess=``, ``onFailure=`` blocks)."""
    doc = definition(name, executionMode=mode, stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Deploy", deploy or [sim("Release", "Deploy")]),
        ("Verify", [sim("Smoke", "Test")]),
    ])
    doc["variables"] = variables if variables is not None else [
        {"name": "gate", "defaultValue": "go"}]
    doc["stages"][1].update(copy.deepcopy(conditions))
    return pipeline_save(document=doc).pipeline


def condition(result: str, *rules) -> dict:
    return {"conditions": [{"result": result, "rules": list(rules)}]}


__all__ = ["action", "check", "condition", "gated_pipeline", "rule", "sim"]
