"""The execution state machine (DESIGN.md "Execution semantics", rules 1-11).

This is the only module that changes the status of a PipelineExecution, a
StageExecution or an ActionExecution, and it does so through one helper,
``_set_status``: a compare-and-set (``UPDATE … WHERE pk = … AND status =
<observed>``) checked against the allowed-transition table of
``executions.choices``, which appends the ExecutionEvent in the same
transaction. Zero rows updated means a lost race or an invalid move; the
caller then changes nothing else, which makes every entry point idempotent
under a repeated or late message (rule 11).

Every entry point that changes statuses runs in one transaction that first
locks its pipeline's row (``SELECT … FOR NO KEY UPDATE`` on PostgreSQL; on
SQLite the IMMEDIATE transaction already serializes writers). That lock
orders the decisions at stage boundaries — "the stage is locked, so I wait
as its inbound execution" and "I leave the stage, so the inbound one enters"
can never interleave and lose a wake-up — and it makes the events of one
pipeline commit in sequence order. The stage lock itself is the database's
conditional unique constraint (rule 1): the engine asks first, the
constraint has the last word.

Effects that must not happen unless the transaction commits — handing new
action executions to workers, killing process groups, sending signals —
are collected in an ``_Effects`` and run on commit.

Hooks for other apps (see ``executions.signals``): ``action_ended``,
``action_abandoned`` (with ``superseded_by`` for rule 10),
``execution_superseded``, ``events_appended``. Waiting actions (approvals,
webhook invokes) are completed from outside with ``action_complete``.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Max
from django.utils import timezone

from executions import runners, signals
from executions.choices import (
    ActionExecutionStatus,
    EventKind,
    ExecutionType,
    PipelineExecutionStatus,
    RetryMode,
    StageExecutionStatus,
    WaitingReason,
)
from executions.errors import (
    ExecutionConflict,
    ExecutionNotLatest,
    ExecutionNotStoppable,
    StageNotRetryable,
    StopAlreadyRequested,
)
from executions.models import (
    ActionExecution,
    Artifact,
    ExecutionEvent,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from executions.runners.base import kill_process_group
from observability.counters import SWEEPS, SWEPT_ACTIONS, counter_add
from pipelines.choices import ExecutionMode
from pipelines.models import Pipeline, Stage

logger = logging.getLogger("conveyor.engine")

E = PipelineExecutionStatus
S = StageExecutionStatus
A = ActionExecutionStatus

HOST = socket.gethostname()
REFERENCE_RE = re.compile(r"#\{([^}]*)\}")


def setting(name: str, default):
    return getattr(settings, name, default)


def lease_seconds() -> float:
    return float(setting("CONVEYOR_LEASE_SECONDS", 30))


def dispatch_seconds() -> float:
    """How long an action may wait for a worker before the sweeper hands it out again."""
    return float(setting("CONVEYOR_DISPATCH_SECONDS", 300))


# --- pure aggregation (tested without a database) --------------------------------


@dataclass(frozen=True)
class ActionView:
    """An action of a stage as aggregation sees it; ``status`` None = not started."""

    name: str
    run_order: int
    status: str | None


@dataclass(frozen=True)
class StageDecision:
    """What a stage does next: end with ``status``, start ``start``, or wait (neither)."""

    status: str | None = None
    start: tuple[str, ...] = ()


def stage_step(actions: Iterable[ActionView], *, stopping: bool) -> StageDecision:
    """Decide a stage's next move from its actions' statuses (rules 5, 6, 7).

    Precedence, first match wins:
    1. an action is InProgress → wait (a failure or a stop lets running ones finish);
    2. the stage is stopping, or an action was Abandoned → Stopped;
    3. an action Failed → Failed (no new action starts);
    4. every action Succeeded → Succeeded;
    5. otherwise start the not-started actions of the lowest runOrder
       (every lower group has succeeded, by 1–3).
    """
    actions = list(actions)
    statuses = {a.status for a in actions}
    if A.IN_PROGRESS in statuses:
        return StageDecision()
    if stopping or A.ABANDONED in statuses:
        return StageDecision(status=S.STOPPED)
    if A.FAILED in statuses:
        return StageDecision(status=S.FAILED)
    pending = [a for a in actions if a.status is None]
    if not pending:
        return StageDecision(status=S.SUCCEEDED)
    first = min(a.run_order for a in pending)
    return StageDecision(start=tuple(a.name for a in pending if a.run_order == first))


def execution_outcome(stage_statuses: Iterable[str | None], *, stopping: bool) -> str | None:
    """An execution's final status from its stages' latest statuses, or None to go on.

    ``stage_statuses`` lists, in order, the latest status of every stage the
    execution must run (None: not entered yet). Precedence: a stage still
    active → None; stopping or a Stopped stage → Stopped; a Failed stage →
    Failed; all Succeeded → Succeeded; otherwise None (enter the next stage).
    """
    statuses = list(stage_statuses)
    if any(s in S.ACTIVE for s in statuses):
        return None
    if stopping or S.STOPPED in statuses:
        return E.STOPPED
    if S.FAILED in statuses:
        return E.FAILED
    if statuses and all(s == S.SUCCEEDED for s in statuses):
        return E.SUCCEEDED
    return None


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
    # next (``tasks`` continuation): handed over on commit, never queued.
    claim: Claim | None = None

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
            from executions import tasks

            if self.claim is not None:
                tasks.continue_with(self.claim)
            if self.dispatch:
                tasks.dispatch(list(self.dispatch))
        for worker, pgid in self.kills:
            # Same machine: kill now. Elsewhere: the worker's heartbeat sees the
            # action ended and kills its own process group.
            if worker.split(":", 1)[0] == HOST and pgid:
                kill_process_group(pgid)
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


# --- starting ---------------------------------------------------------------------


def execution_create(*, pipeline: Pipeline, version, user, trigger_type: str, trigger_detail: str,
                     variables: dict, source_revision_overrides: list,
                     client_request_token: str, execution_type: str = ExecutionType.STANDARD,
                     rollback_target: PipelineExecution | None = None,
                     rollback_stage_name: str = "") -> PipelineExecution:
    """Create an execution (InProgress) and let it arrive at its first stage.

    Called by ``services.execution_start`` and ``services.stage_rollback``,
    which have checked the request.
    """
    with _Transaction(pipeline.pk) as fx:
        # Under the pipeline lock, max + 1 cannot be taken twice (the unique
        # constraint on (pipeline, number) backs it anyway).
        number = (PipelineExecution.objects.filter(pipeline=pipeline)
                  .aggregate(n=Max("number"))["n"] or 0) + 1
        now = timezone.now()
        ex = PipelineExecution.objects.create(
            pipeline=pipeline, number=number, pipeline_version=version,
            execution_mode=version.document.get("executionMode", ExecutionMode.SUPERSEDED),
            execution_type=execution_type, rollback_target=rollback_target,
            rollback_stage_name=rollback_stage_name, trigger_type=trigger_type,
            trigger_detail=trigger_detail[:1000], triggered_by=_user(user),
            client_request_token=client_request_token, status=E.IN_PROGRESS,
            variables=variables, source_revision_overrides=source_revision_overrides,
            started_at=now,
        )
        ex.pipeline_version = version
        ex.pipeline = pipeline
        if rollback_target is not None:
            # A rollback redeploys its target's artifacts: it shows their revisions
            # (CodePipeline's artifactRevisions of a rollback execution).
            SourceRevision.objects.bulk_create([
                SourceRevision(
                    execution=ex, action_name=r.action_name, artifact_name=r.artifact_name,
                    revision_id=r.revision_id, revision_summary=r.revision_summary,
                    revision_url=r.revision_url,
                    revision_change_identifier=r.revision_change_identifier,
                    committed_at=r.committed_at)
                for r in SourceRevision.objects.filter(execution=rollback_target)])
        who = getattr(user, "username", "") or trigger_type
        summary = f"Started by {who}" + (f": {trigger_detail}" if trigger_detail else "")
        _event(fx, ex, EventKind.PIPELINE_EXECUTION, "", E.IN_PROGRESS, summary,
               {"triggerType": trigger_type, "number": number,
                "executionType": execution_type})
        _arrive(fx, ex, _plan(ex)[0])
    return ex


def _user(user):
    return user if getattr(user, "is_authenticated", False) else None


# --- stage boundaries (rules 1-4, 10) ---------------------------------------------------


def _transition(pipeline_id: int, stage_name: str) -> tuple[bool, str]:
    # order_by(): Stage's default ordering goes through Pipeline (a join for nothing).
    row = next(iter(Stage.objects.filter(pipeline_id=pipeline_id, name=stage_name).order_by()
                    .values_list("transition_enabled", "transition_disabled_reason")[:1]),
               None)
    # A stage no longer in the current definition (an execution pinned to an
    # older version) has no transition to disable.
    return (True, "") if row is None else row


def _holder(pipeline_id: int, stage_name: str) -> StageExecution | None:
    """The stage execution holding the lock of a stage, if any."""
    return (StageExecution.objects.select_related("execution")
            .filter(pipeline_id=pipeline_id, stage_name=stage_name, locking=True,
                    status__in=S.ACTIVE).first())


def _arrive(fx: _Effects, ex: PipelineExecution, stage_name: str,
            others: list[PipelineExecution] | None = None) -> None:
    """``ex`` has finished the previous stage (or just started): enter or wait (rules 2, 3).

    ``others``: the executions already waiting at that stage, if the caller knows.
    """
    pipeline_id = ex.pipeline_id
    if others is None:
        others = list(PipelineExecution.objects.select_related("pipeline_version")
                      .filter(pipeline_id=pipeline_id, inbound_stage_name=stage_name)
                      .exclude(pk=ex.pk).order_by("number"))
    if ex.execution_mode == ExecutionMode.SUPERSEDED:
        # Rule 3: only the most recent inbound execution survives at a boundary.
        newest = max([ex, *[o for o in others if o.execution_mode == ExecutionMode.SUPERSEDED]],
                     key=lambda e: e.number)
        for other in others:
            if other.execution_mode == ExecutionMode.SUPERSEDED and other is not newest:
                _supersede(fx, other, by=newest)
        if newest is not ex:
            _supersede(fx, ex, by=newest)
            return
        others = [o for o in others if o.execution_mode != ExecutionMode.SUPERSEDED]
    enabled, _reason = _transition(pipeline_id, stage_name)
    if not enabled:
        _wait(fx, ex, stage_name, WaitingReason.TRANSITION_DISABLED)
        return
    if _locks(ex):
        if ex.execution_mode == ExecutionMode.QUEUED and any(
            o.number < ex.number and _locks(o) for o in others
        ):
            _wait(fx, ex, stage_name, WaitingReason.QUEUED_BEHIND)
            return
        if not _enter_locked(fx, ex, stage_name):
            _wait(fx, ex, stage_name, WaitingReason.STAGE_LOCKED)
        return
    _enter(fx, ex, stage_name)


def _wait(fx: _Effects, ex: PipelineExecution, stage_name: str, reason: str) -> None:
    """Make ``ex`` the inbound execution of a stage (an event, not a status change)."""
    if ex.inbound_stage_name == stage_name:
        if ex.inbound_reason != reason:
            PipelineExecution.objects.filter(pk=ex.pk).update(inbound_reason=reason)
            ex.inbound_reason = reason
        return
    now = timezone.now()
    PipelineExecution.objects.filter(pk=ex.pk).update(
        inbound_stage_name=stage_name, inbound_since=now, inbound_reason=reason, updated_at=now)
    ex.inbound_stage_name, ex.inbound_since, ex.inbound_reason = stage_name, now, reason
    _event(fx, ex, EventKind.INBOUND, ex.status, ex.status,
           f'Waiting to enter "{stage_name}": {WaitingReason(reason).label.lower()}',
           {"stageName": stage_name, "waitingReason": reason})


def _clear_inbound(ex: PipelineExecution) -> dict:
    ex.inbound_stage_name, ex.inbound_since, ex.inbound_reason = "", None, ""
    return {"inbound_stage_name": "", "inbound_since": None, "inbound_reason": ""}


def _enter(fx: _Effects, ex: PipelineExecution, stage_name: str, *, attempt: int = 1,
           retry_mode: str = "") -> StageExecution | None:
    """Insert the StageExecution (the lock) and start its first actions; None if locked."""
    now = timezone.now()
    se = StageExecution(
        execution=ex, pipeline_id=ex.pipeline_id, stage_name=stage_name,
        stage_index=_stage_index(ex, stage_name), attempt=attempt, retry_mode=retry_mode,
        locking=_locks(ex), status=S.IN_PROGRESS, started_at=now,
    )
    try:
        with transaction.atomic():
            se.save()
    except IntegrityError:
        # The constraint has the last word: someone holds the stage.
        return None
    se.execution = ex
    if ex.inbound_stage_name:
        PipelineExecution.objects.filter(pk=ex.pk).update(**_clear_inbound(ex), updated_at=now)
    _event(fx, se, EventKind.STAGE_EXECUTION, "", S.IN_PROGRESS,
           f"Retry {attempt - 1} ({retry_mode})" if attempt > 1 else "",
           {"attempt": attempt, "retryMode": retry_mode} if attempt > 1 else None)
    _stage_advance(fx, se, fresh=True)
    return se


def _enter_locked(fx: _Effects, ex: PipelineExecution, stage_name: str) -> bool:
    """Enter a locking stage; if it is held, try rule 10 on the holder, then give up.

    Entering first and asking who holds the stage only when the constraint
    refused spares a query on every uncontended boundary.
    """
    if _enter(fx, ex, stage_name) is not None:
        return True
    holder = _holder(ex.pipeline_id, stage_name)
    if holder is not None and not _supersede_pending_approval(fx, holder, newer=ex):
        return False
    return _enter(fx, ex, stage_name) is not None


def _admit(fx: _Effects, pipeline_id: int, stage_name: str,
           waiting: list[PipelineExecution] | None = None) -> None:
    """A stage unlocked or its transition was enabled: let inbound executions in (rule 4)."""
    if waiting is None:
        waiting = list(PipelineExecution.objects.select_related("pipeline_version")
                       .filter(pipeline_id=pipeline_id, inbound_stage_name=stage_name,
                               status=E.IN_PROGRESS).order_by("number"))
    if not waiting or not _transition(pipeline_id, stage_name)[0]:
        return
    blocked = False
    for ex in waiting:
        if not _locks(ex):
            _enter(fx, ex, stage_name)
            continue
        if blocked:
            _wait(fx, ex, stage_name, WaitingReason.QUEUED_BEHIND
                  if ex.execution_mode == ExecutionMode.QUEUED else WaitingReason.STAGE_LOCKED)
            continue
        if not _enter_locked(fx, ex, stage_name):
            _wait(fx, ex, stage_name, WaitingReason.STAGE_LOCKED)
        blocked = True


def _supersede(fx: _Effects, ex: PipelineExecution, *, by: PipelineExecution) -> None:
    """End an inbound (or, rule 10, approval-waiting) execution as Superseded, naming ``by``."""
    if _set_status(fx, ex, E.SUPERSEDED, summary=f"Superseded by {_label(by)}",
                   superseded_by=by, data={"supersededBy": str(by.execution_id)},
                   **_clear_inbound(ex)):
        fx.signals.append((signals.execution_superseded,
                           {"execution": ex, "superseded_by": by}))


def _supersede_pending_approval(fx: _Effects, holder: StageExecution, *,
                                newer: PipelineExecution) -> bool:
    """Rule 10: free a stage whose older execution only waits for a manual approval.

    Applies in SUPERSEDED mode when every action still InProgress in the
    holder's stage is a *waiting* Approval action whose configuration does not
    set ``SupersedePendingApproval`` to "false" (actions of later runOrder
    groups that have not started do not count). Those actions end Abandoned,
    the stage Stopped, the older execution Superseded (summaries name the
    newer one), and ``action_abandoned``/``execution_superseded`` are sent so
    the approvals app closes its requests. True if the stage is now free.
    """
    older = holder.execution
    if (older.pk == newer.pk or older.number > newer.number
            or older.execution_mode != ExecutionMode.SUPERSEDED
            or newer.execution_mode != ExecutionMode.SUPERSEDED
            or older.status != E.IN_PROGRESS or holder.status != S.IN_PROGRESS):
        return False
    running = list(ActionExecution.objects.filter(stage_execution=holder, status=A.IN_PROGRESS))
    if not running:
        return False
    for ae in running:
        config = (ae.configuration or {}).get("configuration") or {}
        keep = str(config.get("SupersedePendingApproval", "true")).strip().lower() == "false"
        if ae.category != "Approval" or ae.waiting_since is None or keep:
            return False
    reason = f"Superseded by {_label(newer)}: a newer execution arrived at this stage"
    for ae in running:
        _abandon(fx, ae, reason, superseded_by=newer)
    _set_status(fx, holder, S.STOPPED, summary=f"Superseded by {_label(newer)}")
    _supersede(fx, older, by=newer)
    return True


# --- inside a stage (rules 5, 6, 7) ------------------------------------------------


def _effective(se: StageExecution, ex: PipelineExecution) -> tuple[list[ActionView],
                                                                   dict[str, int]]:
    """Each action of the stage with its status for this attempt.

    A FAILED_ACTIONS retry carries the actions that succeeded in an earlier
    attempt as Succeeded; anything else not run in this attempt is None.
    Also returns each action's highest attempt number so far.
    """
    rows = list(ActionExecution.objects.filter(execution=ex, stage_name=se.stage_name)
                .only("action_name", "status", "stage_execution_id", "attempt")
                .order_by("attempt"))
    current = {r.action_name: r.status for r in rows if r.stage_execution_id == se.pk}
    earlier = {r.action_name: r.status for r in rows if r.stage_execution_id != se.pk}
    views = []
    for action in _stages(ex)[se.stage_index]["actions"]:
        name = action["name"]
        status = current.get(name)
        if status is None and se.retry_mode == RetryMode.FAILED_ACTIONS \
                and earlier.get(name) == A.SUCCEEDED:
            status = A.SUCCEEDED
        views.append(ActionView(name, action.get("runOrder", 1), status))
    attempts: dict[str, int] = {}
    for r in rows:
        attempts[r.action_name] = max(attempts.get(r.action_name, 0), r.attempt)
    return views, attempts


def _stage_advance(fx: _Effects, se: StageExecution, *, fresh: bool = False,
                   ended: ActionExecution | None = None) -> None:
    """Apply ``stage_step`` to a stage execution: start actions, or end the stage.

    ``fresh``: the stage execution was just inserted as a first attempt, so no
    action of this execution has run in the stage (no query needed to know it).
    ``ended``: the action that just ended in it; when it is the only action of
    a first attempt, its status is the whole picture (no query either).
    """
    ex = se.execution
    if se.status not in S.ACTIVE:
        return
    actions = _stages(ex)[se.stage_index]["actions"]
    attempts: dict[str, int] = {}
    if fresh and se.attempt == 1:
        views = [ActionView(a["name"], a.get("runOrder", 1), None) for a in actions]
    elif (ended is not None and se.attempt == 1 and len(actions) == 1
          and ended.stage_execution_id == se.pk and ended.action_name == actions[0]["name"]):
        views = [ActionView(ended.action_name, actions[0].get("runOrder", 1), ended.status)]
    else:
        views, attempts = _effective(se, ex)
    decision = stage_step(views, stopping=se.status == S.STOPPING)
    if decision.start:
        _start_actions(fx, se, ex, decision.start, attempts)
    elif decision.status is not None:
        summary = _stage_summary(se, decision.status)
        if _set_status(fx, se, decision.status, summary=summary):
            _stage_ended(fx, se)


def _stage_summary(se: StageExecution, status: str) -> str | None:
    if status == S.FAILED:
        failed = (ActionExecution.objects.filter(stage_execution=se, status=A.FAILED)
                  .order_by("id").first())
        if failed is not None:
            return f'Action "{failed.action_name}" failed: {failed.summary}'
    return None


def _start_actions(fx: _Effects, se: StageExecution, ex: PipelineExecution,
                   names: Iterable[str], attempts: dict[str, int]) -> list[ActionExecution]:
    names = set(names)
    now = timezone.now()
    started = []
    for action in _stages(ex)[se.stage_index]["actions"]:
        if action["name"] not in names:
            continue
        type_id = action["actionTypeId"]
        runner = runners.get(type_id["category"], type_id["provider"])
        timeout = action.get("timeoutInMinutes") or (
            runner.default_timeout_minutes if runner else
            int(setting("CONVEYOR_DEFAULT_TIMEOUT_MINUTES", 60)))
        ae = ActionExecution(
            execution=ex, stage_execution=se, pipeline_id=ex.pipeline_id,
            stage_name=se.stage_name, action_name=action["name"],
            category=type_id["category"], owner=type_id.get("owner", "Custom"),
            provider=type_id["provider"], run_order=action.get("runOrder", 1),
            namespace=action.get("namespace") or "",
            attempt=attempts.get(action["name"], 0) + 1, status=A.IN_PROGRESS,
            timeout_minutes=timeout,
            # Until a worker claims it, the lease bounds how long the action may
            # sit in the queue before the sweeper hands it out again.
            lease_expires_at=now + timedelta(seconds=dispatch_seconds()),
        )
        claim = _claim_ahead(fx, ae, ex, runner, now)
        ae.save(force_insert=True)
        _event(fx, ae, EventKind.ACTION_EXECUTION, "", A.IN_PROGRESS, "",
               {"attempt": ae.attempt, "runOrder": ae.run_order})
        if claim is not None:
            fx.claim = claim
        else:
            fx.dispatch.append(ae.pk)
        started.append(ae)
    return started


def _claim_ahead(fx: _Effects, ae: ActionExecution, ex: PipelineExecution, runner,
                 now: datetime) -> Claim | None:
    """Claim a new action for the worker thread whose transaction starts it.

    A worker that has just finished an action runs the next one itself
    (``tasks`` continuation). Claiming it in the same transaction that creates
    it spares that worker the claim's read, its compare-and-set and a commit.
    Only the first action of a transaction, only inside a worker's task, and
    only when it resolves cleanly: anything else takes the ordinary path
    (queued, claimed by ``action_claim``, which reports the problem).
    """
    if fx.claim is not None or runner is None:
        return None
    from executions import tasks

    if not tasks.can_continue():
        return None
    try:
        doc = _action_doc(ex, ae.stage_name, ae.action_name)
        variables = _variables(ex)
        resolved = _resolve(doc, variables)
        inputs = _inputs(ex, doc)
    except Unresolvable:
        return None
    for key, value in _claim_fields(ae, ex, resolved, worker_name(), now).items():
        setattr(ae, key, value)
    return Claim(ae, ex, resolved, variables, inputs, _source_override(ex, ae))


def _stage_ended(fx: _Effects, se: StageExecution) -> None:
    """A stage execution ended: finish the execution or move on, then unlock (rules 2, 4, 6)."""
    ex = se.execution
    plan = _plan(ex)
    if (se.status == S.SUCCEEDED and ex.status == E.IN_PROGRESS
            and se.stage_name != plan[-1]):
        # The common case needs no look at the other stages: an execution only
        # gets past stages whose latest attempt succeeded, and runs one at a time.
        # One query finds who waits at the next stage and at the one just left.
        following = plan[plan.index(se.stage_name) + 1]
        names = [following, se.stage_name] if se.locking else [following]
        waiting = list(PipelineExecution.objects.select_related("pipeline_version")
                       .filter(pipeline_id=ex.pipeline_id, inbound_stage_name__in=names)
                       .exclude(pk=ex.pk).order_by("number"))
        _arrive(fx, ex, following,
                others=[w for w in waiting if w.inbound_stage_name == following])
        if se.locking:
            _admit(fx, ex.pipeline_id, se.stage_name,
                   waiting=[w for w in waiting if w.inbound_stage_name == se.stage_name
                            and w.status == E.IN_PROGRESS])
        return
    latest = dict(StageExecution.objects.filter(execution=ex).order_by("attempt")
                  .values_list("stage_name", "status"))
    outcome = execution_outcome([latest.get(name) for name in plan],
                                stopping=ex.status == E.STOPPING)
    if outcome is not None:
        if ex.status in E.ACTIVE:
            summary = None
            if outcome == E.FAILED:
                summary = f'Stage "{se.stage_name}" failed. {se.status_summary}'.strip()
            elif outcome == E.SUCCEEDED:
                summary = "Succeeded"
            _set_status(fx, ex, outcome, summary=summary)
    elif se.status == S.SUCCEEDED and ex.status == E.IN_PROGRESS:
        _arrive(fx, ex, plan[plan.index(se.stage_name) + 1])
    if se.locking:
        _admit(fx, ex.pipeline_id, se.stage_name)


# --- worker side: claim, run, finish ------------------------------------------------


class Unresolvable(Exception):
    """A ``#{...}`` reference that has no value at the action's start."""


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


def action_claim(action_execution_pk: int, *, worker: str) -> Claim | None:
    """Claim an InProgress action for a worker and resolve its inputs.

    None when the action was already claimed or has ended (a second delivery
    of the same task changes nothing). An unresolvable variable reference or
    missing input artifact or runner fails the action instead, naming it.
    The claim is one compare-and-set UPDATE (worker, lease, deadline, resolved
    configuration, log path): one commit before the runner starts.
    """
    ae = (ActionExecution.objects.select_related(
        "execution", "execution__pipeline_version", "execution__pipeline",
        "execution__rollback_target").filter(pk=action_execution_pk).first())
    if ae is None or ae.status != A.IN_PROGRESS or ae.worker:
        return None
    ex = ae.execution
    problem = ""
    resolved: dict = {}
    variables: dict[str, str] = {}
    inputs: dict[str, str] = {}
    try:
        if runners.get(ae.category, ae.provider) is None:
            raise Unresolvable(f'No runner for provider "{ae.provider}" of category '
                               f'{ae.category} is installed here')
        doc = _action_doc(ex, ae.stage_name, ae.action_name)
        variables = _variables(ex)
        resolved = _resolve(doc, variables)
        inputs = _inputs(ex, doc)
    except Unresolvable as exc:
        problem = str(exc)
    fields = _claim_fields(ae, ex, resolved, worker, timezone.now())
    claimed = ActionExecution.objects.filter(
        pk=action_execution_pk, status=A.IN_PROGRESS, worker="").update(**fields)
    if not claimed:
        return None
    if problem:
        _finish(action_execution_pk, worker=worker, status=A.FAILED, summary=problem)
        return None
    for key, value in fields.items():
        setattr(ae, key, value)
    return Claim(ae, ex, resolved, variables, inputs, _source_override(ex, ae))


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


def _source_override(ex: PipelineExecution, ae: ActionExecution) -> dict | None:
    return next((o for o in ex.source_revision_overrides
                 if o.get("actionName") == ae.action_name), None)


def _variables(ex: PipelineExecution) -> dict[str, str]:
    """Every variable an action of ``ex`` may reference, by reference name."""
    values = {
        "codepipeline.PipelineExecutionId": str(ex.execution_id),
        "codepipeline.PipelineName": ex.pipeline.name,
        "codepipeline.PipelineVersion": str(ex.pipeline_version.number),
    }
    values.update({f"variables.{k}": str(v) for k, v in (ex.variables or {}).items()})
    if not any(a.get("namespace") for stage in _stages(ex) for a in stage["actions"]):
        return values    # no action publishes variables: nothing to look up
    # Namespaces: a rollback sees its target's outputs, then its own.
    sources = [ex.rollback_target, ex] if ex.rollback_target_id else [ex]
    for source in sources:
        for ns, outputs in (ActionExecution.objects
                            .filter(execution=source, status=A.SUCCEEDED)
                            .exclude(namespace="").order_by("id")
                            .values_list("namespace", "output_variables")):
            for key, value in (outputs or {}).items():
                values[f"{ns}.{key}"] = str(value)
    return values


def _resolve(doc: Any, variables: dict[str, str], path: str = "",
             substitute: bool = True) -> Any:
    """Substitute ``#{Namespace.Variable}`` in every string of the action document.

    ``commands`` are only checked, not substituted: a runner that executes them
    passes the values out of band (Shell uses environment variables), so that a
    value can never become code.
    """
    if isinstance(doc, str):
        def sub(match: re.Match) -> str:
            ref = match.group(1)
            if ref not in variables:
                namespace = ref.partition(".")[0]
                raise Unresolvable(
                    f'Cannot resolve "#{{{ref}}}" in {path or "the action"}: '
                    + (f'namespace "{namespace}" has no variable "{ref.partition(".")[2]}"'
                       if any(k.startswith(namespace + ".") for k in variables)
                       else f'no variable "{ref}" is set in this execution'))
            return variables[ref]
        resolved = REFERENCE_RE.sub(sub, doc)
        return resolved if substitute else doc
    if isinstance(doc, dict):
        # actionTypeId, names and artifact names are not templates.
        return {k: (v if k in ("name", "actionTypeId", "inputArtifacts", "outputArtifacts",
                               "namespace", "runOrder")
                    else _resolve(v, variables, f"{path}.{k}" if path else k,
                                  substitute and k != "commands"))
                for k, v in doc.items()}
    if isinstance(doc, list):
        return [_resolve(v, variables, f"{path}[{i}]", substitute) for i, v in enumerate(doc)]
    return doc


def _inputs(ex: PipelineExecution, doc: dict) -> dict[str, str]:
    found = {}
    for item in doc.get("inputArtifacts", []):
        name = item["name"]
        artifact = None
        for source in ([ex, ex.rollback_target] if ex.rollback_target_id else [ex]):
            artifact = (Artifact.objects.filter(execution=source, name=name)
                        .order_by("-id").first())
            if artifact is not None:
                break
        if artifact is None:
            raise Unresolvable(f'Input artifact "{name}" was not produced in this execution')
        found[name] = artifact.storage_name
    return found


def dispatch_failed(action_execution_pk: int) -> None:
    """Queuing an unclaimed action failed (broker down): let the next sweep re-send it."""
    try:
        ActionExecution.objects.filter(
            pk=action_execution_pk, status=A.IN_PROGRESS, worker="", waiting_since__isnull=True,
        ).update(lease_expires_at=timezone.now())
    except Exception:   # the database too: the dispatch lease still bounds the wait
        logger.warning("could not mark action execution %s for re-dispatch",
                       action_execution_pk, exc_info=True)


def lease_renew(action_execution_pk: int, *, worker: str) -> bool:
    """Extend a running action's lease; False if the action is no longer this worker's."""
    now = timezone.now()
    return ActionExecution.objects.filter(
        pk=action_execution_pk, status=A.IN_PROGRESS, worker=worker, waiting_since__isnull=True,
    ).update(lease_expires_at=now + timedelta(seconds=lease_seconds())) == 1


def action_record_process(action_execution_pk: int, *, worker: str, pid: int, pgid: int,
                          log_path: str = "") -> None:
    """Remember the process group of a running action (to kill it from elsewhere)."""
    fields = {"pid": pid, "pgid": pgid}
    if log_path:
        fields["log_path"] = log_path
    ActionExecution.objects.filter(pk=action_execution_pk, worker=worker).update(**fields)


@dataclass
class ProducedArtifact:
    name: str
    sha256: str
    size: int
    file_count: int
    storage_name: str


def action_finish(action_execution_pk: int, *, worker: str, status: str, summary: str = "",
                  output_variables: dict | None = None, external_url: str = "",
                  external_id: str = "", error: str = "", traceback: str = "",
                  artifacts: Iterable[ProducedArtifact] = (), revision=None,
                  pipeline_id: int | None = None) -> bool:
    """A worker reports the end of the action it claimed; the stage moves on.

    False (nothing changed) when the action is no longer this worker's
    InProgress action: a late or repeated report, or the action was abandoned,
    timed out or declared lost meanwhile.
    """
    return _finish(action_execution_pk, worker=worker, status=status, summary=summary,
                   output_variables=output_variables, external_url=external_url,
                   external_id=external_id, error=error, traceback=traceback,
                   artifacts=artifacts, revision=revision, pipeline_id=pipeline_id)


def _finish(action_execution_pk: int, *, worker: str | None, status: str, summary: str = "",
            output_variables: dict | None = None, external_url: str = "",
            external_id: str = "", error: str = "", traceback: str = "",
            artifacts: Iterable[ProducedArtifact] = (), revision=None,
            where: dict | None = None, pipeline_id: int | None = None) -> bool:
    if pipeline_id is None:
        pipeline_id = ActionExecution.objects.filter(pk=action_execution_pk).values_list(
            "pipeline_id", flat=True).first()
    if pipeline_id is None:
        return False
    with _Transaction(pipeline_id) as fx:
        ae = (ActionExecution.objects.select_related(
            "execution", "execution__pipeline_version", "execution__pipeline",
            "stage_execution").get(pk=action_execution_pk))
        if ae.status != A.IN_PROGRESS or (worker is not None and ae.worker != worker):
            return False
        fields: dict[str, Any] = {"lease_expires_at": None}
        if output_variables:
            fields["output_variables"] = {str(k): str(v) for k, v in output_variables.items()}
        if external_url:
            fields["external_url"] = external_url[:2000]
        if external_id:
            fields["external_id"] = external_id[:200]
        if error:
            fields["error"] = error
        if traceback:
            fields["traceback"] = traceback
        if not _set_status(fx, ae, status, summary=summary, where=where, **fields):
            return False
        if status == A.SUCCEEDED:
            for art in artifacts:
                Artifact.objects.create(
                    execution_id=ae.execution_id, name=art.name, sha256=art.sha256,
                    size=art.size, file_count=art.file_count, storage_name=art.storage_name,
                    produced_by=ae)
            if revision is not None:
                values = {"revision_id": revision.revision_id[:200],
                          "revision_summary": revision.summary[:2000],
                          "revision_url": revision.url[:2000],
                          "revision_change_identifier": revision.change_identifier[:200],
                          "artifact_name": revision.artifact_name[:100],
                          "committed_at": revision.committed_at}
                # Under the pipeline lock: no savepoints (update_or_create takes two).
                # A retried source stage updates its row; a first run inserts it.
                if not SourceRevision.objects.filter(
                        execution_id=ae.execution_id, action_name=ae.action_name).update(**values):
                    SourceRevision.objects.create(execution_id=ae.execution_id,
                                                  action_name=ae.action_name, **values)
        _ended(fx, ae)
        se = ae.stage_execution      # read after the pipeline lock: current
        se.execution = ae.execution
        _stage_advance(fx, se, ended=ae)
    return True


def _ended(fx: _Effects, ae: ActionExecution) -> None:
    fx.signals.append((signals.action_ended,
                       {"action_execution": ae, "status": ae.status, "summary": ae.summary}))


def action_wait(action_execution_pk: int, *, worker: str, summary: str = "",
                external_url: str = "", external_id: str = "",
                token: str | None = None) -> str | None:
    """The runner answered Waiting: the action stays InProgress, held by no worker.

    Returns the token the outside party must present (generated when none
    was given), or None if the action had already ended. Rule 10 is checked
    again: a newer execution may already wait at this stage.
    """
    pipeline_id = ActionExecution.objects.filter(pk=action_execution_pk).values_list(
        "pipeline_id", flat=True).first()
    if pipeline_id is None:
        return None
    token = token or secrets.token_urlsafe(24)
    with _Transaction(pipeline_id) as fx:
        now = timezone.now()
        updated = ActionExecution.objects.filter(
            pk=action_execution_pk, status=A.IN_PROGRESS, worker=worker,
        ).update(waiting_since=now, token=token, summary=summary[:2000],
                 external_url=external_url[:2000], external_id=external_id[:200],
                 lease_expires_at=None, updated_at=now)
        if not updated:
            return None
        ae = ActionExecution.objects.select_related(
            "execution", "stage_execution", "execution__pipeline_version").get(
            pk=action_execution_pk)
        _event(fx, ae, EventKind.ACTION_EXECUTION, A.IN_PROGRESS, A.IN_PROGRESS, summary,
               {"waiting": True})
        se = ae.stage_execution
        se.execution = ae.execution
        if se.locking:
            inbound = (PipelineExecution.objects.select_related("pipeline_version")
                       .filter(pipeline_id=pipeline_id, inbound_stage_name=se.stage_name,
                               status=E.IN_PROGRESS).order_by("-number").first())
            if inbound is not None and _supersede_pending_approval(fx, se, newer=inbound):
                _admit(fx, pipeline_id, se.stage_name)
    return token


def action_complete(action_execution_pk: int, *, succeeded: bool, summary: str = "",
                    output_variables: dict | None = None, external_url: str = "") -> bool:
    """Complete an InProgress action from outside (approval decision, webhook callback).

    True if this call ended it; False if it had already ended (changes nothing).
    """
    return _finish(action_execution_pk, worker=None,
                   status=A.SUCCEEDED if succeeded else A.FAILED, summary=summary,
                   output_variables=output_variables, external_url=external_url)


# --- stop (rule 7) -------------------------------------------------------------------


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


def execution_stop(execution: PipelineExecution, *, abandon: bool, reason: str,
                   user) -> PipelineExecution:
    """Stop and wait, or stop and abandon (rule 7); see ``services.execution_stop``."""
    with _Transaction(execution.pipeline_id) as fx:
        ex = _fetch(execution.pk)
        who = getattr(user, "username", "") or "a client"
        summary = (reason or "").strip() or f"Stopped by {who}"
        if ex.status in E.TERMINAL:
            raise ExecutionNotStoppable(
                f"Execution #{ex.number} has already ended ({ex.status}): it cannot be stopped.")
        if ex.status == E.STOPPING and not abandon:
            raise StopAlreadyRequested(
                f"Execution #{ex.number} is already stopping; stop and abandon to end its "
                "running actions at once.")
        if ex.inbound_stage_name:
            # An inbound execution has nothing running: it stops at once.
            _set_status(fx, ex, E.STOPPED, summary=summary, **_clear_inbound(ex))
            return ex
        se = (StageExecution.objects.filter(execution=ex, status__in=S.ACTIVE)
              .order_by("-id").first())
        if ex.status == E.IN_PROGRESS:
            _set_status(fx, ex, E.STOPPING, summary=summary,
                        data={"abandon": abandon})
        if se is None:
            _set_status(fx, ex, E.STOPPED)
            return ex
        se.execution = ex
        if se.status == S.IN_PROGRESS:
            _set_status(fx, se, S.STOPPING, summary=summary)
        running = ActionExecution.objects.filter(stage_execution=se, status=A.IN_PROGRESS)
        for ae in running:
            if abandon:
                _abandon(fx, ae, f"Abandoned: {summary}")
            elif not ae.worker:
                # Stop and wait lets *running* actions finish; one still in the
                # queue has not started and never will.
                _abandon(fx, ae, f"Not started: {summary}")
            elif ae.waiting_since is not None and not getattr(
                    runners.get(ae.category, ae.provider), "stop_waits_for_it", True):
                # Waiting for people, not for work: nothing to let finish.
                _abandon(fx, ae, f"Stopped while waiting: {summary}")
        _stage_advance(fx, se)
        ex.refresh_from_db()
    return ex


# --- retry (rule 8) --------------------------------------------------------------------


def stage_retry(execution: PipelineExecution, *, stage_name: str, mode: str,
                user) -> StageExecution:
    """Retry a Failed or Stopped stage; see ``services.stage_retry``."""
    with _Transaction(execution.pipeline_id) as fx:
        ex = _fetch(execution.pk)
        if ex.status == E.SUPERSEDED:
            by = f" by #{ex.superseded_by.number}" if ex.superseded_by_id else ""
            raise ExecutionNotLatest(
                f"Execution #{ex.number} was superseded{by}: it cannot be retried.")
        if ex.status in E.ACTIVE:
            raise StageNotRetryable(
                f"Execution #{ex.number} is {ex.status}: only a Failed or Stopped execution "
                "can be retried.")
        if ex.status == E.SUCCEEDED:
            raise StageNotRetryable(
                f"Execution #{ex.number} succeeded: there is nothing to retry.")
        latest = (StageExecution.objects.filter(execution=ex, stage_name=stage_name)
                  .order_by("-attempt").first())
        if latest is None:
            raise StageNotRetryable(
                f'Execution #{ex.number} never entered stage "{stage_name}": it cannot be '
                "retried there.")
        if latest.status not in (S.FAILED, S.STOPPED):
            raise StageNotRetryable(
                f'Stage "{stage_name}" of execution #{ex.number} is {latest.status}: only a '
                "Failed or Stopped stage can be retried.")
        newer = (StageExecution.objects.filter(
            pipeline_id=ex.pipeline_id, stage_name=stage_name,
            execution__number__gt=ex.number).select_related("execution")
            .order_by("execution__number").first())
        if newer is not None:
            raise ExecutionNotLatest(
                f'Execution #{newer.execution.number} has entered stage "{stage_name}" since: '
                f"execution #{ex.number} can no longer be retried there.")
        if not _set_status(fx, ex, E.IN_PROGRESS, ended_at=None,
                           summary=f'Retrying stage "{stage_name}" ({mode})',
                           data={"retryMode": mode, "stageName": stage_name}):
            raise ExecutionConflict(f"Execution #{ex.number} changed meanwhile; try again.")
        se = _enter(fx, ex, stage_name, attempt=latest.attempt + 1, retry_mode=mode)
        if se is None:
            holder = _holder(ex.pipeline_id, stage_name)
            other = f"execution #{holder.execution.number}" if holder else "another execution"
            raise ExecutionConflict(
                f'Stage "{stage_name}" is in use by {other}: retry when it has left the stage.')
    return se


# --- transitions (rule 4) -----------------------------------------------------------------


def transition_set(pipeline: Pipeline, *, stage_name: str, enabled: bool, reason: str,
                   user) -> bool:
    """Enable or disable the transition into a stage; enabling admits the inbound execution."""
    from pipelines import services as pipeline_services

    with _Transaction(pipeline.pk) as fx:
        stage = Stage.objects.get(pipeline=pipeline, name=stage_name)
        changed = pipeline_services.stage_transition_set(
            stage=stage, enabled=enabled, reason=reason, user=user)
        if changed:
            fx.pending.append(ExecutionEvent(
                pipeline=pipeline, kind=EventKind.TRANSITION, stage_name=stage_name,
                status="Enabled" if enabled else "Disabled",
                previous_status="Disabled" if enabled else "Enabled",
                summary=(stage.transition_disabled_reason if not enabled else "")[:2000],
                data={"changedBy": stage.transition_changed_by},
            ))
            if enabled:
                _admit(fx, pipeline.pk, stage_name)
    return changed


# --- timeouts and lost workers (rule 9, crash safety) ---------------------------------------


def timed_out_summary(minutes: int | None) -> str:
    return f"Action timed out after {minutes or 0} min"


def action_time_out(action_execution_pk: int, *, worker: str | None = None) -> bool:
    """Fail an InProgress action that ran past its deadline (by its worker or the sweeper)."""
    ae = ActionExecution.objects.filter(pk=action_execution_pk).only(
        "timeout_minutes", "pgid", "worker", "category", "provider").first()
    if ae is None:
        return False
    pgid, owner = ae.pgid, ae.worker
    runner = runners.get(ae.category, ae.provider)
    done = _finish(action_execution_pk, worker=worker, status=A.FAILED,
                   summary=(runner and runner.timeout_summary)
                   or timed_out_summary(ae.timeout_minutes))
    if done and worker is None and pgid and owner.split(":", 1)[0] == HOST:
        transaction.on_commit(lambda: kill_process_group(pgid))
    return done


@dataclass
class SweepReport:
    lost: int = 0
    timed_out: int = 0
    redispatched: int = 0


def sweep(now: datetime | None = None) -> SweepReport:
    """Find actions nobody will finish and end them (or hand them out again).

    1. Claimed actions whose lease expired: their worker died → Failed
       ("worker lost"), their process group killed if it is on this machine.
    2. Unclaimed actions whose dispatch lease expired: the message never
       reached a worker → dispatched again (a duplicate claim changes nothing).
    3. Actions past their deadline → Failed ("timed out after N min"); a
       running one gets one lease of grace, since its own worker times it out.
    """
    now = now or timezone.now()
    report = SweepReport()
    expired = ActionExecution.objects.filter(
        status=A.IN_PROGRESS, lease_expires_at__lt=now).values_list(
        "pk", "worker", "pgid", "lease_expires_at")
    for pk, worker, pgid, lease in list(expired):
        if not worker:
            moved = ActionExecution.objects.filter(
                pk=pk, status=A.IN_PROGRESS, worker="", lease_expires_at=lease,
            ).update(lease_expires_at=now + timedelta(seconds=dispatch_seconds()))
            if moved:
                from executions import tasks

                transaction.on_commit(lambda pk=pk: tasks.dispatch([pk]))
                report.redispatched += 1
            continue
        summary = (f"Worker lost: no heartbeat from {worker} since "
                   f"{lease.strftime('%Y-%m-%d %H:%M:%S')} UTC")
        if _finish_if_lease_expired(pk, worker=worker, now=now, summary=summary):
            report.lost += 1
            if pgid and worker.split(":", 1)[0] == HOST:
                # The worker died; its children live on in their own group.
                kill_process_group(pgid)
    grace = timedelta(seconds=lease_seconds())
    late = ActionExecution.objects.filter(status=A.IN_PROGRESS, deadline_at__lt=now).values_list(
        "pk", "deadline_at", "waiting_since")
    for pk, deadline, waiting in list(late):
        if waiting is None and deadline > now - grace:
            continue
        if action_time_out(pk):
            report.timed_out += 1
    counter_add(SWEEPS)
    for outcome in ("lost", "timed_out", "redispatched"):
        if getattr(report, outcome):
            counter_add(SWEPT_ACTIONS, {"outcome": outcome}, getattr(report, outcome))
    return report


def _finish_if_lease_expired(pk: int, *, worker: str, now: datetime, summary: str) -> bool:
    # The heartbeat renews without the pipeline lock: the compare includes
    # "the lease is still expired", so a renewal that slips in wins.
    return _finish(pk, worker=worker, status=A.FAILED, summary=summary,
                   error="The worker running this action stopped renewing its lease.",
                   where={"lease_expires_at__lt": now})
