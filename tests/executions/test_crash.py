"""Crash safety: a worker process killed with SIGKILL mid-action.

A real worker subprocess runs the real task (``executions.tasks.action_run``)
on a Shell action that sleeps; it is killed with SIGKILL once its action runs.
The sweeper — run here every 0.25 s, as ``manage.py sweep_actions --loop
--interval 0.25`` would — must end the execution within lease + sweep interval,
and kill the orphaned process group the dead worker left behind.

Needs a database a second process can open: PostgreSQL (``DATABASE_URL``) or
a file-based SQLite test database (``CONVEYOR_TEST_SQLITE=/path``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from executions import engine, tasks, worker
from executions.models import ActionExecution, PipelineExecution
from tests.executions.conftest import simple_pipeline
from tests.executions.test_shell import alive, shell

ROOT = Path(__file__).resolve().parents[2]
LEASE = 1.0
SWEEP = 0.25


def _shared_database() -> bool:
    if connection.vendor != "sqlite":
        return True
    name = str(connection.settings_dict["NAME"])
    return name not in ("", ":memory:") and "mode=memory" not in name


pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif("not _shared_database()",
                       reason="a worker subprocess needs a shared database: set DATABASE_URL "
                              "or CONVEYOR_TEST_SQLITE=/tmp/conveyor_engine_test.sqlite3"),
]

WORKER = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
from django.conf import settings
settings.DATABASES["default"]["NAME"] = sys.argv[1]   # the test database
import django
django.setup()
from executions import tasks
tasks.action_run(int(sys.argv[2]))
"""


def start_worker(pk: int) -> subprocess.Popen:
    env = dict(os.environ,
               CONVEYOR_LEASE_SECONDS=str(LEASE), CONVEYOR_HEARTBEAT_SECONDS="0.2",
               CONVEYOR_LOG_ROOT=str(settings.LOG_ROOT),
               CONVEYOR_WORKSPACE_ROOT=str(settings.WORKSPACE_ROOT),
               CONVEYOR_ARTIFACT_ROOT=str(settings.ARTIFACT_ROOT),
               PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(connection.settings_dict["NAME"]), str(pk)],
        cwd=ROOT, env=env)


def test_an_execution_whose_worker_was_killed_ends_within_lease_and_sweep(monkeypatch):
    settings.CONVEYOR_LEASE_SECONDS = LEASE
    queued: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", queued.append)
    pipeline = simple_pipeline(stages=[("Build", [shell("Compile", ["sleep 60"])]),
                                       ("Deploy", [shell("Release", ["true"], "Deploy")])])
    from executions import services

    ex = services.execution_start(pipeline=pipeline)
    worker.run_action(queued.pop())                         # Source, in this process
    build = queued.pop()
    proc = start_worker(build)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            action = ActionExecution.objects.get(pk=build)
            if action.pgid:
                break
            assert proc.poll() is None, "the worker exited on its own"
            time.sleep(0.05)
        assert action.pgid and action.worker.split(":")[1] == str(proc.pid)
        assert alive(action.pgid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        while time.monotonic() - killed < 20:
            engine.sweep()
            ex.refresh_from_db()
            if ex.status != "InProgress":
                break
            time.sleep(SWEEP)
        took = time.monotonic() - killed
    finally:
        if proc.poll() is None:
            proc.kill()
    action.refresh_from_db()
    assert ex.status == "Failed"
    assert action.status == "Failed" and action.summary.startswith("Worker lost")
    # lease + sweep interval, plus the time one sweep itself takes on a busy machine
    assert took <= LEASE + SWEEP + 1.5, took
    assert not alive(action.pgid)                            # the orphaned `sleep` is gone
    assert PipelineExecution.objects.get(pk=ex.pk).ended_at is not None
