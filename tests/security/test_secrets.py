"""Secrets never leave the worker: a SECRETS_MANAGER variable printed by a command (to
stdout, stderr, output variables and a JUnit report's failing test) is nowhere in the log
file, the log API, the execution detail, action executions, events, the dashboard or the
rows behind them. Real bash through the real worker; only the django-q2 queue is held."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.test import Client

from executions.models import ActionExecution, ExecutionEvent, PipelineExecution, StageExecution
from pipelines.services import pipeline_save
from tests.executions.conftest import sim
from tests.factories import action, definition

SECRET = "pa55-W0rd-0f-the-pr0d-db"
REPORT = ("printf '<testsuite tests=\"1\" failures=\"1\"><testcase classname=\"db\" "
          "name=\"%s\"><failure message=\"%s\"/></testcase></testsuite>' "
          "\"$DB_PASSWORD\" \"$DB_PASSWORD\" > report.xml")


def test_a_printed_secret_appears_nowhere(driver, api, owner, monkeypatch):
    # The worker's environment is where secrets come from (docs/runners.md).
    monkeypatch.setenv("CONVEYOR_SECRET_PROD_DB", SECRET)
    doc = definition("leaky", stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action(
            "Migrate", "Build", "Shell",
            commands=['echo "password is $DB_PASSWORD"', 'echo "$DB_PASSWORD" >&2',
                      'echo "leak=$DB_PASSWORD" >> "$CONVEYOR_OUTPUT"', REPORT],
            environmentVariables=[{"name": "DB_PASSWORD", "value": "prod/db",
                                   "type": "SECRETS_MANAGER"}],
            configuration={"Reports": "report.xml"})]),
    ])
    pipeline = pipeline_save(document=doc).pipeline
    execution = driver.start(pipeline, user=owner)
    driver.run()
    execution.refresh_from_db()
    migrate = ActionExecution.objects.get(execution=execution, action_name="Migrate")
    assert (execution.status, migrate.status) == ("Failed", "Failed")   # the report failed it

    log_file = Path(settings.LOG_ROOT) / migrate.log_path
    raw = log_file.read_text()
    assert "password is ***" in raw              # the command ran and printed it, masked
    assert migrate.output_variables["leak"] == "***"
    assert "***" in migrate.summary

    client = api(owner)
    answers = {
        "log": client.get(f"/api/action-executions/{migrate.action_execution_id}/log/"),
        "detail": client.get(f"/api/executions/{execution.execution_id}/"),
        "actions": client.get(f"/api/executions/{execution.execution_id}/actions/"),
        "events": client.get(f"/api/executions/{execution.execution_id}/events/"),
        "state": client.get("/api/pipelines/leaky/state/"),
        "list": client.get("/api/pipelines/leaky/executions/"),
    }
    page = Client()
    page.force_login(owner)
    base = f"/pipelines/leaky/executions/{execution.number}/"
    answers["page"] = page.get(base)
    answers["action page"] = page.get(base + "stages/Build/actions/Migrate/")
    answers["log page"] = page.get(base + "stages/Build/actions/Migrate/log/")
    for where, response in answers.items():
        assert response.status_code == 200, where
        body = (b"".join(response.streaming_content) if response.streaming
                else response.content)
        assert SECRET.encode() not in body, where
    assert "password is ***" in answers["log"].json()["text"]

    assert SECRET not in raw
    rows = [
        *ActionExecution.objects.filter(execution=execution).values_list(),
        *StageExecution.objects.filter(execution=execution).values_list(),
        *PipelineExecution.objects.filter(pk=execution.pk).values_list(),
        *ExecutionEvent.objects.filter(execution=execution).values_list(),
    ]
    assert rows and not [row for row in rows if SECRET in repr(row)]
    # The stored configuration names the secret, never its value.
    assert migrate.configuration["environmentVariables"][0]["value"] == "prod/db"
