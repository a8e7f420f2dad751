"""The four DORA figures of a set of pipelines over a window, and their weekly series.

Definitions (also written on the insights page, ``DEFINITIONS``):

- A **deployment** is a STANDARD execution that ended Succeeded: it went through
  every stage of its version, the last one being the production deploy.
- A **failed deployment** (a change failure) is a STANDARD execution that entered
  its version's last stage and ended Failed there.
- Superseded and Stopped executions are neither: nobody's change failed, someone or
  something chose not to finish it. Executions that failed before the last stage
  never reached production and are not counted either. ROLLBACK executions restore
  an earlier release: they are not counted as deployments (they may end an outage,
  see time to restore).
- **Deployment frequency**: deployments per day over the window.
- **Lead time for changes**: from the commit (the source revision's commit time,
  the earliest when several sources) to the end of its deployment; median.
  Deployments whose source gave no commit time are left out (and counted).
- **Change failure rate**: failed deployments / (deployments + failed deployments).
- **Time to restore**: from the first failed deployment of a pipeline to the end of
  the next execution of it that succeeded there (a deployment or a rollback); median over
  the restored incidents of the window; those still open are counted.

Each figure is one query of the PipelineExecution table alone, the same code on
PostgreSQL and SQLite but for the lead-time medians (ordered-set aggregates on
PostgreSQL, window functions on SQLite), and the weeks are buckets computed in SQL (``week`` = whole
weeks from ``since`` to ``ended_at``). What the figures need from other tables is
copied onto the execution as its rows are written (``executions.dora_columns``): the
earliest commit time of its source revisions (``committed_at``) and whether it entered
its version's last stage (``entered_last_stage``); joining every source revision, and
the stage executions with their version's document, was most of the time at 100,000
executions (docs/benchmarks.md).

1. ``dora_counts``: deployments and failed deployments per week (conditional
   aggregates) — the frequency and the change failure rate;
2. ``dora_lead_times``: the weekly and overall medians of the lead time, picked in
   the database (only the one or two middle rows of each week leave it);
3. ``dora_incidents``: one row per incident (a failed deployment whose pipeline's
   previous counted execution succeeded, with the end of the next success after
   it, each looked up in the index). Incidents are at most
   one per failure, few, so their medians are taken here in Python.

The indexes they use are commented in ``executions/models.py`` (the covering
``executions_pe_counted_idx`` and the partial ``executions_pe_failure_idx``); timings
are in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import EmptyResultSet
from django.db import NotSupportedError, connection
from django.db.models import (
    Count,
    DateTimeField,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Floor

from executions.choices import ExecutionType
from executions.choices import PipelineExecutionStatus as E
from executions.models import PipelineExecution

DEFINITIONS = {
    "deployment": "A deployment is an execution that ended Succeeded: it went through every "
                  "stage, the last one being the production deploy. Superseded and stopped "
                  "executions are neither successes nor failures; executions that failed "
                  "before the last stage never reached production and are not counted.",
    "frequency": "Deployment frequency: deployments per day over the period.",
    "lead_time": "Lead time for changes: from the commit time of the deployed source "
                 "revision to the end of its deployment (median).",
    "failure_rate": "Change failure rate: executions that failed in the last stage, divided "
                    "by those plus the deployments.",
    "restore": "Time to restore: from the first failure in the last stage to the end of the "
               "next execution that succeeded there, a deployment or a rollback (median).",
}

WEEK = 7 * 86400


@dataclass
class DoraWeek:
    start: datetime
    deployments: int = 0
    failures: int = 0
    lead_time: float | None = None                         # seconds, median of the week
    restores: list[float] = field(default_factory=list)   # seconds, incidents restored

    @property
    def failure_rate(self) -> float | None:
        total = self.deployments + self.failures
        return 100.0 * self.failures / total if total else None

    @property
    def restore(self) -> float | None:
        return statistics.median(self.restores) if self.restores else None


@dataclass
class DoraFigures:
    since: datetime
    until: datetime
    deployments: int
    failures: int
    per_day: float
    lead_time: float | None          # seconds, median
    lead_time_unknown: int           # deployments without a commit time
    failure_rate: float | None       # percent
    restore: float | None            # seconds, median
    restored: int
    open_incidents: int
    weeks: list[DoraWeek]


# --- SQL pieces that read the same on PostgreSQL and SQLite -------------------------------


class Seconds(Func):
    """A duration expression (the difference of two timestamps) in seconds, as a float.

    PostgreSQL subtracts timestamps into an interval; Django's SQLite backend into
    microseconds (its ``django_timestamp_diff``)."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError(f"executions.dora does not support {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection,
                              template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection,
                              template="(%(expressions)s / 1000000.0)", **extra)


def _since(since: datetime) -> Value:
    return Value(since, output_field=DateTimeField())


def _week(since: datetime, at: str = "ended_at"):
    """Whole weeks from ``since`` to the timestamp ``at`` (0 = the first week)."""
    return Cast(Floor(Seconds(F(at) - _since(since)) / WEEK), IntegerField())


def _pipeline_ids(pipelines):
    """``pipelines`` is a queryset of Pipelines (any filter: a group's, a user's), as a
    subquery of their ids, or a list of ids."""
    if isinstance(pipelines, QuerySet):
        return pipelines.order_by().values("pk")
    return list(pipelines)


def _ended(pipelines, since: datetime, until: datetime) -> QuerySet:
    """The executions of these pipelines that ended in [since, until), none counted yet."""
    return (PipelineExecution.objects.order_by()
            .filter(pipeline_id__in=_pipeline_ids(pipelines), ended_at__gte=since,
                    ended_at__lt=until))


def _failed_in_last_stage() -> Q:
    """The STANDARD executions that ended Failed after entering their version's last
    stage (change failures): ``entered_last_stage`` is stored on the row
    (``executions.dora_columns``), no join with the stage executions."""
    return Q(status=E.FAILED, execution_type=ExecutionType.STANDARD, entered_last_stage=True)


# --- the three queries ----------------------------------------------------------------------


def dora_counts(pipelines, *, since: datetime, until: datetime) -> dict[int, tuple[int, int]]:
    """{week: (deployments, failed deployments)} of these pipelines in [since, until).

    One query: the STANDARD executions that ended Succeeded or Failed in the window,
    grouped by week, with two conditional counts."""
    rows = (_ended(pipelines, since, until)
            .filter(execution_type=ExecutionType.STANDARD, status__in=[E.SUCCEEDED, E.FAILED])
            .annotate(week=_week(since))
            .values("week")
            .annotate(deployments=Count("pk", filter=Q(status=E.SUCCEEDED)),
                      failures=Count("pk", filter=_failed_in_last_stage())))
    return {row["week"]: (row["deployments"], row["failures"]) for row in rows}


@dataclass
class LeadTimes:
    known: int                       # deployments with a commit time
    median: float | None
    weekly: dict[int, float]         # week -> median of the week


def dora_lead_times(pipelines, *, since: datetime, until: datetime) -> LeadTimes:
    """The median lead time of the deployments of [since, until), overall and per week.

    One query. Inside (the ORM's): each deployment with a commit time, its lead time
    in seconds (from ``committed_at``, the earliest commit time of its source
    revisions, stored on the row) and its week. A median of an even count is the mean
    of its two middle rows (rows of equal lead time are interchangeable: no tie-break
    is needed). Around it:

    - PostgreSQL: ordered-set aggregates grouped by week and over the window at once
      (``GROUPING SETS``): ``percentile_disc(0.5)`` in ascending and in descending
      order are the lower and the upper middle rows (the same one for an odd count).
      Each is a sort of numbers in memory; the window functions below sorted the
      window's rows twice, spilling to disk (0.7 s of 0.8 for the 88,000 deployments
      of 52 weeks at 100,000 executions, docs/benchmarks.md).
    - SQLite, which has no ordered-set aggregates: the deployments numbered in
      lead-time order within their week and within the window (``ROW_NUMBER``,
      ``COUNT`` as window functions); only the middle one or two rows of each
      (numbers ``(n + 1) / 2`` to ``(n + 2) / 2``, integer division) leave the
      database. The windows read the rows from a derived table so that the lead time
      is computed once per deployment, not once per window that orders by it.
    """
    deployments = (_ended(pipelines, since, until)
                   .filter(execution_type=ExecutionType.STANDARD, status=E.SUCCEEDED)
                   .filter(committed_at__isnull=False)
                   .annotate(lead=Seconds(F("ended_at") - F("committed_at")), week=_week(since))
                   .values_list("week", "lead"))
    try:
        inner, params = deployments.query.sql_with_params()
    except EmptyResultSet:      # no pipeline at all (``pipeline__in=[]``): no deployment
        return LeadTimes(0, None, {})
    if connection.vendor == "postgresql":
        return _lead_times_postgresql(inner, params)
    sql = f"""
        SELECT week, lead, n_all, in_week, n_week, in_all FROM (
            SELECT week, lead,
                   ROW_NUMBER() OVER (PARTITION BY week ORDER BY lead) AS in_week,
                   COUNT(*) OVER (PARTITION BY week) AS n_week,
                   ROW_NUMBER() OVER (ORDER BY lead) AS in_all,
                   COUNT(*) OVER () AS n_all
            FROM ({inner}) deployments
        ) ranked
        WHERE (in_week BETWEEN (n_week + 1) / 2 AND (n_week + 2) / 2)
           OR (in_all BETWEEN (n_all + 1) / 2 AND (n_all + 2) / 2)"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    weekly: dict[int, list[float]] = {}
    overall: list[float] = []
    known = 0
    for week_index, seconds, n_all, in_week, n_week, in_all in rows:
        known = n_all
        if (n_week + 1) // 2 <= in_week <= (n_week + 2) // 2:
            weekly.setdefault(week_index, []).append(seconds)
        if (n_all + 1) // 2 <= in_all <= (n_all + 2) // 2:
            overall.append(seconds)
    return LeadTimes(known=known, median=statistics.mean(overall) if overall else None,
                     weekly={w: statistics.mean(v) for w, v in weekly.items()})


def _lead_times_postgresql(inner: str, params) -> LeadTimes:
    sql = f"""
        SELECT GROUPING(week), week, COUNT(*),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY lead),
               percentile_disc(0.5) WITHIN GROUP (ORDER BY lead DESC)
        FROM ({inner}) deployments
        GROUP BY GROUPING SETS ((week), ())"""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    known, median, weekly = 0, None, {}
    for overall, week_index, count, lower, upper in rows:
        if not count:
            continue                 # the overall row of no deployment at all
        middle = statistics.mean([lower, upper])
        if overall:
            known, median = count, middle
        else:
            weekly[week_index] = middle
    return LeadTimes(known=known, median=median, weekly=weekly)


@dataclass(frozen=True)
class Incident:
    pipeline_id: int
    opened_at: datetime              # the first failed deployment
    restored_at: datetime | None     # the end of the next success; None: still failing


def dora_incidents(pipelines, *, since: datetime, until: datetime) -> list[Incident]:
    """The incidents of these pipelines in [since, until): one per run of failed
    deployments, with the end of the success (a deployment or a rollback) that ended it.

    One query over the failed deployments of the window (a few percent of its rows:
    ``executions_pe_failure_idx``), each with two correlated lookups in its
    pipeline's ``(pipeline, ended_at)`` index: the counted execution just before it in
    ``(ended_at, id)`` order (a success of either type or a failed deployment; the
    failure opens an incident unless that one failed too) and the end of the first
    success after it. Counted executions are those of the window only, as the rows
    that windows over the window would see. (Window functions over every counted row,
    ``LAG`` and a running ``MIN``, gave the same answer by sorting all of them: 1 s for
    the 90,000 of 52 weeks at 100,000 executions, docs/benchmarks.md.)
    """
    counted = Q(status=E.SUCCEEDED) | _failed_in_last_stage()
    # The outer row's pipeline's executions of the window.
    same_pipeline = (PipelineExecution.objects.order_by()
                     .filter(pipeline_id=OuterRef("pipeline_id"), ended_at__gte=since,
                             ended_at__lt=until))
    previous = (same_pipeline.filter(counted)
                .filter(ended_at__lte=OuterRef("ended_at"))
                .exclude(ended_at=OuterRef("ended_at"), pk__gte=OuterRef("pk"))
                .order_by("-ended_at", "-pk").values("status")[:1])
    restored = (same_pipeline.filter(status=E.SUCCEEDED)
                .filter(ended_at__gte=OuterRef("ended_at"))
                .exclude(ended_at=OuterRef("ended_at"), pk__lte=OuterRef("pk"))
                .order_by("ended_at").values("ended_at")[:1])
    rows = (_ended(pipelines, since, until)
            .filter(_failed_in_last_stage())
            .annotate(previous=Subquery(previous))
            .filter(Q(previous__isnull=True) | ~Q(previous=E.FAILED))
            .annotate(restored_at=Subquery(restored))
            .values_list("pipeline_id", "ended_at", "restored_at"))
    return [Incident(*row) for row in rows]


def dora(pipelines: QuerySet | Iterable[int], *, since: datetime,
         until: datetime) -> DoraFigures:
    """The four figures of ``pipelines`` over [since, until), with their weekly series.

    ``pipelines`` is a queryset of ``Pipeline`` (e.g. ``Pipeline.objects.filter(group=g)``
    for a group's figures: it becomes a subquery, no ids are loaded) or an iterable of
    pipeline ids. Three queries: ``dora_counts``, ``dora_lead_times``, ``dora_incidents``.
    """
    weeks: list[DoraWeek] = []
    start = since
    while start < until:
        weeks.append(DoraWeek(start))
        start += timedelta(days=7)
    if not isinstance(pipelines, QuerySet):
        pipelines = list(pipelines)

    def week(index: int) -> DoraWeek:
        return weeks[max(0, min(index, len(weeks) - 1))]

    deployments = failures = 0
    for index, (deployed, failed) in dora_counts(pipelines, since=since, until=until).items():
        week(index).deployments += deployed
        week(index).failures += failed
        deployments += deployed
        failures += failed

    leads = dora_lead_times(pipelines, since=since, until=until)
    for index, median in leads.weekly.items():
        week(index).lead_time = median

    restores: list[float] = []
    open_incidents = 0
    for incident in dora_incidents(pipelines, since=since, until=until):
        if incident.restored_at is None:
            open_incidents += 1
            continue
        restores.append((incident.restored_at - incident.opened_at).total_seconds())
        index = int((incident.restored_at - since).total_seconds() // WEEK)
        week(index).restores.append(restores[-1])

    days = max((until - since).total_seconds() / 86400, 1e-9)
    total = deployments + failures
    return DoraFigures(
        since=since, until=until, deployments=deployments, failures=failures,
        per_day=deployments / days,
        lead_time=leads.median,
        # Counted by two queries: a deployment ending between them may show for a moment.
        lead_time_unknown=max(0, deployments - leads.known),
        failure_rate=100.0 * failures / total if total else None,
        restore=statistics.median(restores) if restores else None,
        restored=len(restores), open_incidents=open_incidents, weeks=weeks,
    )
