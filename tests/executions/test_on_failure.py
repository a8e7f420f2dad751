"""onFailure: automatic retry and automatic rollback (docs/semantics.md §15).

End to end through the engine with the real worker code (the driver replaces only
the django-q2 queue), real Shell subprocesses and a real Directory deploy.
"""

import pytest

from awsapi.operations.executions import get_pipeline_state
from executions import services
from executions.models import ExecutionEvent, PipelineExecution, StageExecution
from pipelines.services import pipeline_save
from tests.factories import action, definition


@pytest.fixture(autouse=True)
def _unsandboxed(settings):
    """The tests' marker files (a first attempt that fails, a broken health check) live
    outside the workspace, where the sandbox rightly forbids writing: run unsandboxed."""
    settings.CONVEYOR_SANDBOX = "none"


def flaky(marker) -> dict:
    """A Shell test that fails the first time (it leaves a marker) and passes after."""
    return action("Smoke", "Test", "Shell", runOrder=2,
                  commands=[f"test -f {marker} || {{ touch {marker}; exit 1; }}"])


def retry_pipeline(tmp_path, commands_action, on_failure) -> object:
    doc = definition("retry", stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Pkg"}])]),
        ("Deploy", [action("Prepare", "Build", "Simulate"), commands_action]),
    ])
    doc["stages"][1]["onFailure"] = on_failure
    return pipeline_save(document=doc).pipeline


def attempts(execution, stage="Deploy"):
    return list(StageExecution.objects.filter(execution=execution, stage_name=stage)
                .order_by("attempt").values_list("attempt", "status", "retry_mode",
                                                 "retry_trigger"))


def test_on_failure_retry_retries_the_failed_stage_once_and_the_execution_succeeds(
        driver, tmp_path):
    pipeline = retry_pipeline(tmp_path, flaky(tmp_path / "ran-once"), {"result": "RETRY"})
    execution = driver.start(pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert attempts(execution) == [(1, "Failed", "", ""),
                                   (2, "Succeeded", "FAILED_ACTIONS", "AutomatedStageRetry")]
    # FAILED_ACTIONS: the action that had succeeded did not run again.
    assert execution.action_executions.filter(action_name="Prepare").count() == 1
    assert execution.action_executions.filter(action_name="Smoke").count() == 2
    retry_event = ExecutionEvent.objects.get(execution=execution, stage_name="Deploy",
                                             kind="StageExecution", status="InProgress",
                                             data__attempt=2)
    assert retry_event.summary == ("Automatic retry 1 (FAILED_ACTIONS): the stage failed and "
                                   "its onFailure result is RETRY")


def test_all_actions_retry_runs_every_action_again(driver, tmp_path):
    pipeline = retry_pipeline(tmp_path, flaky(tmp_path / "ran-once"), {
        "result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}})
    execution = driver.start(pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert execution.action_executions.filter(action_name="Prepare").count() == 2


def test_the_automatic_retry_happens_once_then_a_person_may_retry(driver, tmp_path, operator):
    always = action("Smoke", "Test", "Shell", runOrder=2, commands=["exit 4"])
    pipeline = retry_pipeline(tmp_path, always, {"result": "RETRY"})
    execution = driver.start(pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Failed"
    assert attempts(execution) == [(1, "Failed", "", ""),
                                   (2, "Failed", "FAILED_ACTIONS", "AutomatedStageRetry")]
    driver.call(services.stage_retry, execution=execution, stage_name="Deploy",
                mode="FAILED_ACTIONS", user=operator)
    driver.run()
    execution.refresh_from_db()
    # The manual retry failed too; no second automatic retry follows it.
    assert execution.status == "Failed"
    assert attempts(execution)[2:] == [(3, "Failed", "FAILED_ACTIONS", "ManualStageRetry")]
    # The AWS endpoint's GetPipelineState counts both (CodePipeline's retryStageMetadata).
    state = get_pipeline_state(None, {"name": pipeline.name})
    deploy = next(s for s in state["stageStates"] if s["stageName"] == "Deploy")
    assert deploy["retryStageMetadata"] == {"autoStageRetryAttempt": 1,
                                            "manualStageRetryAttempt": 1,
                                            "latestRetryTrigger": "ManualStageRetry"}
    source = next(s for s in state["stageStates"] if s["stageName"] == "Source")
    assert "retryStageMetadata" not in source
    # The REST state answers the same member, from the serializer and from the plain
    # dicts the API sends (docs/api-executions.md).
    from executions import selectors
    from executions.api.state import PipelineStateSerializer, pipeline_state_data

    rest_state = selectors.pipeline_state(pipeline)
    for answer in (pipeline_state_data(rest_state), PipelineStateSerializer(rest_state).data):
        stages = {s["stageName"]: s for s in answer["stageStates"]}
        assert dict(stages["Deploy"]["retryStageMetadata"]) == deploy["retryStageMetadata"]
        assert "retryStageMetadata" not in stages["Source"]


# --- automatic rollback with a real Directory deploy -----------------------------------


def rollback_pipeline(tmp_path, target, on_failure=None):
    """Source (content from a variable) → Deploy: a Directory release, then a smoke test
    that fails while the file ``broken`` exists or when the variable says so."""
    broken = tmp_path / "broken"
    doc = definition("release", variables=[{"name": "content", "defaultValue": "v1"},
                                           {"name": "healthy", "defaultValue": "yes"}], stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Pkg"}],
                           configuration={"OutputContent": "#{variables.content}"})]),
        ("Deploy", [
            action("Release", "Deploy", "Directory", inputArtifacts=[{"name": "Pkg"}],
                   configuration={"TargetDirectory": str(target)}),
            action("Smoke", "Test", "Shell", runOrder=2,
                   commands=[f"test ! -f {broken}", 'test "#{variables.healthy}" = yes']),
        ]),
    ])
    doc["stages"][1]["onFailure"] = on_failure or {"result": "ROLLBACK"}
    return pipeline_save(document=doc).pipeline, broken


def test_on_failure_rollback_restores_the_last_good_release(driver, tmp_path):
    target = tmp_path / "site"
    pipeline, _ = rollback_pipeline(tmp_path, target)
    good = driver.start(pipeline)
    driver.run()
    assert (target / "current" / "Pkg.txt").read_text() == "v1"
    bad = driver.start(pipeline, variables={"content": "v2", "healthy": "no"})
    driver.run()
    bad.refresh_from_db()
    assert bad.status == "Failed"
    assert bad.status_summary.endswith(
        f'Rolling back stage "Deploy" to execution #{good.number} (onFailure ROLLBACK).')
    rollback = PipelineExecution.objects.get(execution_type="ROLLBACK")
    assert rollback.trigger_type == "AutomatedRollback"
    assert rollback.rollback_target == good
    assert rollback.trigger_detail == (f"Automatic rollback of Deploy to #{good.number}: "
                                       f"execution #{bad.number} failed there "
                                       "(onFailure ROLLBACK)")
    assert rollback.status == "Succeeded"
    # The release the good execution made is live again.
    assert (target / "current" / "Pkg.txt").read_text() == "v1"


def test_a_rollback_that_fails_does_not_roll_back_again(driver, tmp_path):
    target = tmp_path / "site"
    pipeline, broken = rollback_pipeline(tmp_path, target)
    driver.start(pipeline)
    driver.run()
    broken.touch()  # from now on every smoke test fails, the rollback's too
    driver.start(pipeline, variables={"content": "v2"})
    driver.run()
    rollback = PipelineExecution.objects.get(execution_type="ROLLBACK")
    assert rollback.status == "Failed"
    assert rollback.status_summary.endswith(
        "This rollback failed: a failed rollback does not roll back again.")
    assert PipelineExecution.objects.count() == 3


def test_without_an_earlier_good_execution_the_summary_says_so_and_nothing_loops(driver,
                                                                                 tmp_path):
    pipeline, _ = rollback_pipeline(tmp_path, tmp_path / "site")
    first = driver.start(pipeline, variables={"healthy": "no"})
    driver.run()
    first.refresh_from_db()
    assert first.status == "Failed"
    assert first.status_summary.endswith(
        'No earlier execution of this pipeline version succeeded in stage "Deploy": there is '
        "nothing to roll back to.")
    assert PipelineExecution.objects.count() == 1


@pytest.mark.parametrize("on_failure", [{"result": "FAIL"}])
def test_on_failure_fail_leaves_the_execution_failed(driver, tmp_path, on_failure):
    pipeline, _ = rollback_pipeline(tmp_path, tmp_path / "site", on_failure)
    driver.start(pipeline)
    driver.run()
    bad = driver.start(pipeline, variables={"healthy": "no"})
    driver.run()
    bad.refresh_from_db()
    assert bad.status == "Failed"
    assert PipelineExecution.objects.count() == 2


def test_history_and_execution_pages_label_the_automatic_rollback_and_retry_with_why(
        driver, tmp_path, client, viewer):
    target = tmp_path / "site"
    pipeline, _ = rollback_pipeline(tmp_path, target)
    driver.start(pipeline)
    driver.run()
    bad = driver.start(pipeline, variables={"healthy": "no"})
    driver.run()
    rollback = PipelineExecution.objects.get(execution_type="ROLLBACK")
    client.force_login(viewer)
    history = client.get(f"/pipelines/{pipeline.name}/executions/").content.decode()
    assert "automatic rollback</span>" in history
    assert f"Automatic rollback of Deploy to #1: execution #{bad.number} failed there" in history
    page = client.get(f"/pipelines/{pipeline.name}/executions/{rollback.number}/")
    assert "rollback of Deploy to #1" in page.content.decode()
    assert "(onFailure ROLLBACK)" in page.content.decode()

    retried = retry_pipeline(tmp_path, flaky(tmp_path / "once"), {"result": "RETRY"})
    ex = driver.start(retried)
    driver.run()
    page = client.get(f"/pipelines/{retried.name}/executions/{ex.number}/").content.decode()
    assert "attempt 2 · automatic retry" in page
    assert ("Automatic retry: Deploy failed (Smoke); retried by its onFailure RETRY "
            "(FAILED_ACTIONS)") in page
