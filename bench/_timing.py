"""What the latency benchmarks share: time one execution, trigger to end, and a percentile."""

from __future__ import annotations

import time


def execution_wall(pipeline, *, timeout: float = 60.0) -> tuple[float, str, int]:
    """Start an execution of ``pipeline`` and poll its row every 2 ms until it has ended:
    (seconds from the start call to the end seen, final status, the execution's pk).

    A raw query: the poll must cost the machine (2 cores shared with the workers and
    the database) as little as possible.
    """
    from django.db import connection

    from executions import services
    from executions.models import PipelineExecution

    sql = f"SELECT status FROM {PipelineExecution._meta.db_table} WHERE id = %s"
    started = time.perf_counter()
    ex = services.execution_start(pipeline=pipeline)
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, [ex.pk])
            status = cursor.fetchone()[0]
            if status not in ("InProgress", "Stopping"):
                return time.perf_counter() - started, status, ex.pk
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"an execution took more than {timeout:g} s: "
                                   "is the cluster up?")
            time.sleep(0.002)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.95 for p95)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))]
