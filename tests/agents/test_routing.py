"""configuration.RunOn: validated at its path, and an action routed to agents is never
queued for, nor claimed by, a django-q2 worker (docs/deploy.md, Build farm)."""

from __future__ import annotations

import pytest

from agents import services, work
from executions import engine, worker
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution
from pipelines.services import pipeline_save
from pipelines.validation import errors, validate_document
from tests.factories import action, definition

pytestmark = pytest.mark.django_db


def build_doc(name="routed", run_on="linux,arm64", provider="Shell", **fields):
    configuration = {"RunOn": run_on} if run_on is not None else {}
    return definition(name, stages=[
        ("Source", [action("Checkout", "Source", "Simulate", configuration={},
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", "Build", provider, commands=["true"],
                          configuration=configuration, inputArtifacts=[{"name": "Src"}],
                          **fields)]),
    ])


def problems(doc) -> dict:
    return {p.path: p.message for p in errors(validate_document(doc))}


def test_run_on_is_accepted_for_shell_commands_and_codebuild():
    assert "stages[1].actions[0].configuration.RunOn" not in problems(build_doc())
    commands = build_doc(provider="Commands")
    commands["stages"][1]["actions"][0]["actionTypeId"]["category"] = "Compute"
    assert not [p for p in problems(commands) if p.endswith("RunOn")]
    codebuild = build_doc(provider="CodeBuild")
    codebuild["stages"][1]["actions"][0]["configuration"]["ProjectName"] = "x"
    del codebuild["stages"][1]["actions"][0]["commands"]
    assert not [p for p in problems(codebuild) if p.endswith("RunOn")]


def test_run_on_is_refused_at_its_path_for_a_provider_agents_do_not_run():
    doc = build_doc(provider="Simulate")
    del doc["stages"][1]["actions"][0]["commands"]
    found = problems(doc)
    assert "do not run on agents" in found["stages[1].actions[0].configuration.RunOn"]


def test_run_on_with_a_bad_label_or_none_is_refused():
    assert "is not a label" in problems(build_doc(run_on="linux,arm 64"))[
        "stages[1].actions[0].configuration.RunOn"]
    assert "names no label" in problems(build_doc(run_on=" , "))[
        "stages[1].actions[0].configuration.RunOn"]


def test_a_routed_action_is_never_queued_nor_claimed_by_a_worker(driver):
    pipeline = pipeline_save(document=build_doc()).pipeline
    ex = driver.start(pipeline)
    driver.run()                                  # the source: on a worker
    ae = ActionExecution.objects.get(execution=ex, stage_name="Build")
    assert ae.status == A.IN_PROGRESS and ae.run_on == "arm64,linux"
    assert ae.pk not in driver.pending            # never handed to django-q2
    assert driver.call(worker.run_action, ae.pk) is None   # a worker cannot claim it
    ae.refresh_from_db()
    assert ae.worker == "" and ae.status == A.IN_PROGRESS


def test_only_an_agent_with_every_label_claims_it(driver):
    pipeline = pipeline_save(document=build_doc()).pipeline
    ex = driver.start(pipeline)
    driver.run()
    key, _ = services.agent_key_create(name="farm")
    x64 = services.agent_seen(key=key, name="x64", labels=["linux", "x64"])
    arm = services.agent_seen(key=key, name="arm", labels="linux,arm64,gpu")
    assert driver.call(work.agent_poll, agent=x64) == []
    [job] = driver.call(work.agent_poll, agent=arm)
    assert job["data"]["pipelineContext"]["pipelineExecutionId"] == str(ex.execution_id)
    ae = ActionExecution.objects.get(execution=ex, stage_name="Build")
    assert ae.worker == "agent:arm" and ae.lease_expires_at is not None
    arm.refresh_from_db()
    assert arm.action_execution_id == ae.pk


def test_a_routed_action_nobody_claims_fails_at_its_timeout(driver):
    from datetime import timedelta

    from django.utils import timezone

    pipeline = pipeline_save(document=build_doc(timeoutInMinutes=5)).pipeline
    ex = driver.start(pipeline)
    driver.run()
    ae = ActionExecution.objects.get(execution=ex, stage_name="Build")
    assert ae.deadline_at is not None
    driver.call(engine.sweep, now=timezone.now() + timedelta(minutes=4))
    ae.refresh_from_db()
    assert ae.status == A.IN_PROGRESS
    driver.call(engine.sweep, now=timezone.now() + timedelta(minutes=5, seconds=1))
    ae.refresh_from_db()
    assert ae.status == A.FAILED and "timed out after 5 min" in ae.summary
