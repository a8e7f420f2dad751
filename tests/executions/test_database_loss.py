"""A worker's database connection dies under it (as when PostgreSQL restarts).

PostgreSQL only: the fault is real — the worker's own backend is ended with
``pg_terminate_backend`` (what ``pg_ctl restart -m fast`` does to every
session), once before the worker claims an action and once by the action's own
command while it runs, so that the claim and the report of the end each meet a
dead connection. The worker must ride both out (close, reconnect, try again)
and the execution succeed, each command having run once. See the postgres
drill of ``drills/faults.py`` for the same fault on a whole running system.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from executions import services, tasks, worker
from executions.models import ActionExecution, PipelineExecution
from tests.executions.conftest import simple_pipeline
from tests.executions.test_shell import shell

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="pg_terminate_backend needs PostgreSQL (set DATABASE_URL)"),
]


def _dsn() -> dict:
    s = connection.settings_dict
    return {"host": s["HOST"] or "127.0.0.1", "port": s["PORT"] or 5432, "user": s["USER"],
            "password": s["PASSWORD"] or None, "dbname": s["NAME"]}


def _terminate(pid: int) -> None:
    with psycopg.connect(**_dsn(), autocommit=True) as other:
        assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]


def _backend_pid() -> int:
    connection.ensure_connection()
    return connection.connection.info.backend_pid


def test_a_worker_rides_out_its_connection_ending_before_the_claim_and_before_the_report(
        monkeypatch, tmp_path, settings):
    # The Deploy command is the drill's own hand, not a build: it reads the test's files
    # and ends the worker's database connection, which the sandbox rightly forbids.
    settings.CONVEYOR_SANDBOX = "none"
    queued: list[int] = []
    monkeypatch.setattr(tasks, "enqueue", queued.append)
    ran, pid_file, conninfo = tmp_path / "ran.txt", tmp_path / "pid", tmp_path / "conninfo"
    conninfo.write_text(psycopg.conninfo.make_conninfo(
        **{k: v for k, v in _dsn().items() if v is not None}))
    # The Deploy command ends the worker's connection (its pid is in the file), then
    # succeeds: the worker's report of the end is the first to meet the dead connection.
    kill_worker_connection = (
        f'psql "$(cat {conninfo})" -tAc "SELECT pg_terminate_backend($(cat {pid_file}))" '
        f"&& echo ran >> {ran}")
    pipeline = simple_pipeline(stages=[
        ("Build", [shell("Compile", ["echo compiled"])]),
        ("Deploy", [shell("Release", [kill_worker_connection], "Deploy")])])
    ex = services.execution_start(pipeline=pipeline)
    worker.run_action(queued.pop())                          # Source

    _terminate(_backend_pid())                               # the claim meets it
    assert worker.run_action(queued.pop()) == "Succeeded"

    deploy = queued.pop()
    pid = _backend_pid()
    pid_file.write_text(str(pid))
    assert worker.run_action(deploy) == "Succeeded"
    assert _backend_pid() != pid                             # it reconnected

    assert PipelineExecution.objects.get(pk=ex.pk).status == "Succeeded"
    assert ran.read_text() == "ran\n"                        # the command ran once
    release = ActionExecution.objects.get(pk=deploy)
    assert release.status == "Succeeded" and release.summary == "1 command succeeded"
