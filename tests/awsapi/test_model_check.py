"""The answer checker the ``aws`` fixture applies: real AWS answers pass, ours must too."""

import json
from pathlib import Path

import boto3
import pytest

from tests.awsapi.conftest import model_mismatches

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codepipeline"


@pytest.fixture(scope="module")
def model():
    client = boto3.session.Session().client(
        "codepipeline", region_name="us-east-1", aws_access_key_id="x",
        aws_secret_access_key="y")
    yield client.meta.service_model
    client.close()


def output(model, operation: str):
    return model.operation_model(operation).output_shape


@pytest.mark.parametrize("operation, fixture", [
    ("GetPipelineState", "get-pipeline-state.json"),
    ("ListActionExecutions", "list-action-executions.json"),
])
def test_answers_recorded_from_aws_pass_the_check(model, operation, fixture):
    path = FIXTURES / fixture
    if not path.exists():
        pytest.skip(f"fixtures not found at {FIXTURES}")
    assert model_mismatches(json.loads(path.read_text()), output(model, operation)) == []


def test_unknown_members_wrong_types_enum_values_and_nulls_are_reported(model):
    answer = {
        "pipelineName": "demo",
        "pipelineVersion": "1",
        "stageStates": [{
            "stageName": "Build",
            "waitingReason": "StageLocked",
            "latestExecution": {"pipelineExecutionId": "x", "status": "Running"},
            "inboundExecution": None,
            "inboundTransitionState": {"enabled": "yes", "lastChangedAt": "2024-01-01"},
        }],
    }
    assert model_mismatches(answer, output(model, "GetPipelineState")) == [
        ".pipelineVersion: '1' is not an integer",
        ".stageStates[0].waitingReason: not a member of StageState",
        ".stageStates[0].latestExecution.status: 'Running' is not one of "
        "['Cancelled', 'InProgress', 'Failed', 'Stopped', 'Stopping', 'Succeeded', 'Skipped']",
        ".stageStates[0].inboundExecution: null (AWS leaves a member without a value out)",
        ".stageStates[0].inboundTransitionState.enabled: 'yes' is not a boolean",
        ".stageStates[0].inboundTransitionState.lastChangedAt: '2024-01-01' is not epoch "
        "seconds",
    ]
