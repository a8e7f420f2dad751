"""A probe inside benchmark worker processes (``BENCH_PROFILE_DIR``): cProfile + SQL counts.

``BENCH_PROFILE_CLOCK``: ``cpu`` (default, ``time.thread_time`` of the task's thread)
or ``wall``.

Installed only through ``bench._bench_settings``. It connects to django-q2's
``pre_execute`` / ``post_execute_in_worker`` signals to profile each task it
runs and adds an execute wrapper to every database connection of the process to count
statements by their first words. Every 10 tasks (and at each task for the
counts) it writes ``<BENCH_PROFILE_DIR>/<pid>.json`` and ``<pid>.pstats``.
Nothing in the engine changes: this is bench-only instrumentation.
"""

from __future__ import annotations

import cProfile
import json
import os
import re
import threading
import time
from collections import Counter
from pathlib import Path

from django.apps import AppConfig

_lock = threading.Lock()
_state = {"tasks": 0, "queries": 0, "query_seconds": 0.0,
          "task_seconds": 0.0}
_statements: Counter = Counter()
_profiler: cProfile.Profile | None = None
_task_started = 0.0


def _shape(sql: str) -> str:
    """A statement's kind and table: 'UPDATE executions_actionexecution'."""
    s = re.sub(r"\s+", " ", sql.strip())
    m = re.match(r'(SELECT|INSERT INTO|UPDATE|DELETE FROM|SAVEPOINT|RELEASE SAVEPOINT|'
                 r'ROLLBACK TO SAVEPOINT|BEGIN|COMMIT)\s*(.*)', s, re.I)
    if not m:
        return s[:40]
    verb, rest = m.group(1).upper(), m.group(2)
    if verb == "SELECT":
        t = re.search(r' FROM "?([\w]+)"?', s)
        return f"SELECT {t.group(1) if t else rest[:30]}" + (
            " FOR UPDATE" if "FOR UPDATE" in s.upper() else "")
    if verb in ("INSERT INTO", "UPDATE", "DELETE FROM"):
        t = re.match(r'"?([\w]+)"?', rest)
        return f"{verb} {t.group(1) if t else rest[:30]}"
    return verb


def _counting(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        spent = time.perf_counter() - started
        with _lock:
            _state["queries"] += 1
            _state["query_seconds"] += spent
            _statements[_shape(sql)] += 1


def _on_connection(sender, connection, **kwargs):
    if _counting not in connection.execute_wrappers:
        connection.execute_wrappers.append(_counting)


def _dump(profile: bool) -> None:
    out = Path(os.environ["BENCH_PROFILE_DIR"])
    pid = os.getpid()
    with _lock:
        data = dict(_state, pid=pid, statements=dict(_statements.most_common()))
    (out / f"{pid}.json.tmp").write_text(json.dumps(data))
    os.replace(out / f"{pid}.json.tmp", out / f"{pid}.json")
    if profile and _profiler is not None:
        _profiler.dump_stats(out / f"{pid}.pstats.tmp")
        os.replace(out / f"{pid}.pstats.tmp", out / f"{pid}.pstats")


def _pre_execute(sender, func=None, task=None, **kwargs):
    global _profiler, _task_started
    if _profiler is None:
        # BENCH_PROFILE_CLOCK=wall counts time waiting (database round trips, locks);
        # the default, cpu, counts the CPU of the task's own thread (time.thread_time:
        # not the heartbeat's or the doorbell sender's): steadier on a busy machine.
        if os.environ.get("BENCH_PROFILE_CLOCK", "cpu") == "wall":
            _profiler = cProfile.Profile()
        else:
            _profiler = cProfile.Profile(time.thread_time)
    _task_started = time.perf_counter()
    _profiler.enable()


def _post_execute(sender, func=None, task=None, **kwargs):
    if _profiler is not None:
        _profiler.disable()
    with _lock:
        _state["tasks"] += 1
        _state["task_seconds"] += time.perf_counter() - _task_started
        tasks = _state["tasks"]
    _dump(profile=tasks % 10 == 0)


class ProbeConfig(AppConfig):
    name = "bench._worker_probe"
    label = "bench_worker_probe"
    path = str(Path(__file__).parent)

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django_q.signals import post_execute_in_worker, pre_execute

        connection_created.connect(_on_connection, dispatch_uid="bench-probe")
        pre_execute.connect(_pre_execute, dispatch_uid="bench-probe")
        post_execute_in_worker.connect(_post_execute, dispatch_uid="bench-probe")
