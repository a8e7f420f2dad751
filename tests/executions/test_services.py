"""The execution services as the other surfaces see them: start, state, refusals."""

import pytest

from executions import selectors, services
from executions.errors import ExecutionInvalid
from executions.models import PipelineExecution
from pipelines.services import pipeline_save
from tests.executions.conftest import sim, simple_pipeline
from tests.factories import action, definition


def test_a_repeated_client_request_token_answers_the_first_execution(driver, operator):
    pipeline = simple_pipeline()
    first = driver.start(pipeline, user=operator, client_request_token="abc")
    again = driver.start(pipeline, user=operator, client_request_token="abc")
    assert again.pk == first.pk and PipelineExecution.objects.count() == 1
    assert first.triggered_by == operator and first.trigger_type == "StartPipelineExecution"
    assert first.pipeline_version.number == 1 and first.execution_mode == "SUPERSEDED"


def test_executions_are_numbered_per_pipeline(driver):
    a, b = simple_pipeline("a"), simple_pipeline("b")
    numbers = [driver.start(p).number for p in (a, a, b, a)]
    assert numbers == [1, 2, 1, 3]


def test_a_pipeline_with_an_aws_only_action_cannot_start(driver):
    doc = definition("aws", stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", "Build", "Jenkins", inputArtifacts=[{"name": "Src"}])]),
    ])
    pipeline = pipeline_save(document=doc).pipeline
    with pytest.raises(ExecutionInvalid, match='provider "Jenkins" exists only on AWS') as e:
        driver.start(pipeline)
    assert e.value.problems[0][0] == "stages[1].actions[0].actionTypeId.provider"
    assert not PipelineExecution.objects.exists()


def test_source_revision_overrides_must_name_a_source_action(driver):
    pipeline = simple_pipeline()
    with pytest.raises(ExecutionInvalid, match='"Compile" is not a source action'):
        driver.start(pipeline, source_revisions=[{"actionName": "Compile",
                                                   "revisionType": "COMMIT_ID",
                                                   "revisionValue": "abc"}])
    ex = driver.start(pipeline, source_revisions=[{"actionName": "Checkout",
                                                    "revisionType": "COMMIT_ID",
                                                    "revisionValue": "abc123"}])
    driver.run()
    assert ex.source_revisions.get().revision_id == "abc123"


def test_pipeline_state_shows_transitions_inbound_executions_and_latest_actions(
    driver, operator,
):
    pipeline = simple_pipeline()
    driver.call(services.transition_set, pipeline=pipeline, stage_name="Deploy",
                enabled=False, reason="change freeze", user=operator)
    first = driver.start(pipeline)
    driver.run()
    state = selectors.pipeline_state(pipeline)
    assert state["pipelineName"] == "demo" and state["pipelineVersion"] == 1
    source, build, deploy = state["stageStates"]
    assert source["latestExecution"] == {"pipelineExecutionId": str(first.execution_id),
                                         "status": "Succeeded"}
    assert source["actionStates"][0]["currentRevision"]["revisionId"]
    assert build["actionStates"][0]["latestExecution"]["status"] == "Succeeded"
    assert deploy["inboundTransitionState"]["enabled"] is False
    assert deploy["inboundTransitionState"]["disabledReason"] == "change freeze"
    assert deploy["inboundTransitionState"]["lastChangedBy"] == "oscar"
    assert deploy["inboundExecutions"] == [deploy["inboundExecution"]]
    assert deploy["inboundExecution"]["pipelineExecutionId"] == str(first.execution_id)
    assert deploy["inboundExecution"]["waitingReason"] == \
        "The transition into the stage is disabled"
    assert deploy["latestExecution"] is None
    assert deploy["actionStates"] == [{"actionName": "Release", "latestExecution": None}]
