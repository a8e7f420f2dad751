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

``dora_rows`` is the one query: every execution of the window that counts, with
the stage index it reached and its commit time; the figures and the weekly series
are worked out from its rows (``dora_figures``, a pure function).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, Max, Min, OuterRef, Q, Subquery, When

from executions.choices import ExecutionType
from executions.choices import PipelineExecutionStatus as E
from executions.models import PipelineExecution, SourceRevision, StageExecution
from pipelines.models import PipelineVersion

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


@dataclass(frozen=True)
class DoraRow:
    pipeline_id: int
    ended_at: datetime
    succeeded: bool
    in_last_stage: bool   # failed while in its version's last stage (a change failure)
    rollback: bool
    committed_at: datetime | None


@dataclass
class DoraWeek:
    start: datetime
    deployments: int = 0
    failures: int = 0
    lead_times: list[float] = field(default_factory=list)
    restores: list[float] = field(default_factory=list)

    @property
    def failure_rate(self) -> float | None:
        total = self.deployments + self.failures
        return 100.0 * self.failures / total if total else None

    @property
    def lead_time(self) -> float | None:
        return statistics.median(self.lead_times) if self.lead_times else None

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


def dora_rows(pipeline_ids: Iterable[int], *, since: datetime, until: datetime) -> list[DoraRow]:
    """The executions of these pipelines that ended in [since, until) and count for DORA.

    One query: STANDARD executions that ended Succeeded or Failed, and ROLLBACK
    executions that ended Succeeded, each with the highest stage index it entered
    and its earliest commit time (correlated subqueries on the indexed foreign
    keys). The last stage index of each version comes from the versions' documents
    (a handful of rows per pipeline).
    """
    ids = list(pipeline_ids)
    reached = (StageExecution.objects.filter(execution=OuterRef("pk")).order_by()
               .values("execution").annotate(m=Max("stage_index")).values("m"))
    committed = (SourceRevision.objects.filter(execution=OuterRef("pk")).order_by()
                 .values("execution").annotate(m=Min("committed_at")).values("m"))
    rows = (PipelineExecution.objects
            .filter(pipeline_id__in=ids, ended_at__gte=since, ended_at__lt=until)
            .filter(Q(execution_type=ExecutionType.STANDARD, status__in=[E.SUCCEEDED, E.FAILED])
                    | Q(execution_type=ExecutionType.ROLLBACK, status=E.SUCCEEDED))
            # Only a failure needs the stage it reached, only a deployment its commit:
            # the CASE keeps PostgreSQL from running the other subquery for every row.
            .annotate(reached=Case(When(status=E.FAILED, then=Subquery(reached))),
                      committed=Case(When(status=E.SUCCEEDED, execution_type="STANDARD",
                                          then=Subquery(committed))))
            .order_by("ended_at")
            .values_list("pipeline_id", "pipeline_version_id", "ended_at", "status",
                         "execution_type", "reached", "committed"))
    last_index = {pk: len((doc or {}).get("stages") or []) - 1 for pk, doc in
                  PipelineVersion.objects.filter(pipeline_id__in=ids)
                  .values_list("pk", "document")}
    return [DoraRow(pipeline_id=p, ended_at=ended, succeeded=status == E.SUCCEEDED,
                    in_last_stage=status == E.FAILED and reached is not None
                    and reached >= last_index.get(version, 0),
                    rollback=kind == ExecutionType.ROLLBACK, committed_at=commit)
            for p, version, ended, status, kind, reached, commit in rows]


def dora_figures(rows: list[DoraRow], *, since: datetime, until: datetime) -> DoraFigures:
    """The four figures and their weekly series from ``dora_rows`` (sorted by ended_at)."""
    weeks: list[DoraWeek] = []
    start = since
    while start < until:
        weeks.append(DoraWeek(start))
        start += timedelta(days=7)

    def week(at: datetime) -> DoraWeek:
        return weeks[min(int((at - since).total_seconds() // (7 * 86400)), len(weeks) - 1)]

    deployments = failures = unknown = 0
    lead_times: list[float] = []
    restores: list[float] = []
    incident: dict[int, datetime] = {}   # pipeline -> first failure not yet restored
    for row in rows:
        if row.succeeded:
            opened = incident.pop(row.pipeline_id, None)
            if opened is not None:
                restores.append((row.ended_at - opened).total_seconds())
                week(row.ended_at).restores.append(restores[-1])
            if row.rollback:
                continue
            deployments += 1
            week(row.ended_at).deployments += 1
            if row.committed_at is None:
                unknown += 1
            else:
                lead_times.append((row.ended_at - row.committed_at).total_seconds())
                week(row.ended_at).lead_times.append(lead_times[-1])
        elif row.in_last_stage and not row.rollback:
            failures += 1
            week(row.ended_at).failures += 1
            incident.setdefault(row.pipeline_id, row.ended_at)
    days = max((until - since).total_seconds() / 86400, 1e-9)
    total = deployments + failures
    return DoraFigures(
        since=since, until=until, deployments=deployments, failures=failures,
        per_day=deployments / days,
        lead_time=statistics.median(lead_times) if lead_times else None,
        lead_time_unknown=unknown,
        failure_rate=100.0 * failures / total if total else None,
        restore=statistics.median(restores) if restores else None,
        restored=len(restores), open_incidents=len(incident), weeks=weeks,
    )


def dora(pipeline_ids: Iterable[int], *, since: datetime, until: datetime) -> DoraFigures:
    """``dora_figures`` of ``dora_rows``: what the insights page shows."""
    return dora_figures(dora_rows(pipeline_ids, since=since, until=until),
                        since=since, until=until)
