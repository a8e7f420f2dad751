"""aws-cli, unmodified, talks to /aws/ (run as a separate process with credentials in env)."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from awsapi.services import access_key_create
from pipelines.models import Pipeline

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")


@pytest.fixture
def cli(live_server, tmp_path, monkeypatch):
    """``cli(user, *args)`` runs ``aws --endpoint-url <live server>/aws/ codepipeline ...``."""
    if AWS is None:
        pytest.skip("the awscli package is not installed (pip install -e '.[test]')")
    from django.db import DEFAULT_DB_ALIAS, connections

    # As in conftest.aws: the server thread must not hold its connection past the test.
    monkeypatch.setitem(connections.settings[DEFAULT_DB_ALIAS], "CONN_MAX_AGE", 0)

    def run(user=None, *args, key_id=None, secret=None):
        if user is not None:
            key, secret = access_key_create(user=user)
            key_id = key.access_key_id
        env = {
            "PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
            "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_MAX_ATTEMPTS": "1",
            # No profile, config or credentials file of the machine may take part.
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }
        return subprocess.run(
            [AWS, "--endpoint-url", live_server.url + "/aws/", "--output", "json",
             "codepipeline", *args],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )

    return run


def test_aws_cli_creates_lists_and_gets_pipelines(cli, owner, aws_definition, tmp_path):
    definition = tmp_path / "pipeline.json"
    definition.write_text(json.dumps(aws_definition("from-cli")))
    created = cli(owner, "create-pipeline", "--pipeline", f"file://{definition}")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["pipeline"]["version"] == 1
    assert Pipeline.objects.filter(name="from-cli").exists()

    listed = cli(owner, "list-pipelines")
    assert listed.returncode == 0, listed.stderr
    assert [p["name"] for p in json.loads(listed.stdout)["pipelines"]] == ["from-cli"]

    got = cli(owner, "get-pipeline", "--name", "from-cli")
    assert got.returncode == 0, got.stderr
    answer = json.loads(got.stdout)
    assert answer["pipeline"]["stages"][0]["actions"][0]["actionTypeId"]["provider"] == "Git"
    assert answer["metadata"]["pipelineArn"].endswith(":from-cli")


def test_aws_cli_reports_a_missing_pipeline_and_a_bad_secret(cli, owner):
    missing = cli(owner, "get-pipeline", "--name", "nope")
    assert missing.returncode != 0
    assert "PipelineNotFoundException" in missing.stderr

    key, _ = access_key_create(user=owner)
    forged = cli(None, "list-pipelines", key_id=key.access_key_id, secret="y" * 40)
    assert forged.returncode != 0
    assert "InvalidSignatureException" in forged.stderr


def test_aws_cli_starts_an_execution_and_watches_it_through_get_pipeline_state(
        cli, aws, owner, operator, aws_definition, worker):
    from tests.awsapi.conftest import wait_for
    from tests.executions.conftest import sim

    aws(owner).create_pipeline(pipeline=aws_definition("cli-run", stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [sim("Compile")]),
    ]))
    started = cli(operator, "start-pipeline-execution", "--name", "cli-run",
                  "--source-revisions",
                  "actionName=Checkout,revisionType=COMMIT_ID,revisionValue=abc1234")
    assert started.returncode == 0, started.stderr
    execution_id = json.loads(started.stdout)["pipelineExecutionId"]

    def build_succeeded():
        state = cli(operator, "get-pipeline-state", "--name", "cli-run")
        assert state.returncode == 0, state.stderr
        answer = json.loads(state.stdout)
        build = answer["stageStates"][1]
        return answer if build.get("latestExecution", {}).get("status") == "Succeeded" else None

    answer = wait_for(build_succeeded, what="Build to succeed (seen through aws-cli)")
    source, build = answer["stageStates"]
    assert build["latestExecution"]["pipelineExecutionId"] == execution_id
    assert source["actionStates"][0]["currentRevision"] == {"revisionId": "abc1234"}
    # aws-cli v1 prints the timestamps as they travel: seconds since the epoch.
    changed = build["actionStates"][0]["latestExecution"]["lastStatusChange"]
    assert abs(changed - time.time()) < 120

    again = cli(operator, "stop-pipeline-execution", "--pipeline-name", "cli-run",
                "--pipeline-execution-id", execution_id, "--abandon")
    assert again.returncode != 0
    assert "PipelineExecutionNotStoppableException" in again.stderr
