"""The one status helper of the engine, its events and its transaction.

``_set_status`` is a compare-and-set (``UPDATE … WHERE pk = … AND status =
<observed>``) checked against the allowed status changes of ``executions.choices``;
it appends the ExecutionEvent in the same transaction. ``_Transaction`` locks the
pipeline's row and runs the collected ``_Effects`` on commit. Only the engine's
modules (``engine``, ``stages``) call these.
"""

from __future__ import annotations

import logging
import socket
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from executions import queue, signals
from executions.choices import (
    ActionExecutionStatus,
    EventKind,
    ExecutionType,
    PipelineExecutionStatus,
    StageExecutionStatus,
)
from executions.models import (
    ActionExecution,
    ExecutionEvent,
    PipelineExecution,
    StageExecution,
)
from pipelines.choices import ExecutionMode
from pipelines.models import Pipeline
from runners.base import kill_process_group

logger = logging.getLogger("conveyor.engine")


E = PipelineExecutionStatus


S = StageExecutionStatus


A = ActionExecutionStatus


HOST = socket.gethostname()


def setting(name: str, default):
    return getattr(settings, name, default)


def lease_seconds() -> float:
    return float(setting("CONVEYOR_LEASE_SECONDS", 30))


def dispatch_seconds() -> float:
    """How long an action may wait for a worker before the sweeper hands it out again."""
    return float(setting("CONVEYOR_DISPATCH_SECONDS", 300))


# --- transaction effects ---------------------------------------------------------


@dataclass
class _Effects:
    """What to do once the transaction commits."""

    dispatch: list[int] = field(default_factory=list)
    kills: list[tuple[str, int]] = field(default_factory=list)
    signals: list[tuple[Any, dict]] = field(default_factory=list)
    events: dict[int, int] = field(default_factory=dict)  # pipeline id -> last event id
    event_executions: set[int] = field(default_factory=set)
    # Events are written in one INSERT just before the transaction commits.
    pending: list[ExecutionEvent] = field(default_factory=list)
    # An action claimed in this transaction for the worker thread that runs it
    # next (the queue's continuation): handed over on commit, never queued.
    claim: Claim | None = None
    # Engine steps that need a transaction of their own (an automatic rollback
    # starts a new execution under the pipeline lock): run after this one commits.
    after: list[Any] = field(default_factory=list)

    def flush(self) -> None:
        if not self.pending:
            return
        ExecutionEvent.objects.bulk_create(self.pending)
        for event in self.pending:
            if event.pk is not None:
                self.events[event.pipeline_id] = max(self.events.get(event.pipeline_id, 0),
                                                     event.pk)
        self.pending = []

    def run(self) -> None:
        if self.claim is not None or self.dispatch:
            if self.claim is not None:
                queue.continue_with(self.claim)
            if self.dispatch:
                queue.dispatch(list(self.dispatch))
        for worker, pgid in self.kills:
            # Same machine: kill now. Elsewhere: the worker's heartbeat sees the
            # action ended and kills its own process group.
            if worker.split(":", 1)[0] == HOST and pgid:
                kill_process_group(pgid)
        for step in self.after:
            try:
                step()
            except Exception:  # logged; the failed execution's summary already says why
                logger.exception("an engine step after commit failed")
        for signal, kwargs in self.signals:
            try:
                signal.send(sender=_sender(), **kwargs)
            except Exception:  # a listener's bug must not break the engine's caller
                logger.exception("a %s listener failed", signal)
        for pipeline_id, last in self.events.items():
            try:
                signals.events_appended.send(
                    sender=_sender(), pipeline_id=pipeline_id,
                    execution_ids=sorted(self.event_executions), last_event_id=last,
                )
            except Exception:
                logger.exception("an events_appended listener failed")


def _sender():
    return sys.modules[__name__]


def _serialized_writers() -> bool:
    """True on SQLite in IMMEDIATE mode: BEGIN already took the database's one write
    lock, so the pipeline row lock would add a query and nothing else."""
    return (connection.vendor == "sqlite"
            and connection.settings_dict.get("OPTIONS", {}).get("transaction_mode")
            == "IMMEDIATE")


class _Transaction:
    """``with _Transaction(pipeline_id) as fx:`` — atomic, pipeline row locked, effects
    run on commit."""

    def __init__(self, pipeline_id: int):
        self.pipeline_id = pipeline_id
        self.atomic = transaction.atomic()
        self.fx = _Effects()

    def __enter__(self) -> _Effects:
        self.atomic.__enter__()
        try:
            if not _serialized_writers():
                list(
                    Pipeline.objects.select_for_update(no_key=True)
                    .filter(pk=self.pipeline_id).order_by().values_list("pk", flat=True)
                )
        except BaseException:
            self.atomic.__exit__(*sys.exc_info())
            raise
        return self.fx

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                self.fx.flush()
            except BaseException:
                self.atomic.__exit__(*sys.exc_info())
                raise
            transaction.on_commit(self.fx.run)
        return self.atomic.__exit__(exc_type, exc, tb)


# --- the one status helper -------------------------------------------------------

_TABLES = {
    PipelineExecution: (E, "status_summary", EventKind.PIPELINE_EXECUTION),
    StageExecution: (S, "status_summary", EventKind.STAGE_EXECUTION),
    ActionExecution: (A, "summary", EventKind.ACTION_EXECUTION),
}


def _set_status(fx: _Effects, obj: models.Model, to: str, *, summary: str | None = None,
                data: dict | None = None, where: dict | None = None, **fields) -> bool:
    """Compare-and-set ``obj.status`` from its observed value to ``to``, with its event.

    False (and nothing written) when the table forbids the move or the row no
    longer has the observed status (someone else won). Terminal statuses set
    ``ended_at``; ``fields`` are written in the same UPDATE; ``where`` adds
    conditions to the compare (e.g. "the lease has still expired").
    """
    model = type(obj)
    table, summary_field, kind = _TABLES[model]
    previous = obj.status
    if to not in table.TRANSITIONS.get(previous, ()):
        return False
    now = timezone.now()
    values = dict(fields)
    values["status"] = to
    values["updated_at"] = now
    if summary is not None:
        values[summary_field] = summary[:2000]
    if to in table.TERMINAL:
        values.setdefault("ended_at", now)
    # Callers hold the engine's transaction: no savepoint, the event commits with it.
    with transaction.atomic(savepoint=False):
        if model.objects.filter(pk=obj.pk, status=previous, **(where or {})).update(
                **values) != 1:
            return False
        for key, value in values.items():
            setattr(obj, key, value)
        _event(fx, obj, kind, previous, to, getattr(obj, summary_field), data)
    return True


def _event(fx: _Effects, obj, kind: str, previous: str, status: str, summary: str = "",
           data: dict | None = None) -> ExecutionEvent:
    if isinstance(obj, PipelineExecution):
        execution_id, stage_name, action_name = obj.pk, "", ""
        stage_execution_id = action_execution_id = None
    elif isinstance(obj, StageExecution):
        execution_id, stage_name, action_name = obj.execution_id, obj.stage_name, ""
        stage_execution_id, action_execution_id = obj.pk, None
    else:
        execution_id, stage_name, action_name = obj.execution_id, obj.stage_name, obj.action_name
        stage_execution_id, action_execution_id = obj.stage_execution_id, obj.pk
    event = ExecutionEvent(
        pipeline_id=obj.pipeline_id, execution_id=execution_id, kind=kind,
        stage_name=stage_name, action_name=action_name,
        stage_execution_id=stage_execution_id, action_execution_id=action_execution_id,
        previous_status=previous, status=status, summary=(summary or "")[:2000],
        data=data or {},
    )
    # Written by _Transaction before it commits, in this order, in one INSERT.
    fx.pending.append(event)
    fx.event_executions.add(execution_id)
    return event


def record_event(fx: _Effects, *, stage_execution: StageExecution, kind: str, previous: str,
                 status: str, summary: str = "", data: dict | None = None) -> None:
    """Append the event of a status change another app made to its own rows about a stage
    execution (a condition's, a rule's), in the engine's transaction: it commits with
    the change and rings the live doorbell like the engine's own (docs/semantics.md §11)."""
    fx.pending.append(ExecutionEvent(
        pipeline_id=stage_execution.pipeline_id, execution_id=stage_execution.execution_id,
        kind=kind, stage_name=stage_execution.stage_name,
        stage_execution_id=stage_execution.pk, previous_status=previous, status=status,
        summary=(summary or "")[:2000], data=data or {}))
    fx.event_executions.add(stage_execution.execution_id)


# --- document helpers --------------------------------------------------------------


def _stages(ex: PipelineExecution) -> list[dict]:
    return ex.pipeline_version.document["stages"]


def _stage_index(ex: PipelineExecution, name: str) -> int:
    for i, stage in enumerate(_stages(ex)):
        if stage["name"] == name:
            return i
    raise KeyError(name)


def _plan(ex: PipelineExecution) -> list[str]:
    """The stages this execution must run, in order."""
    if ex.execution_type == ExecutionType.ROLLBACK:
        return [ex.rollback_stage_name]
    return [s["name"] for s in _stages(ex)]


def _action_doc(ex: PipelineExecution, stage_name: str, action_name: str) -> dict:
    stage = _stages(ex)[_stage_index(ex, stage_name)]
    for action in stage["actions"]:
        if action["name"] == action_name:
            return action
    raise KeyError(action_name)


def _locks(ex: PipelineExecution) -> bool:
    return ex.execution_mode != ExecutionMode.PARALLEL


def _label(ex: PipelineExecution) -> str:
    return f"#{ex.number} ({ex.execution_id})"


def _fetch(ex_pk: int) -> PipelineExecution:
    return PipelineExecution.objects.select_related("pipeline_version", "pipeline").get(pk=ex_pk)


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


# --- endings shared by stages and commands -----------------------------------------


def _ended(fx: _Effects, ae: ActionExecution) -> None:
    fx.signals.append((signals.action_ended,
                       {"action_execution": ae, "status": ae.status, "summary": ae.summary}))


def _abandon(fx: _Effects, ae: ActionExecution, reason: str,
             superseded_by: PipelineExecution | None = None) -> bool:
    if not _set_status(fx, ae, A.ABANDONED, summary=reason, lease_expires_at=None):
        return False
    if ae.pgid or ae.worker:
        fx.kills.append((ae.worker, ae.pgid or 0))
    fx.signals.append((signals.action_abandoned,
                       {"action_execution": ae, "reason": reason,
                        "superseded_by": superseded_by}))
    _ended(fx, ae)
    return True


# --- what a claim is -----------------------------------------------------------------


@dataclass
class Claim:
    """What a worker needs to run a claimed action execution."""

    action_execution: ActionExecution
    execution: PipelineExecution
    action: dict          # the action document, references resolved
    variables: dict[str, str]
    inputs: dict[str, str]  # input artifact name -> storage name
    source_override: dict | None


def worker_name() -> str:
    import os
    import threading

    return f"{HOST}:{os.getpid()}:{threading.get_ident()}"


def _claim_fields(ae: ActionExecution, ex: PipelineExecution, resolved: dict, worker: str,
                  now: datetime) -> dict[str, Any]:
    """The columns a claim writes: who runs the action, until when, with what."""
    return {
        "worker": worker, "started_at": now, "updated_at": now,
        "lease_expires_at": now + timedelta(seconds=lease_seconds()),
        "deadline_at": now + timedelta(minutes=ae.timeout_minutes or 60),
        "configuration": resolved,
        "log_path": f"{ex.pipeline.name}/{ex.execution_id}/{ae.action_execution_id}.log",
    }
