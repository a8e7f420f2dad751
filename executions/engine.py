"""The execution state machine (docs/semantics.md §1–§11).

This is the only module that changes the status of a PipelineExecution, a
StageExecution or an ActionExecution, and it does so through one helper,
``_set_status``: a compare-and-set (``UPDATE … WHERE pk = … AND status =
<observed>``) checked against the allowed-transition table of
``executions.choices``, which appends the ExecutionEvent in the same
transaction. Zero rows updated means a lost race or an invalid move; the
caller then changes nothing else, which makes every entry point idempotent
under a repeated or late message (docs/semantics.md §11).

Every entry point that changes statuses runs in one transaction that first
locks its pipeline's row (``SELECT … FOR NO KEY UPDATE`` on PostgreSQL; on
SQLite the IMMEDIATE transaction already serializes writers). That lock
orders the decisions at stage boundaries — "the stage is locked, so I wait
as its inbound execution" and "I leave the stage, so the inbound one enters"
can never interleave and lose a wake-up — and it makes the events of one
pipeline commit in sequence order. The stage lock itself is the database's
conditional unique constraint (docs/semantics.md §1): the engine asks first, the
constraint has the last word.

Effects that must not happen unless the transaction commits — handing new
action executions to workers, killing process groups, sending signals —
are collected in an ``_Effects`` and run on commit.

Hooks for other apps (see ``executions.signals``): ``action_ended``,
``action_abandoned`` (with ``superseded_by`` for docs/semantics.md §10),
``execution_superseded``, ``events_appended``. Waiting actions (approvals,
webhook invokes) are completed from outside with ``action_complete``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

import runners
from executions import condition_port, queue, selectors, signals
from executions.aggregation import ActionView, StageDecision, execution_outcome, stage_step
from executions.choices import EventKind, RetryTrigger
from executions.errors import (
    ExecutionConflict,
)
from executions.models import (
    ActionExecution,
    Artifact,
    ExecutionEvent,
    PipelineExecution,
    SourceRevision,
    StageExecution,
    commit_time_store,
)
from executions.refusals import stage_retry_refusal, stop_refusal
from executions.stage_conditions import condition_outcome, condition_transaction
from executions.stages import (
    _admit,
    _clear_inbound,
    _conditions,
    _enter,
    _holder,
    _stage_advance,
    _supersede_pending_approval,
    execution_create,
)
from executions.statuses import (
    HOST,
    A,
    Claim,
    E,
    S,
    _abandon,
    _action_doc,
    _claim_fields,
    _ended,
    _event,
    _fetch,
    _set_status,
    _Transaction,
    dispatch_seconds,
    lease_seconds,
    logger,
    setting,
    worker_name,
)
from executions.statuses import (
    _sender as engine_module,
)
from executions.variables import Unresolvable, _inputs, _resolve, _source_override, _variables
from observability.counters import SWEEPS, SWEPT_ACTIONS, counter_add
from pipelines.models import Pipeline, Stage
from runners.base import kill_process_group

__all__ = [
    "AGENT_PREFIX",
    "ActionView",
    "Claim",
    "HOST",
    "ProducedArtifact",
    "StageDecision",
    "SweepReport",
    "Unresolvable",
    "action_claim",
    "action_complete",
    "action_finish",
    "action_progress",
    "action_record_process",
    "action_time_out",
    "action_wait",
    "condition_outcome",
    "condition_transaction",
    "dispatch_failed",
    "dispatch_seconds",
    "execution_create",
    "execution_outcome",
    "execution_stop",
    "lease_renew",
    "lease_seconds",
    "setting",
    "stage_retry",
    "stage_step",
    "sweep",
    "timed_out_summary",
    "transition_set",
    "worker_name",
]


# --- worker side: claim, run, finish ------------------------------------------------


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
    if bool(ae.run_on) != worker.startswith(AGENT_PREFIX):
        # An action routed to agents is never run by a django-q2 worker, nor one
        # of theirs by an agent (docs/deploy.md, Build farm).
        return None
    ex = ae.execution
    problem = ""
    resolved: dict = {}
    variables: dict[str, str] = {}
    inputs: dict[str, str] = {}
    try:
        doc = _action_doc(ex, ae.stage_name, ae.action_name)
        if runners.for_action(doc) is None:
            raise Unresolvable(f'No runner for provider "{ae.provider}" of category '
                               f'{ae.category} is installed here')
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


# The worker name of an action an agent claimed: "agent:<agent name>".
AGENT_PREFIX = "agent:"


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
                if SourceRevision.objects.filter(
                        execution_id=ae.execution_id, action_name=ae.action_name).update(**values):
                    commit_time_store(execution_id=ae.execution_id)
                else:
                    # save() stores the execution's commit time.
                    SourceRevision.objects.create(execution_id=ae.execution_id,
                                                  action_name=ae.action_name, **values)
        _ended(fx, ae)
        se = ae.stage_execution      # read after the pipeline lock: current
        se.execution = ae.execution
        _stage_advance(fx, se, ended=ae)
    return True


def action_wait(action_execution_pk: int, *, worker: str, summary: str = "",
                external_url: str = "", external_id: str = "",
                token: str | None = None) -> str | None:
    """The runner answered Waiting: the action stays InProgress, held by no worker.

    Returns the token the outside party must present (generated when none
    was given), or None if the action had already ended. docs/semantics.md §10 is checked
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
                    output_variables: dict | None = None, external_url: str = "",
                    external_id: str = "", artifacts: Iterable[ProducedArtifact] = (),
                    revision=None) -> bool:
    """Complete an InProgress action from outside (approval decision, webhook callback,
    a job worker's result: then with its output artifacts and revision).

    True if this call ended it; False if it had already ended (changes nothing).
    """
    return _finish(action_execution_pk, worker=None,
                   status=A.SUCCEEDED if succeeded else A.FAILED, summary=summary,
                   output_variables=output_variables, external_url=external_url,
                   external_id=external_id, artifacts=artifacts, revision=revision)


def action_progress(action_execution_pk: int, *, summary: str = "", external_id: str = "",
                    external_url: str = "", percent: int | None = None) -> bool:
    """An InProgress action's outside party reports progress (a job worker's
    executionDetails): summary, external id and link change, the status does not; an
    event (data ``percentComplete``) tells the dashboard. False if the action has ended.
    """
    pipeline_id = ActionExecution.objects.filter(pk=action_execution_pk).values_list(
        "pipeline_id", flat=True).first()
    if pipeline_id is None:
        return False
    with _Transaction(pipeline_id) as fx:
        fields: dict[str, Any] = {"updated_at": timezone.now()}
        if summary:
            fields["summary"] = summary[:2000]
        if external_id:
            fields["external_id"] = external_id[:200]
        if external_url:
            fields["external_url"] = external_url[:2000]
        if not ActionExecution.objects.filter(
                pk=action_execution_pk, status=A.IN_PROGRESS).update(**fields):
            return False
        ae = ActionExecution.objects.select_related(
            "execution", "stage_execution", "execution__pipeline_version").get(
            pk=action_execution_pk)
        data: dict[str, Any] = {"progress": True}
        if percent is not None:
            data["percentComplete"] = percent
        if external_url:
            data["externalExecutionUrl"] = external_url
        _event(fx, ae, EventKind.ACTION_EXECUTION, A.IN_PROGRESS, A.IN_PROGRESS,
               ae.summary, data)
    return True


# --- stop (docs/semantics.md §7) ------------------------------------------------------------------


def execution_stop(execution: PipelineExecution, *, abandon: bool, reason: str,
                   user) -> PipelineExecution:
    """Stop and wait, or stop and abandon (docs/semantics.md §7); see
    ``services.execution_stop``."""
    with _Transaction(execution.pipeline_id) as fx:
        ex = _fetch(execution.pk)
        who = getattr(user, "username", "") or "a client"
        summary = (reason or "").strip() or f"Stopped by {who}"
        refusal = stop_refusal(number=ex.number, status=ex.status, abandon=abandon)
        if refusal is not None:
            raise refusal.error()
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
        if _conditions(ex, se.stage_index):
            # A condition being evaluated ends at once, stop and wait or abandon: its
            # rules decide nothing any more (a waiting window could hold for days).
            condition_port.port().end(fx, stage_execution=se, status="Cancelled",
                                      reason=summary)
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


# --- retry (docs/semantics.md §8) -----------------------------------------------------------------


def stage_retry(execution: PipelineExecution, *, stage_name: str, mode: str,
                user) -> StageExecution:
    """Retry a Failed or Stopped stage; see ``services.stage_retry``."""
    with _Transaction(execution.pipeline_id) as fx:
        ex = _fetch(execution.pk)
        latest = (StageExecution.objects.filter(execution=ex, stage_name=stage_name)
                  .order_by("-attempt").first())
        newer = selectors.stage_entered_since(ex, stage_name)
        refusal = stage_retry_refusal(
            number=ex.number, status=ex.status, stage_name=stage_name,
            latest_stage_status=latest.status if latest is not None else None,
            superseded_by=ex.superseded_by.number if ex.superseded_by_id else None,
            newer_number=newer)
        if refusal is not None:
            raise refusal.error()
        if not _set_status(fx, ex, E.IN_PROGRESS, ended_at=None,
                           summary=f'Retrying stage "{stage_name}" ({mode})',
                           data={"retryMode": mode, "stageName": stage_name}):
            raise ExecutionConflict(f"Execution #{ex.number} changed meanwhile; try again.")
        se = _enter(fx, ex, stage_name, attempt=latest.attempt + 1, retry_mode=mode,
                    retry_trigger=RetryTrigger.MANUAL)
        if se is None:
            holder = _holder(ex.pipeline_id, stage_name)
            other = f"execution #{holder.execution.number}" if holder else "another execution"
            raise ExecutionConflict(
                f'Stage "{stage_name}" is in use by {other}: retry when it has left the stage.')
    return se


# --- transitions (docs/semantics.md §4) -----------------------------------------------------------


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


# --- timeouts and lost workers (docs/semantics.md §9, crash safety) -------------------------------


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
    # Other apps' deadlines first (jobs: unacknowledged and unfinished jobs).
    try:
        signals.sweeping.send(sender=engine_module(), now=now)
    except Exception:  # a listener's bug must not stop the sweeper
        logger.exception("a sweeping listener failed")
    expired = ActionExecution.objects.filter(
        status=A.IN_PROGRESS, lease_expires_at__lt=now).values_list(
        "pk", "worker", "pgid", "lease_expires_at")
    for pk, worker, pgid, lease in list(expired):
        if not worker:
            moved = ActionExecution.objects.filter(
                pk=pk, status=A.IN_PROGRESS, worker="", lease_expires_at=lease,
            ).update(lease_expires_at=now + timedelta(seconds=dispatch_seconds()))
            if moved:
                transaction.on_commit(lambda pk=pk: queue.dispatch([pk]))
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
        "pk", "deadline_at", "waiting_since", "worker")
    for pk, deadline, waiting, owner in list(late):
        # Unclaimed (an action still waiting for an agent): nobody else will time it out.
        if waiting is None and owner and deadline > now - grace:
            continue
        if action_time_out(pk):
            report.timed_out += 1
    counter_add(SWEEPS)
    try:
        signals.swept.send(sender=engine_module(), now=now)
    except Exception:  # a listener's bug must not stop the sweeper
        logger.exception("a swept listener failed")
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
