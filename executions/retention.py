"""Retention: prune ended executions older than ``CONVEYOR_RETENTION_DAYS``.

``executions_prune`` deletes terminal executions (Stopped, Succeeded,
Superseded, Failed) that ended more than N days ago, in batches, each batch
its own short transaction, together with everything that hangs off them
(stage and action executions, artifacts rows, source revisions, events,
approval requests), then their log files under ``LOG_ROOT`` and the stored
artifact contents no remaining ``Artifact`` row names (contents are shared by
hash: one still referenced is kept).

Kept whatever their age, because something still reads them:
- InProgress and Stopping executions (the engine's), always;
- the newest execution of each pipeline, and the newest execution holding a
  revision of each source action: change detection asks "did an execution
  already start for (or build) this commit?" (``triggers.change_seen``), and
  without them an unchanged repository would be released again after N days;
- the rollback target of an active ROLLBACK execution (its inputs are read
  from the target's artifacts while it runs).

Locks: each batch locks only its own execution rows (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so a row the engine holds is skipped and tried on the
next run) and deletes by primary key; it never locks a table nor a pipeline
row, so the engine and the workers go on while it runs. A retry that makes a
Failed execution InProgress again while a batch runs either commits first
(the batch re-reads the status under its row lock and skips it) or waits for
the batch and then finds no row to change (a lost race, as the engine expects).

The daily django-q2 schedule ``conveyor-prune-executions`` follows the
setting (``retention_schedule_ensure``, run after ``migrate``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from executions import artifacts as artifact_store
from executions.choices import PipelineExecutionStatus
from executions.models import ActionExecution, Artifact, PipelineExecution, SourceRevision
from observability.counters import PRUNED_EXECUTIONS, counter_add
from runners import logfile

logger = logging.getLogger("conveyor.retention")

SCHEDULE_NAME = "conveyor-prune-executions"
DEFAULT_BATCH_SIZE = 500


@dataclass
class PruneReport:
    """What a prune deleted (or, with ``dry_run``, would delete)."""

    days: int
    cutoff: datetime | None
    dry_run: bool = False
    batches: int = 0
    executions: int = 0
    action_executions: int = 0
    logs: int = 0
    artifacts_deleted: int = 0
    artifacts_kept: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.days:
            return "Retention is off (CONVEYOR_RETENTION_DAYS unset or 0): nothing pruned."
        verb = "would prune" if self.dry_run else "pruned"
        text = (f"{verb} {self.executions} execution(s) ended before "
                f"{self.cutoff:%Y-%m-%d %H:%M} UTC ({self.action_executions} action "
                f"execution(s), {self.logs} log file(s), {self.artifacts_deleted} stored "
                f"artifact(s); {self.artifacts_kept} kept, still referenced)")
        if not self.dry_run:
            text += f" in {self.batches} batch(es)"
        if self.errors:
            text += f"; {len(self.errors)} file(s) could not be deleted"
        return text


def retention_days() -> int:
    """``CONVEYOR_RETENTION_DAYS`` as a whole number of days (unset, empty or 0: keep forever)."""
    value = getattr(settings, "CONVEYOR_RETENTION_DAYS", 0) or 0
    return max(0, int(value))


def _keep_ids() -> set[int]:
    """Executions kept whatever their age (see the module docstring for why)."""
    newest_per_pipeline = (PipelineExecution.objects.values("pipeline")
                           .annotate(newest=Max("id")).values_list("newest", flat=True))
    newest_per_source = (SourceRevision.objects.values("execution__pipeline", "action_name")
                         .annotate(newest=Max("execution_id")).values_list("newest", flat=True))
    rollback_targets = (PipelineExecution.objects
                        .filter(status__in=sorted(PipelineExecutionStatus.ACTIVE),
                                rollback_target__isnull=False)
                        .values_list("rollback_target_id", flat=True))
    return {*newest_per_pipeline, *newest_per_source, *rollback_targets}


def prunable(*, cutoff: datetime, keep: set[int] | None = None) -> QuerySet[PipelineExecution]:
    """Terminal executions that ended before ``cutoff``, minus the ones ``keep`` names."""
    qs = PipelineExecution.objects.filter(
        Q(ended_at__lt=cutoff) | Q(ended_at__isnull=True, created_at__lt=cutoff),
        status__in=sorted(PipelineExecutionStatus.TERMINAL),
    )
    if keep:
        qs = qs.exclude(id__in=keep)
    return qs


def _log_files(log_paths) -> list[Path]:
    """The files of these ``log_path`` values, only those inside ``LOG_ROOT``, and the
    other files of their folders: ``LOG_ROOT/<pipeline>/<execution id>/`` is the
    execution's own, and also holds its Commands rules' logs (conditions/logs.py)."""
    root = Path(settings.LOG_ROOT).resolve()
    found = []
    for name in log_paths:
        if not name:
            continue
        path = (root / name).resolve()
        if root in path.parents:      # a log_path never leads outside; refuse anyway
            found.append(path)
    listed = set(found)
    for folder in {path.parent for path in found}:
        if folder != root and folder.is_dir():
            found.extend(p for p in folder.iterdir() if p.is_file() and p not in listed
                         and not p.name.endswith(logfile.INDEX_SUFFIX))  # deleted with its log
    return found


def _delete_logs(paths: list[Path], report: PruneReport) -> None:
    root = Path(settings.LOG_ROOT).resolve()
    parents = set()
    for path in paths:
        try:
            path.unlink()
            report.logs += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            report.errors.append(f"{path}: {exc}")
        # and the log's index (when its output arrived, runners.logfile)
        with contextlib.suppress(FileNotFoundError):
            logfile.index_path(path).unlink()
        parents.add(path.parent)
    # LOG_ROOT/<pipeline>/<execution id>/: drop the folders the deletes emptied.
    for folder in sorted(parents, key=lambda p: len(p.parts), reverse=True):
        while folder != root and root in folder.parents:
            try:
                folder.rmdir()
            except OSError:       # not empty (another execution's logs), or gone
                break
            folder = folder.parent


def _delete_unreferenced(storage_names: set[str], report: PruneReport) -> None:
    """Delete the stored contents no remaining Artifact row names.

    One query per batch (``storage_name IN (...)``). A worker storing the very
    same content at this moment finds the file present, skips writing it and
    commits its Artifact row a moment later: if this delete falls in between,
    that row names a missing file and an action reading it fails with the
    storage's error (a retry of the stage stores it again). The window is the
    few milliseconds between a worker's store and its commit.
    """
    if not storage_names:
        return
    referenced = set(Artifact.objects.filter(storage_name__in=storage_names)
                     .values_list("storage_name", flat=True).distinct())
    store = artifact_store.storage()
    for name in sorted(storage_names - referenced):
        try:
            store.delete(name)
            report.artifacts_deleted += 1
        except OSError as exc:
            report.errors.append(f"{name}: {exc}")
    report.artifacts_kept += len(storage_names & referenced)


def _batch_ids(*, cutoff: datetime, keep: set[int], batch_size: int) -> list[int]:
    qs = prunable(cutoff=cutoff, keep=keep).order_by("id")
    if connection.features.has_select_for_update_skip_locked:
        # Lock this batch's rows only; a row the engine holds right now is
        # skipped (the next run takes it). The status filter is re-checked
        # under the lock, so a retried (InProgress again) execution is left alone.
        qs = qs.select_for_update(skip_locked=True, of=("self",))
    return list(qs.values_list("id", flat=True)[:batch_size])


def executions_prune(*, days: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                     dry_run: bool = False, now: datetime | None = None,
                     max_batches: int | None = None) -> PruneReport:
    """Delete terminal executions that ended more than ``days`` days ago.

    1. ``days`` defaults to ``CONVEYOR_RETENTION_DAYS``; 0 prunes nothing.
    2. The executions kept whatever their age are named once (``_keep_ids``).
    3. Batches of at most ``batch_size`` executions: in one short transaction
       the batch's rows are locked, their log paths and artifact contents
       noted, and the executions deleted with everything that cascades from
       them; after the commit, their log files and the contents no Artifact
       row references any more are deleted.
    4. Until a batch comes back empty (or ``max_batches`` batches ran).
    ``dry_run`` deletes nothing and reports what a prune would delete.
    """
    if days is None:
        days = retention_days()
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if not days or days < 0:
        return PruneReport(days=0, cutoff=None, dry_run=dry_run)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    report = PruneReport(days=days, cutoff=cutoff, dry_run=dry_run)
    keep = _keep_ids()
    if dry_run:
        _dry_run(report, cutoff=cutoff, keep=keep)
        return report
    while max_batches is None or report.batches < max_batches:
        with transaction.atomic():
            ids = _batch_ids(cutoff=cutoff, keep=keep, batch_size=batch_size)
            if not ids:
                break
            log_paths = list(ActionExecution.objects.filter(execution_id__in=ids)
                             .exclude(log_path="").values_list("log_path", flat=True))
            action_count = ActionExecution.objects.filter(execution_id__in=ids).count()
            storage_names = set(Artifact.objects.filter(execution_id__in=ids)
                                .values_list("storage_name", flat=True))
            # The pruned executions stay counted in conveyor_executions_total:
            # a counter that drops reads as a reset to Prometheus.
            for row in (PipelineExecution.objects.filter(id__in=ids)
                        .values("pipeline__name", "status").annotate(n=Count("pk")).order_by()):
                counter_add(PRUNED_EXECUTIONS, {"pipeline": row["pipeline__name"],
                                                "status": row["status"]}, row["n"])
            PipelineExecution.objects.filter(id__in=ids).delete()
        # Files after the commit: a rolled-back batch must not lose its files.
        report.batches += 1
        report.executions += len(ids)
        report.action_executions += action_count
        _delete_logs(_log_files(log_paths), report)
        _delete_unreferenced(storage_names, report)
    for error in report.errors:
        logger.warning("retention: could not delete %s", error)
    return report


def _dry_run(report: PruneReport, *, cutoff: datetime, keep: set[int]) -> None:
    candidates = prunable(cutoff=cutoff, keep=keep)
    report.executions = candidates.count()
    actions = ActionExecution.objects.filter(execution__in=candidates)
    report.action_executions = actions.count()
    report.logs = sum(1 for p in _log_files(
        actions.exclude(log_path="").values_list("log_path", flat=True).iterator()) if p.exists())
    names = set(Artifact.objects.filter(execution__in=candidates)
                .values_list("storage_name", flat=True))
    still = set(Artifact.objects.filter(storage_name__in=names)
                .exclude(execution__in=candidates).values_list("storage_name", flat=True))
    report.artifacts_deleted = len(names - still)
    report.artifacts_kept = len(names & still)


def prune_task() -> str:
    """The daily django-q2 task: prune with the settings' retention."""
    return str(executions_prune())


def retention_schedule_ensure(**kwargs) -> None:
    """Create, update or remove the daily prune schedule from ``CONVEYOR_RETENTION_DAYS``.

    Idempotent (``update_or_create`` by name); connected to ``post_migrate``
    like the polling schedule, so ``migrate`` applies a changed setting.
    """
    from django_q.models import Schedule

    if not retention_days():
        Schedule.objects.filter(name=SCHEDULE_NAME).delete()
        return
    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "executions.retention.prune_task", "schedule_type": Schedule.DAILY,
                  "repeats": -1},
    )
