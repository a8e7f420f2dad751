"""Prometheus metrics, computed from the database at scrape time.

Why a custom collector instead of counters and histograms kept in memory: a
Conveyor runs several web processes and django-q2 clusters on several machines;
in-memory metrics would need prometheus-client's multiprocess directory on each
machine, and would still count only what the scraped machine saw. Every number
here is a read of the shared database (the executions, stage and action
executions, approval requests, and ``observability.Counter`` rows for what
leaves no row of its own: sweeper runs, webhook deliveries), so any web process
answers the same figures for the whole installation.

Labels are bounded: pipeline, stage and provider names, statuses, outcomes and
host names; never an execution id. A scrape's answer is kept for
``CONVEYOR_METRICS_CACHE_SECONDS`` (default 5) in the process, so several
scrapers do not multiply the queries.

Retention (``CONVEYOR_RETENTION_DAYS``) deletes old executions: the pruned ones
stay counted in ``conveyor_executions_total`` (retention adds them to a
counter); the duration histograms are kept as rollups of what ended
(``observability.rollups``), which pruning does not change either.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from observability.counters import (
    PRUNED_EXECUTIONS,
    SWEEPS,
    SWEPT_ACTIONS,
    WEBHOOK_DELIVERIES,
    counter_rows,
)
from observability.rollups import HistogramSpec, Series, histogram_series

ACTION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
STAGE_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


def _histogram(name: str, doc: str, label_names: list[str], series: Series,
               names: dict[int, str], buckets: tuple) -> HistogramMetricFamily:
    """A histogram family from ``observability.rollups`` series keyed by (pipeline id,
    other labels...); series of pipelines deleted since are left out."""
    family = HistogramMetricFamily(name, doc, labels=label_names)
    for (pipeline_id, *others), values in sorted(series.items(), key=lambda kv: str(kv[0])):
        if pipeline_id not in names:
            continue
        cumulative = [(str(float(b)), values[i]) for i, b in enumerate(buckets)]
        cumulative.append(("+Inf", values[len(buckets)]))
        family.add_metric([names[pipeline_id], *others], cumulative,
                          sum_value=values[len(buckets) + 1])
    return family


class ConveyorCollector(Collector):
    """Reads the whole installation's figures from the database on ``collect()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self):
        return []  # unknown until the database is read; registering must not query it

    def collect(self):
        ttl = float(getattr(settings, "CONVEYOR_METRICS_CACHE_SECONDS", 5))
        with self._lock:
            if self._cached and ttl > 0 and time.monotonic() - self._cached[0] < ttl:
                return list(self._cached[1])
            metrics = list(self._read())
            self._cached = (time.monotonic(), metrics)
            return list(metrics)

    def _read(self):
        from approvals.models import ApprovalRequest
        from executions.choices import PipelineExecutionStatus as P
        from executions.models import ActionExecution, PipelineExecution, StageExecution
        from pipelines.models import Pipeline

        now = timezone.now()
        names = dict(Pipeline.objects.values_list("pk", "name"))

        # Executions by status. Terminal statuses only in the counter (an execution
        # counted InProgress would later leave that series: not a counter).
        ended = CounterMetricFamily(
            "conveyor_executions", "Executions that ended, by pipeline and final status.",
            labels=["pipeline", "status"])
        active = GaugeMetricFamily(
            "conveyor_executions_active", "Executions InProgress or Stopping now.",
            labels=["pipeline", "status"])
        totals: dict[tuple[str, str], int] = {}
        for row in (PipelineExecution.objects.values("pipeline_id", "status")
                    .annotate(n=Count("pk")).order_by()):
            key = (names.get(row["pipeline_id"], ""), row["status"])
            totals[key] = totals.get(key, 0) + row["n"]
        for labels, value, _ in counter_rows(PRUNED_EXECUTIONS):
            key = (labels.get("pipeline", ""), labels.get("status", ""))
            totals[key] = totals.get(key, 0) + value
        for (pipeline, status), n in sorted(totals.items()):
            if status in P.TERMINAL:
                ended.add_metric([pipeline, status], n)
            else:
                active.add_metric([pipeline, status], n)
        yield ended
        yield active

        inbound = GaugeMetricFamily(
            "conveyor_inbound_executions",
            "Executions waiting at the gate of a stage, by pipeline and reason.",
            labels=["pipeline", "reason"])
        for row in (PipelineExecution.objects.exclude(inbound_stage_name="")
                    .filter(status__in=sorted(P.ACTIVE))
                    .values("pipeline_id", "inbound_reason").annotate(n=Count("pk")).order_by()):
            inbound.add_metric([names.get(row["pipeline_id"], ""), row["inbound_reason"]],
                               row["n"])
        yield inbound

        # Durations of ended action and stage executions (every attempt): a rollup of
        # those that ended over LAG ago plus the few since (observability.rollups).
        yield _histogram(
            "conveyor_action_duration_seconds",
            "Duration of ended action executions (claimed to ended), every attempt.",
            ["pipeline", "stage", "provider"],
            histogram_series(HistogramSpec("action_duration", ActionExecution,
                                           ("pipeline_id", "stage_name", "provider"),
                                           ACTION_BUCKETS), now=now),
            names, ACTION_BUCKETS)
        yield _histogram(
            "conveyor_stage_duration_seconds",
            "Duration of ended stage executions (entered to ended), every attempt.",
            ["pipeline", "stage"],
            histogram_series(HistogramSpec("stage_duration", StageExecution,
                                           ("pipeline_id", "stage_name"), STAGE_BUCKETS),
                             now=now),
            names, STAGE_BUCKETS)

        # The queue: actions the engine started that no worker has claimed yet.
        running = ActionExecution.objects.filter(status="InProgress", waiting_since__isnull=True)
        queued = running.filter(worker="").aggregate(n=Count("pk"), oldest=Min("created_at"))
        yield GaugeMetricFamily("conveyor_queue_depth",
                                "Action executions started and not yet claimed by a worker.",
                                value=queued["n"])
        yield GaugeMetricFamily(
            "conveyor_queue_oldest_age_seconds",
            "Age of the oldest action execution waiting for a worker (0: none).",
            value=(now - queued["oldest"]).total_seconds() if queued["oldest"] else 0.0)
        yield GaugeMetricFamily("conveyor_actions_running",
                                "Action executions a worker is running now.",
                                value=running.exclude(worker="").count())

        # Worker heartbeats: a worker renews the lease of each action it runs every
        # lease/3 seconds, so the newest renewal per host is its last sign of life.
        lease = timedelta(seconds=float(getattr(settings, "CONVEYOR_LEASE_SECONDS", 30)))
        beats = GaugeMetricFamily(
            "conveyor_worker_last_heartbeat_timestamp_seconds",
            "Newest lease renewal of a running action, per worker host (Unix time).",
            labels=["host"])
        newest: dict[str, float] = {}
        for worker, expires in (running.exclude(worker="").filter(lease_expires_at__isnull=False)
                                .values_list("worker", "lease_expires_at")):
            host = worker.split(":", 1)[0]
            newest[host] = max(newest.get(host, 0.0), (expires - lease).timestamp())
        for host, at in sorted(newest.items()):
            beats.add_metric([host], at)
        yield beats

        pending = GaugeMetricFamily("conveyor_approvals_pending",
                                    "Approval requests waiting for reviewers.",
                                    labels=["pipeline"])
        oldest = GaugeMetricFamily("conveyor_approvals_oldest_pending_age_seconds",
                                   "Age of the oldest pending approval request.",
                                   labels=["pipeline"])
        for row in (ApprovalRequest.objects.filter(status="Pending").values("pipeline_name")
                    .annotate(n=Count("pk"), oldest=Min("created_at")).order_by()):
            pending.add_metric([row["pipeline_name"]], row["n"])
            oldest.add_metric([row["pipeline_name"]], (now - row["oldest"]).total_seconds())
        yield pending
        yield oldest

        sweeps = CounterMetricFamily("conveyor_sweeper_runs",
                                     "Completed runs of the sweeper (lost and timed-out actions).")
        last = GaugeMetricFamily("conveyor_sweeper_last_run_timestamp_seconds",
                                 "When the sweeper last completed a run (Unix time; 0: never).")
        rows = counter_rows(SWEEPS)
        sweeps.add_metric([], sum(v for _, v, _ in rows))
        last.add_metric([], max((u.timestamp() for _, _, u in rows), default=0.0))
        yield sweeps
        yield last
        swept = CounterMetricFamily("conveyor_sweeper_actions",
                                    "Action executions the sweeper ended or handed out again.",
                                    labels=["outcome"])
        for labels, value, _ in counter_rows(SWEPT_ACTIONS):
            swept.add_metric([labels.get("outcome", "")], value)
        yield swept

        deliveries = CounterMetricFamily(
            "conveyor_webhook_deliveries",
            "Push webhook deliveries received, by pipeline and result.",
            labels=["pipeline", "result"])
        for labels, value, _ in counter_rows(WEBHOOK_DELIVERIES):
            deliveries.add_metric([labels.get("pipeline", ""), labels.get("result", "")], value)
        yield deliveries


registry = CollectorRegistry(auto_describe=False)
collector = ConveyorCollector()
registry.register(collector)
