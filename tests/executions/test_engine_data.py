"""Variables, artifacts, rollback and stale approvals (docs/semantics.md §10), with their events."""

import json

import pytest
from django.core.files.storage import storages

from executions import engine, services, signals
from executions.models import ActionExecution, Artifact, PipelineExecution, SourceRevision
from tests.executions.conftest import events, sim, simple_pipeline

PE, SE, AE, IN = "PipelineExecution", "StageExecution", "ActionExecution", "Inbound"


def variable_pipeline(deploy_summary: str):
    return simple_pipeline(
        stages=[
            ("Build", [sim("Compile", namespace="BuildVariables",
                           OutputVariables=json.dumps({"Version": "1.#{variables.minor}"}))]),
            ("Deploy", [sim("Release", Summary=deploy_summary)]),
        ],
        variables=[{"name": "minor", "defaultValue": "0"}],
    )


def test_variables_resolve_per_action_from_the_execution_the_start_and_earlier_actions(driver):
    pipeline = variable_pipeline(
        "v#{BuildVariables.Version} of #{codepipeline.PipelineName} "
        "in #{codepipeline.PipelineExecutionId}")
    ex = driver.start(pipeline, variables=[{"name": "minor", "value": "7"}])
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Succeeded" and ex.variables == {"minor": "7"}
    compile_ = ex.action_executions.get(action_name="Compile")
    assert compile_.output_variables == {"Version": "1.7"}
    release = ex.action_executions.get(action_name="Release")
    assert release.summary == f"v1.7 of demo in {ex.execution_id}"
    # The resolved document is kept: exactly what the runner received.
    assert release.configuration["configuration"]["Summary"] == release.summary


def test_an_unresolvable_reference_fails_that_action_naming_it(driver):
    pipeline = variable_pipeline("#{BuildVariables.Missing}")
    ex = driver.start(pipeline)
    driver.run()
    ex.refresh_from_db()
    release = ex.action_executions.get(action_name="Release")
    assert release.status == "Failed"
    assert '"#{BuildVariables.Missing}"' in release.summary
    assert 'namespace "BuildVariables" has no variable "Missing"' in release.summary
    assert ex.status == "Failed"
    assert events(ex)[-4:] == [(AE, "Deploy", "Release", "InProgress"),
                               (AE, "Deploy", "Release", "Failed"),
                               (SE, "Deploy", "", "Failed"), (PE, "", "", "Failed")]


def test_start_refuses_unknown_variables_and_missing_values(driver):
    from executions.errors import ExecutionInvalid

    pipeline = simple_pipeline(variables=[{"name": "env"}])
    with pytest.raises(ExecutionInvalid, match='"env" has no default value'):
        driver.start(pipeline)
    with pytest.raises(ExecutionInvalid, match='"nope" is not a variable of this pipeline'):
        driver.start(pipeline, variables={"env": "x", "nope": "y"})
    assert not PipelineExecution.objects.exists()


def test_identical_outputs_are_stored_once_by_content_hash(driver):
    pipeline = simple_pipeline()
    doc = pipeline.document
    doc["stages"][0]["actions"][0]["configuration"]["OutputContent"] = "same bytes\n"
    from pipelines.services import pipeline_save

    pipeline = pipeline_save(document=doc).pipeline
    for _ in range(2):
        driver.start(pipeline)
        driver.run()
    arts = list(Artifact.objects.order_by("id"))
    assert len(arts) == 2 and arts[0].sha256 == arts[1].sha256
    assert arts[0].storage_name == arts[1].storage_name == f"sha256/{arts[0].sha256[:2]}/" \
                                                          f"{arts[0].sha256}.zip"
    assert storages["artifacts"].listdir(f"sha256/{arts[0].sha256[:2]}")[1] == [
        f"{arts[0].sha256}.zip"]
    with pytest.raises(ValueError, match="immutable"):
        arts[0].save()


def test_a_downstream_action_receives_the_artifact_of_its_own_execution(driver):
    pipeline = simple_pipeline(stages=[
        ("Build", [sim("Compile", inputArtifacts=[{"name": "Src"}],
                       outputArtifacts=[{"name": "Bin"}])]),
        ("Deploy", [sim("Release", inputArtifacts=[{"name": "Bin"}])]),
    ])
    first = driver.start(pipeline)
    driver.run()
    second = driver.start(pipeline)
    driver.run_action("Source", "Checkout", second)
    pk = driver.take("Build", "Compile", second)
    claim = driver.call(engine.action_claim, pk, worker="test-host:1:1")
    own = Artifact.objects.get(execution=second, name="Src")
    assert claim.inputs == {"Src": own.storage_name}
    assert own.sha256 != Artifact.objects.get(execution=first, name="Src").sha256
    assert SourceRevision.objects.filter(execution=second, action_name="Checkout",
                                         artifact_name="Src").exists()


# --- rollback ------------------------------------------------------------------------------


def rollback_pipeline():
    return simple_pipeline(source_namespace="SourceVariables", stages=[
        ("Build", [sim("Compile", inputArtifacts=[{"name": "Src"}])]),
        ("Deploy", [sim("Release", inputArtifacts=[{"name": "Src"}],
                        Outcome="#{variables.outcome}",
                        Summary="deployed #{SourceVariables.CommitId}")]),
    ], variables=[{"name": "outcome", "defaultValue": "Succeeded"}])


def test_rollback_runs_one_stage_again_with_the_target_s_artifacts_and_variables(driver, operator):
    pipeline = rollback_pipeline()
    good = driver.start(pipeline)
    driver.run()
    bad = driver.start(pipeline, variables={"outcome": "Failed"})
    driver.run()
    good.refresh_from_db()
    bad.refresh_from_db()
    assert (good.status, bad.status) == ("Succeeded", "Failed")
    rollback = driver.call(services.stage_rollback, pipeline=pipeline, stage_name="Deploy",
                           target_execution=good, user=operator)
    assert (rollback.execution_type, rollback.trigger_type) == ("ROLLBACK", "ManualRollback")
    assert rollback.rollback_target == good
    pk = driver.take("Deploy", "Release", rollback)
    claim = driver.call(engine.action_claim, pk, worker="test-host:1:1")
    assert claim.inputs == {"Src": Artifact.objects.get(execution=good, name="Src").storage_name}
    driver.pending.append(pk)
    ActionExecution.objects.filter(pk=pk).update(worker="")      # hand it back to a worker
    driver.run()
    rollback.refresh_from_db()
    assert rollback.status == "Succeeded"
    release = rollback.action_executions.get()
    good_commit = good.action_executions.get(action_name="Checkout").output_variables["CommitId"]
    assert release.summary == f"deployed {good_commit}"
    # It shows the revision it redeploys (the target's), not the failed one's.
    assert list(rollback.source_revisions.values_list("action_name", "revision_id")) == [
        ("Checkout", good_commit)]
    assert (SourceRevision.objects.get(execution=bad).revision_id
            != SourceRevision.objects.get(execution=good).revision_id)
    assert events(rollback) == [
        (PE, "", "", "InProgress"), (SE, "Deploy", "", "InProgress"),
        (AE, "Deploy", "Release", "InProgress"), (AE, "Deploy", "Release", "Succeeded"),
        (SE, "Deploy", "", "Succeeded"), (PE, "", "", "Succeeded")]


def test_rollback_is_refused_for_the_source_stage_a_failed_target_and_another_version(driver):
    from executions.errors import ExecutionConflict, ExecutionInvalid
    from pipelines.services import pipeline_save

    pipeline = rollback_pipeline()
    good = driver.start(pipeline)
    driver.run()
    bad = driver.start(pipeline, variables={"outcome": "Failed"})
    driver.run()

    def rollback(stage, target):
        return driver.call(services.stage_rollback, pipeline=pipeline, stage_name=stage,
                           target_execution=target)

    with pytest.raises(ExecutionInvalid, match="source stage"):
        rollback("Source", good)
    with pytest.raises(ExecutionConflict, match='#2 did not succeed in stage "Deploy"'):
        rollback("Deploy", bad)
    doc = pipeline.document
    doc["stages"][1]["actions"][0]["configuration"]["Summary"] = "changed"
    pipeline = pipeline_save(document=doc).pipeline
    with pytest.raises(ExecutionConflict, match="ran on version 1 .* current version 2"):
        rollback("Deploy", good)


# --- docs/semantics.md §10: stale approvals -------------------------------------------------------


def approval_pipeline(**approval_config):
    return simple_pipeline(stages=[
        ("Build", [sim("Compile")]),
        ("Approve", [sim("Review", "Approval", Outcome="Waiting", **approval_config),
                     sim("Announce", runOrder=2)]),
        ("Deploy", [sim("Release")]),
    ])


@pytest.fixture
def received():
    got = []

    def listen(signal):
        def receiver(sender, **kwargs):
            got.append((signal, kwargs))
        signal.connect(receiver, weak=False)
        return receiver

    receivers = [(s, listen(s)) for s in (signals.action_abandoned, signals.execution_superseded,
                                          signals.action_ended)]
    yield got
    for s, r in receivers:
        s.disconnect(r)


def test_a_newer_execution_supersedes_an_older_one_waiting_only_for_approval(driver, received):
    pipeline = approval_pipeline()
    older = driver.start(pipeline)
    driver.run()                                             # older waits at Review
    review = older.action_executions.get(action_name="Review")
    assert review.status == "InProgress" and review.waiting_since and review.token
    newer = driver.start(pipeline)
    driver.run_action("Source", "Checkout", newer)
    driver.run_action("Build", "Compile", newer)             # arrives at Approve
    older.refresh_from_db()
    review.refresh_from_db()
    assert older.status == "Superseded" and older.superseded_by == newer
    assert review.status == "Abandoned" and f"#{newer.number}" in review.summary
    assert f"#{newer.number}" in older.status_summary
    assert events(older)[-3:] == [(AE, "Approve", "Review", "Abandoned"),
                                  (SE, "Approve", "", "Stopped"), (PE, "", "", "Superseded")]
    assert events(newer)[-2:] == [(SE, "Approve", "", "InProgress"),
                                  (AE, "Approve", "Review", "InProgress")]
    abandoned = [k for s, k in received if s is signals.action_abandoned]
    assert abandoned[0]["action_execution"].pk == review.pk
    assert abandoned[0]["superseded_by"] == newer
    assert [k["execution"].pk for s, k in received if s is signals.execution_superseded] == [
        older.pk]


def test_supersede_pending_approval_false_keeps_codepipeline_s_behaviour(driver):
    pipeline = approval_pipeline(SupersedePendingApproval="false")
    older = driver.start(pipeline)
    driver.run()
    newer = driver.start(pipeline)
    driver.run()
    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.status == "InProgress"
    assert (newer.inbound_stage_name, newer.inbound_reason) == ("Approve", "StageLocked")


def test_an_approval_that_starts_waiting_behind_a_newer_inbound_execution_is_superseded(driver):
    pipeline = simple_pipeline(stages=[
        ("Build", [sim("Compile")]),
        ("Approve", [sim("Prepare"), sim("Review", "Approval", Outcome="Waiting", runOrder=2)]),
    ])
    older = driver.start(pipeline)
    driver.run_action("Source", "Checkout", older)
    driver.run_action("Build", "Compile", older)
    prepare = driver.take("Approve", "Prepare", older)
    newer = driver.start(pipeline)
    driver.run_action("Source", "Checkout", newer)
    driver.run_action("Build", "Compile", newer)
    newer.refresh_from_db()
    assert newer.inbound_stage_name == "Approve"             # Prepare is real work: it waits
    driver.run_one(prepare)
    driver.run_action("Approve", "Review", older)            # now only the approval is left
    older.refresh_from_db()
    newer.refresh_from_db()
    assert older.status == "Superseded" and newer.inbound_stage_name == ""


def test_a_waiting_action_completed_from_outside_moves_the_execution_on_once(driver, received):
    pipeline = approval_pipeline()
    ex = driver.start(pipeline)
    driver.run()
    review = ex.action_executions.get(action_name="Review")
    assert driver.call(services.action_complete, action_execution=review, succeeded=True,
                       summary="Approved by vera") is True
    assert driver.call(services.action_complete, action_execution=review, succeeded=False,
                       summary="late") is False
    driver.run()
    ex.refresh_from_db()
    review.refresh_from_db()
    assert ex.status == "Succeeded" and review.summary == "Approved by vera"
    assert ("Review", "Succeeded") in [(k["action_execution"].action_name, k["status"])
                                       for s, k in received if s is signals.action_ended]
