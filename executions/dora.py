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

Each figure is one query, the same code on PostgreSQL and SQLite, and the weeks are
buckets computed in SQL (``week`` = whole weeks from ``since`` to ``ended_at``):

1. ``dora_counts``: deployments and failed deployments per week (conditional
   aggregates) — the frequency and the change failure rate;
2. ``dora_lead_times``: the weekly and overall medians of the lead time, picked with
   window functions (``ROW_NUMBER``/``COUNT`` over each week and over the whole
   window), so only the one or two middle rows of each week leave the database;
3. ``dora_incidents``: one row per incident (a failed deployment whose pipeline's
   previous counted execution succeeded, with the end of the next success after
   it, by ``LAG`` and a following-rows ``MIN`` per pipeline). Incidents are at most
   one per failure, few, so their medians are taken here in Python.

The indexes they use are commented in ``executions/models.py`` (``executions_pe_ended_idx``
and the partial ``executions_pe_failed_idx``); timings are in docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import NotSupportedError, connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    F,
    FloatField,
    Func,
    IntegerField,
    Min,
    Q,
    QuerySet,
    Value,
    When,
    Window,
)
from django.db.models.expressions import RowRange
from django.db.models.functions import Cast, FirstValue, Floor, Lag

from executions.choices import ExecutionType
from executions.choices import PipelineExecutionStatus as E
from executions.models import PipelineExecution, StageExecution

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


class StageCount(Func):
    """How many stages a pipeline version's document (a JSON object) lists."""

    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError(f"executions.dora does not support {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template=(
            "COALESCE(jsonb_array_length(%(expressions)s -> 'stages'), 0)"), **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template=(
            "COALESCE(json_array_length(%(expressions)s, '$.stages'), 0)"), **extra)


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


def _failed_in_last_stage(pipelines, since: datetime, until: datetime) -> Q:
    """The STANDARD executions of the window that ended Failed after entering their
    version's last stage (change failures).

    An uncorrelated ``id IN (…)``: the stage executions of the window's failed
    executions (``executions_pe_failed_idx``) at or past their version's last stage
    index. PostgreSQL hashes its few ids once; a correlated EXISTS per row was estimated
    (though not run) for every row of the window, which crossed the JIT thresholds at
    40,000 rows (docs/benchmarks.md).
    """
    entered_last = (StageExecution.objects.order_by()
                    .filter(execution__pipeline_id__in=_pipeline_ids(pipelines),
                            execution__status=E.FAILED,
                            execution__execution_type=ExecutionType.STANDARD,
                            execution__ended_at__gte=since, execution__ended_at__lt=until,
                            stage_index__gte=StageCount(
                                F("execution__pipeline_version__document")) - 1)
                    .values("execution_id"))
    return Q(status=E.FAILED, execution_type=ExecutionType.STANDARD, pk__in=entered_last)


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
                      failures=Count("pk", filter=_failed_in_last_stage(
                          pipelines, since, until))))
    return {row["week"]: (row["deployments"], row["failures"]) for row in rows}


@dataclass
class LeadTimes:
    known: int                       # deployments with a commit time
    median: float | None
    weekly: dict[int, float]         # week -> median of the week


def dora_lead_times(pipelines, *, since: datetime, until: datetime) -> LeadTimes:
    """The median lead time of the deployments of [since, until), overall and per week.

    One query. Inside (the ORM's): each deployment with a commit time, its lead time
    in seconds (from the earliest commit time of its source revisions: a join, grouped
    by execution) and its week. Around it (plain SQL, the same on every database):
    the deployments numbered in lead-time order within their week and within the
    window (``ROW_NUMBER``, ``COUNT`` as window functions); only the middle one or two
    rows of each (numbers ``(n + 1) / 2`` to ``(n + 2) / 2``, integer division) leave
    the database, and a median of an even count is the mean of its two middle rows
    (rows of equal lead time are interchangeable: no tie-break is needed).
    The windows read the grouped rows from a derived table so that the lead time is
    computed once per deployment, not once per window that orders by it.
    """
    deployments = (_ended(pipelines, since, until)
                   .filter(execution_type=ExecutionType.STANDARD, status=E.SUCCEEDED)
                   .values("pk")
                   .annotate(committed=Min("source_revisions__committed_at"))
                   .filter(committed__isnull=False)
                   .annotate(lead=Seconds(F("ended_at") - F("committed")), week=_week(since))
                   .values_list("week", "lead"))
    inner, params = deployments.query.sql_with_params()
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


@dataclass(frozen=True)
class Incident:
    pipeline_id: int
    opened_at: datetime              # the first failed deployment
    restored_at: datetime | None     # the end of the next success; None: still failing


def dora_incidents(pipelines, *, since: datetime, until: datetime) -> list[Incident]:
    """The incidents of these pipelines in [since, until): one per run of failed
    deployments, with the end of the success (a deployment or a rollback) that ended it.

    One query over the executions that count (successes of either type, failed
    deployments), in ``(ended_at, id)`` order per pipeline: a failure whose previous
    counted execution (``LAG``) was no failure opens an incident, and the first success
    among the rows after it (``MIN`` over the rows before it, newest first) restores it.
    """
    failure = Case(When(status=E.FAILED, then=Value(1)), default=Value(0),
                   output_field=IntegerField())
    per_pipeline = {"partition_by": [F("pipeline_id")], "order_by": [F("ended_at"), F("pk")]}
    # "The first success after this row" as a MIN over the rows before it in the
    # reverse order: a frame that starts at the partition's first row grows one row
    # at a time, where one starting after the current row would be re-aggregated for
    # every row (quadratic: 10 s for 8,000 rows on PostgreSQL).
    newest_first = {"partition_by": [F("pipeline_id")],
                    "order_by": [F("ended_at").desc(), F("pk").desc()]}
    rows = (_ended(pipelines, since, until)
            .filter(Q(status=E.SUCCEEDED) | _failed_in_last_stage(pipelines, since, until))
            # Window filters go to an outer query, plain ones to the WHERE of the rows
            # the windows read: "this row is a failure" must be a window value too (the
            # one-row frame of the current row) to be tested beside the LAG.
            .annotate(
                failed=Window(FirstValue(failure), frame=RowRange(start=0, end=0),
                              **per_pipeline),
                after_failure=Window(Lag(failure, default=Value(0)), **per_pipeline),
                restored_at=Window(
                    Min(Case(When(status=E.SUCCEEDED, then=F("ended_at")),
                             output_field=DateTimeField())),
                    frame=RowRange(start=None, end=-1), **newest_first))
            .filter(failed=1, after_failure=0)
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
