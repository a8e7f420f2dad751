"""Stage boundaries and the inside of a stage: starting an execution, entering, waiting,
superseding and admitting at boundaries, starting a stage's actions and ending it
(docs/semantics.md). Called only by ``executions.engine``'s entry points."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

import runners
from executions import condition_port, queue, signals
from executions.aggregation import ActionView, execution_outcome, stage_step
from executions.choices import (
    EventKind,
    ExecutionType,
    RetryMode,
    RetryTrigger,
    TriggerType,
    WaitingReason,
)
from executions.models import (
    ActionExecution,
    PipelineExecution,
    SourceRevision,
    StageExecution,
    commit_time_store,
)
from executions.statuses import (
    A,
    Claim,
    E,
    S,
    _abandon,
    _action_doc,
    _claim_fields,
    _Effects,
    _event,
    _label,
    _locks,
    _plan,
    _set_status,
    _stage_index,
    _stages,
    _Transaction,
    _user,
    dispatch_seconds,
    setting,
    worker_name,
)
from executions.variables import Unresolvable, _inputs, _resolve, _source_override, _variables
from pipelines.choices import ExecutionMode
from pipelines.models import Pipeline, Stage
from runners.checks import RUN_ON, run_on_labels

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
            commit_time_store(execution_id=ex.pk)
        who = getattr(user, "username", "") or trigger_type
        summary = f"Started by {who}" + (f": {trigger_detail}" if trigger_detail else "")
        _event(fx, ex, EventKind.PIPELINE_EXECUTION, "", E.IN_PROGRESS, summary,
               {"triggerType": trigger_type, "number": number,
                "executionType": execution_type})
        _arrive(fx, ex, _plan(ex)[0])
    return ex


# --- stage boundaries (docs/semantics.md §1–§4, §10) ----------------------------------------------


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
    """``ex`` has finished the previous stage (or just started): enter or wait
    (docs/semantics.md §2, §3).

    ``others``: the executions already waiting at that stage, if the caller knows.
    """
    pipeline_id = ex.pipeline_id
    if others is None:
        others = list(PipelineExecution.objects.select_related("pipeline_version")
                      .filter(pipeline_id=pipeline_id, inbound_stage_name=stage_name)
                      .exclude(pk=ex.pk).order_by("number"))
    if ex.execution_mode == ExecutionMode.SUPERSEDED:
        # docs/semantics.md §3: only the most recent inbound execution survives at a boundary.
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
           retry_mode: str = "", retry_trigger: str = "") -> StageExecution | None:
    """Insert the StageExecution (the lock) and start its first actions; None if locked."""
    now = timezone.now()
    se = StageExecution(
        execution=ex, pipeline_id=ex.pipeline_id, stage_name=stage_name,
        stage_index=_stage_index(ex, stage_name), attempt=attempt, retry_mode=retry_mode,
        retry_trigger=retry_trigger, locking=_locks(ex), status=S.IN_PROGRESS, started_at=now,
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
    automatic = retry_trigger == RetryTrigger.AUTOMATED
    _event(fx, se, EventKind.STAGE_EXECUTION, "", S.IN_PROGRESS,
           (f"{'Automatic retry' if automatic else 'Retry'} {attempt - 1} ({retry_mode})"
            + (": the stage failed and its onFailure result is RETRY" if automatic else ""))
           if attempt > 1 else "",
           {"attempt": attempt, "retryMode": retry_mode, "retryTrigger": retry_trigger}
           if attempt > 1 else None)
    condition = _condition(ex, se.stage_index, "beforeEntry")
    if condition is not None:
        # Every entry, a retry's too, passes the entry condition first: the execution
        # holds the stage (its lock) while the rules are evaluated; no action starts
        # until it has passed (docs/conditions.md §4).
        condition_port.port().start(fx, stage_execution=se, kind="beforeEntry",
                                    condition=condition)
        return se
    _stage_advance(fx, se, fresh=True)
    return se


def _enter_locked(fx: _Effects, ex: PipelineExecution, stage_name: str) -> bool:
    """Enter a locking stage; if it is held, try docs/semantics.md §10 on the holder, then give up.

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
    """A stage unlocked or its transition was enabled: let inbound executions in
    (docs/semantics.md §4)."""
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
    """End an inbound (or an approval-waiting, docs/semantics.md §10) execution as
    Superseded, naming ``by``."""
    if _set_status(fx, ex, E.SUPERSEDED, summary=f"Superseded by {_label(by)}",
                   superseded_by=by, data={"supersededBy": str(by.execution_id)},
                   **_clear_inbound(ex)):
        fx.signals.append((signals.execution_superseded,
                           {"execution": ex, "superseded_by": by}))


def _supersede_pending_approval(fx: _Effects, holder: StageExecution, *,
                                newer: PipelineExecution) -> bool:
    """docs/semantics.md §10: free a stage whose older execution only waits for a manual approval.

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
        return _supersede_entry_condition(fx, holder, newer=newer)
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


def _supersede_entry_condition(fx: _Effects, holder: StageExecution, *,
                               newer: PipelineExecution) -> bool:
    """SUPERSEDED mode: an older execution that only waits for its beforeEntry condition
    (no action started) gives the stage to a newer one, as a pending approval does
    (docs/conditions.md §4): the condition Abandoned, the stage Stopped, the execution
    Superseded. onSuccess/onFailure conditions are never superseded (the actions ran)."""
    older = holder.execution
    if not _conditions(older, holder.stage_index) or \
            condition_port.port().active(holder) != "beforeEntry":
        return False
    reason = f"Superseded by {_label(newer)}: a newer execution arrived at this stage"
    if not condition_port.port().end(fx, stage_execution=holder, status="Abandoned",
                                     reason=reason):
        return False
    _set_status(fx, holder, S.STOPPED, summary=f"Superseded by {_label(newer)}")
    _supersede(fx, older, by=newer)
    return True


# --- inside a stage (docs/semantics.md §5, §6, §7) ------------------------------------------------


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
    if _conditions(ex, se.stage_index) and condition_port.port().active(se):
        return  # a condition holds the stage: its outcome moves it on (docs/conditions.md)
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
        if _condition_starts(fx, se, decision.status):
            return
        summary = _stage_summary(se, decision.status)
        if _set_status(fx, se, decision.status, summary=summary):
            _stage_ended(fx, se)


def _conditions(ex: PipelineExecution, stage_index: int) -> dict[str, dict]:
    """The stage's conditions an execution evaluates, by kind (docs/conditions.md).

    A ROLLBACK execution evaluates none: it redeploys what already passed them, and a
    deployment window must not hold the repair of a failed release.
    """
    if ex.execution_type == ExecutionType.ROLLBACK:
        return {}
    stage = _stages(ex)[stage_index]
    found = {}
    for kind in ("beforeEntry", "onSuccess", "onFailure"):
        block = stage.get(kind)
        conditions = block.get("conditions") if isinstance(block, dict) else None
        if conditions:
            found[kind] = conditions[0]
    return found


def _condition(ex: PipelineExecution, stage_index: int, kind: str) -> dict | None:
    stage = _stages(ex)[stage_index]
    if kind not in stage:  # the common case: no look at the rest
        return None
    return _conditions(ex, stage_index).get(kind)


def _condition_starts(fx: _Effects, se: StageExecution, status: str) -> bool:
    """The stage's actions decided ``status``: evaluate its onSuccess / onFailure condition
    first, while the execution still holds the stage. True when one started."""
    ex = se.execution
    if status == S.SUCCEEDED:
        kind = "onSuccess"
    elif status == S.FAILED and ex.status == E.IN_PROGRESS:  # a stop is not a failure
        kind = "onFailure"
    else:
        return False
    condition = _condition(ex, se.stage_index, kind)
    if condition is None:
        return False
    condition_port.port().start(fx, stage_execution=se, kind=kind, condition=condition)
    return True


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
        # Only the providers agents run act on RunOn (a custom action type may have a
        # property of that name: it is the job worker's).
        run_on = run_on_labels((action.get("configuration") or {}).get(RUN_ON)) if (
            runner is not None and runner.runs_on_agents) else []
        if run_on:
            # Routed to agents (docs/deploy.md): never queued for a worker. It waits for an
            # agent with these labels to claim it, at most its timeout (the sweeper's
            # deadline check fails it then); a claim sets the lease and deadline anew.
            ae.run_on = ",".join(run_on)[:200]
            ae.lease_expires_at = None
            ae.deadline_at = now + timedelta(minutes=timeout)
        claim = None if run_on else _claim_ahead(fx, ae, ex, runner, now)
        ae.save(force_insert=True)
        if run_on:
            signals.agent_action_started.send(sender=_stages, action_execution=ae,
                                              action=action)
        _event(fx, ae, EventKind.ACTION_EXECUTION, "", A.IN_PROGRESS, "",
               {"attempt": ae.attempt, "runOrder": ae.run_order,
                **({"runOn": ae.run_on} if run_on else {})})
        if claim is not None:
            fx.claim = claim
        elif not run_on:
            fx.dispatch.append(ae.pk)
        started.append(ae)
    return started


def _claim_ahead(fx: _Effects, ae: ActionExecution, ex: PipelineExecution, runner,
                 now: datetime) -> Claim | None:
    """Claim a new action for the worker thread whose transaction starts it.

    A worker that has just finished an action runs the next one itself
    (the queue's continuation). Claiming it in the same transaction that creates
    it spares that worker the claim's read, its compare-and-set and a commit.
    Only the first action of a transaction, only inside a worker's task, and
    only when it resolves cleanly: anything else takes the ordinary path
    (queued, claimed by ``action_claim``, which reports the problem).
    """
    if fx.claim is not None or runner is None:
        return None
    if not queue.can_continue():
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


def _stage_ended(fx: _Effects, se: StageExecution, on_failure: dict | None = None) -> None:
    """A stage execution ended: finish the execution or move on, then unlock
    (docs/semantics.md §2, §4, §6).

    ``on_failure``: what a Failed stage does, decided by a condition (``{"result":
    "RETRY" | "ROLLBACK", "retryMode", "why"}``, or ``{}`` for nothing); None reads the
    stage's ``onFailure`` (docs/semantics.md §15).
    """
    ex = se.execution
    plan = _plan(ex)
    if on_failure is None and se.status == S.FAILED:
        on_failure = _on_failure(ex, se.stage_name)
    if (se.status in S.PASSED and ex.status == E.IN_PROGRESS
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
    if se.status == S.FAILED and ex.status == E.IN_PROGRESS and _retry_automatically(
            fx, ex, se, on_failure):
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
                if se.status == S.FAILED and ex.status == E.IN_PROGRESS:
                    rollback = _roll_back_automatically(fx, ex, se, on_failure)
                    summary = f"{summary} {rollback}".strip() if rollback else summary
            elif outcome == E.SUCCEEDED:
                summary = "Succeeded"
            _set_status(fx, ex, outcome, summary=summary)
    elif se.status in S.PASSED and ex.status == E.IN_PROGRESS:
        _arrive(fx, ex, plan[plan.index(se.stage_name) + 1])
    if se.locking:
        _admit(fx, ex.pipeline_id, se.stage_name)


# --- onFailure: automatic retry and rollback (docs/semantics.md §15) -------------------------


def _on_failure(ex: PipelineExecution, stage_name: str) -> dict:
    """The stage's ``onFailure`` when it has no conditions (with conditions, the condition's
    outcome decides: ``stage_conditions.condition_outcome``)."""
    doc = _stages(ex)[_stage_index(ex, stage_name)].get("onFailure")
    if not isinstance(doc, dict) or "conditions" in doc:
        return {}
    return {"result": doc.get("result"),
            "retryMode": (doc.get("retryConfiguration") or {}).get("retryMode"),
            "why": "onFailure"}


def _retry_automatically(fx: _Effects, ex: PipelineExecution, se: StageExecution,
                         on_failure: dict) -> bool:
    """onFailure RETRY: re-enter the failed stage at once, once per execution and stage
    (CodePipeline allows one automatic attempt). The stage stays locked by this
    execution (the new attempt takes the lock in the same transaction), so no
    inbound execution slips in between. True when the stage was retried."""
    if on_failure.get("result") != "RETRY":
        return False
    if StageExecution.objects.filter(execution=ex, stage_name=se.stage_name,
                                     retry_trigger=RetryTrigger.AUTOMATED).exists():
        return False
    mode = on_failure.get("retryMode") or RetryMode.FAILED_ACTIONS
    return _enter(fx, ex, se.stage_name, attempt=se.attempt + 1, retry_mode=mode,
                  retry_trigger=RetryTrigger.AUTOMATED) is not None


def _roll_back_automatically(fx: _Effects, ex: PipelineExecution, se: StageExecution,
                             on_failure: dict) -> str:
    """onFailure ROLLBACK: plan a rollback execution of the failed stage to the most recent
    execution that succeeded in it (same pipeline version, not itself a rollback), started
    once this transaction commits. Returns the sentence the failed execution's summary
    gets ("" when the stage does not roll back)."""
    from executions.refusals import rollback_refusal
    from pipelines.models import Pipeline

    if on_failure.get("result") != "ROLLBACK":
        return ""
    why = f'{on_failure.get("why") or "onFailure"} ROLLBACK'
    stage = se.stage_name
    if ex.execution_type == ExecutionType.ROLLBACK:
        return "This rollback failed: a failed rollback does not roll back again."
    good = (StageExecution.objects
            .filter(pipeline_id=ex.pipeline_id, stage_name=stage, status=S.SUCCEEDED,
                    execution__execution_type=ExecutionType.STANDARD,
                    execution__pipeline_version_id=ex.pipeline_version_id)
            .exclude(execution_id=ex.pk).select_related("execution__pipeline_version")
            .order_by("-ended_at").first())
    if good is None:
        return (f'No earlier execution of this pipeline version succeeded in stage "{stage}": '
                "there is nothing to roll back to.")
    target = good.execution
    pipeline = Pipeline.objects.get(pk=ex.pipeline_id)
    refusal = rollback_refusal(
        pipeline_name=pipeline.name, pipeline_version=pipeline.version, stage_name=stage,
        stage_index=se.stage_index, target_number=target.number,
        target_execution_id=target.execution_id, target_on_pipeline=True,
        target_version=target.pipeline_version.number, target_stage_status=good.status)
    if refusal is not None:
        return f"Not rolled back: {refusal.message}"
    fx.after.append(lambda: _start_rollback(pipeline, target, stage, failed_number=ex.number,
                                            why=why))
    return f'Rolling back stage "{stage}" to execution #{target.number} ({why}).'


def _start_rollback(pipeline, target: PipelineExecution, stage_name: str, *,
                    failed_number: int, why: str = "onFailure ROLLBACK") -> PipelineExecution:
    return execution_create(
        pipeline=pipeline, version=target.pipeline_version, user=None,
        trigger_type=TriggerType.AUTOMATED_ROLLBACK,
        trigger_detail=(f"Automatic rollback of {stage_name} to #{target.number}: execution "
                        f"#{failed_number} failed there ({why})"),
        variables=dict(target.variables), source_revision_overrides=[],
        client_request_token="", execution_type=ExecutionType.ROLLBACK,
        rollback_target=target, rollback_stage_name=stage_name)
