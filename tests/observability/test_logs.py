"""Structured logs: with ``LOG_FORMAT=json`` every line is one JSON object, and a line
logged while an action runs names its pipeline, execution, stage and action."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from executions.models import ActionExecution
from observability.logs import ContextFilter, JsonFormatter, log_context
from tests.executions.conftest import simple_pipeline
from tests.factories import action

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def json_lines():
    """The lines the "conveyor" loggers write through Conveyor's JSON handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("conveyor")
    logger.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logger.removeHandler(handler)


def test_a_line_logged_while_an_action_runs_names_its_execution_stage_and_action(
        driver, json_lines, settings):
    settings.CONVEYOR_INVOKE_MODULES = ["tests.observability"]  # the operator's allow list
    pipeline = simple_pipeline("logged", stages=[("Deploy", [action(
        "Notify", "Invoke", "Python",
        configuration={"Function": "tests.observability.targets.log_a_line"})])])
    execution = driver.start(pipeline)
    driver.run()

    notify = ActionExecution.objects.get(execution=execution, action_name="Notify")
    assert notify.status == "Succeeded"
    [line] = [x for x in json_lines() if x["logger"] == "conveyor.test.invoked"]
    assert line["message"] == "deploying Notify"
    assert line["level"] == "WARNING"
    assert line["pipeline"] == "logged"
    assert line["execution_id"] == str(execution.execution_id)
    assert line["execution_number"] == execution.number
    assert line["stage"] == "Deploy"
    assert line["stage_execution_id"] == notify.stage_execution_id
    assert line["action"] == "Notify"
    assert line["action_execution_id"] == str(notify.action_execution_id)
    assert line["attempt"] == 1


def test_a_line_outside_any_action_carries_no_ids_and_the_context_ends_with_its_block(
        json_lines):
    log = logging.getLogger("conveyor.test")
    with log_context(pipeline="p", execution_id="e"):
        log.warning("inside")
    log.warning("after")
    inside, after = json_lines()
    assert (inside["pipeline"], inside["execution_id"]) == ("p", "e")
    assert "pipeline" not in after and "execution_id" not in after


def test_log_format_json_makes_every_line_of_the_process_one_json_object(tmp_path):
    code = ("import logging\n"
            "from observability.logs import log_context\n"
            "log = logging.getLogger('conveyor.test')\n"
            "log.warning('plain')\n"
            "with log_context(execution_id='abc', stage='Build'):\n"
            "    try:\n"
            "        1 / 0\n"
            "    except ZeroDivisionError:\n"
            "        log.exception('it broke')\n")
    env = {**os.environ, "LOG_FORMAT": "json", "CONVEYOR_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [x["message"] for x in lines] == ["plain", "it broke"]
    assert lines[1]["execution_id"] == "abc" and lines[1]["stage"] == "Build"
    assert "ZeroDivisionError" in lines[1]["exception"]
    assert "execution_id" not in lines[0]
