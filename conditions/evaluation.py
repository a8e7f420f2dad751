"""Evaluating a stage condition: its rules one after another, then its outcome
(docs/conditions.md §3).

``condition_evaluate`` runs in a worker (``conditions.tasks``), never inside the
engine's transaction: a rule may call out or run commands. Each step is its own short
transaction under the pipeline's lock — start a rule, record its answer, end the
condition and hand its outcome to the engine (``executions.engine.condition_outcome``)
— and each is a compare-and-set, so a second delivery, a stop or an override that won
meanwhile makes the late step change nothing. A rule that waits (a deployment window
not open yet, a metric inside its WaitTime) stays InProgress with ``recheck_at``; no
worker sleeps: the sweeper (``executions.signals.swept``, every minute) hands it out
again when that time, or its timeout, has come.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import traceback
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conditions import records
from conditions.choices import CONDITION_TYPES
from conditions.choices import ConditionExecutionStatus as C
from conditions.choices import RuleExecutionStatus as R
from conditions.logs import rule_log_name
from conditions.models import ConditionExecution, RuleExecution
from executions import artifacts, engine
from executions.variables import Unresolvable, _inputs, _resolve, _variables
from pipelines import secrets
from pipelines.validation_conditions import MAX_RULES
from runners import rules as providers
from runners.base import LogWriter

logger = logging.getLogger("conveyor.conditions")

# How long a worker may hold a rule it evaluates beyond what the rule may take (an HTTP
# rule's requests are bounded by 300 s; a Commands rule by its timeout).
LEASE = timedelta(minutes=6)
# A condition with no rule running and no news for this long lost its evaluation (a
# broker that was down, a worker that died between two rules): the sweeper resumes it.
STALE = timedelta(minutes=2)
SECRET_KEYS = ("Secret", "Token", "Password")
MASK = "****"


def outcome_engaged(kind: str, status: str) -> bool:
    """Whether a condition that ended ``status`` makes its ``result`` take effect.

    beforeEntry and onSuccess: when it did not pass (Failed, or Errored — a rule that
    could not be evaluated never lets a change through). onFailure: when every rule
    succeeded (the failure is confirmed as one to roll back or retry). Overridden and
    the rest never engage.
    """
    if kind == "onFailure":
        return status == C.SUCCEEDED
    return status in (C.FAILED, C.ERRORED)


def _load(pk: int) -> ConditionExecution | None:
    return (ConditionExecution.objects
            .select_related("stage_execution", "stage_execution__execution",
                            "stage_execution__execution__pipeline",
                            "stage_execution__execution__pipeline_version")
            .filter(pk=pk).first())


def _block(ce: ConditionExecution) -> dict:
    ex = ce.stage_execution.execution
    for stage in ex.pipeline_version.document.get("stages", []):
        if stage["name"] == ce.stage_execution.stage_name:
            return stage.get(ce.kind) or {}
    return {}


def _rules(ce: ConditionExecution) -> list[dict]:
    conditions = _block(ce).get("conditions") or [{}]
    return list(conditions[0].get("rules") or [])


def condition_evaluate(pk: int) -> None:
    """Evaluate a condition's rules in order until one waits, one fails or all succeed."""
    # Each turn starts or evaluates one rule; a condition has at most five (validation).
    for _ in range(2 * MAX_RULES + 2):
        ce = _load(pk)
        if ce is None or ce.status != C.IN_PROGRESS:
            return
        rules = _rules(ce)
        rule = RuleExecution.objects.filter(condition_execution=ce).order_by("-position").first()
        if rule is None or rule.status == R.SUCCEEDED:
            position = 0 if rule is None else rule.position + 1
            if position >= len(rules):
                n = len(rules)
                _decide(pk, C.SUCCEEDED, f"{n} of {n} rule{'s' if n != 1 else ''} succeeded")
                return
            rule = _start_rule(pk, position, rules[position])
            if rule is None:
                return
        elif rule.status == R.FAILED:
            status = C.ERRORED if rule.error else C.FAILED
            _decide(pk, status, f'Rule "{rule.rule_name}" ({rule.provider}) '
                    f"{'could not be evaluated' if rule.error else 'failed'}: {rule.summary}")
            return
        elif rule.status != R.IN_PROGRESS:
            return
        now = timezone.now()
        due = rule.recheck_at is None or rule.recheck_at <= now or (
            rule.deadline_at is not None and rule.deadline_at <= now)
        if not due or not _claim(rule, now):
            return
        outcome, error = _run(ce, rule, rules[rule.position], now)
        if not _record(pk, rule, outcome, error):
            return
        if rule.status == R.IN_PROGRESS:
            return  # waits: the sweeper hands it out again at recheck_at


def _masked(configuration: dict) -> dict:
    return {k: (MASK if any(w in k for w in SECRET_KEYS) and k != "SecretName" and v
                else secrets.mask(v)) for k, v in configuration.items()}


def _start_rule(pk: int, position: int, doc: dict) -> RuleExecution | None:
    """The next rule starts: its row (InProgress) with its timeout and its configuration
    resolved (secrets masked)."""
    ce = _load(pk)
    config = doc.get("configuration") or {}
    # An unresolvable reference: the evaluation says which, as the rule's summary.
    with contextlib.suppress(Unresolvable):
        config = _resolve({"configuration": config},
                          _variables(ce.stage_execution.execution))["configuration"]
    now = timezone.now()
    deadline = now + timedelta(minutes=providers.timeout_minutes(doc))
    with engine.condition_transaction(ce.stage_execution.pipeline_id) as fx:
        if not ConditionExecution.objects.filter(pk=pk, status=C.IN_PROGRESS).exists():
            return None
        try:
            with transaction.atomic():
                return records.rule_create(
                    fx, ce, position=position, rule_name=str(doc.get("name", "")),
                    provider=str((doc.get("ruleTypeId") or {}).get("provider", "")),
                    configuration=_masked(config), deadline_at=deadline)
        except IntegrityError:
            return None  # another delivery started it


def _claim(rule: RuleExecution, now: datetime) -> bool:
    """Take the rule for this worker (one compare-and-set); False if another holds it."""
    until = (max(rule.deadline_at, now) if rule.provider == "Commands" and rule.deadline_at
             else now) + LEASE
    return RuleExecution.objects.filter(
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now),
        pk=rule.pk, status=R.IN_PROGRESS).update(lease_expires_at=until) == 1


def _abandoned(pk: int):
    def check() -> bool:
        # Asked from the rule's watcher thread: its own connection, closed each time.
        try:
            return RuleExecution.objects.filter(pk=pk).exclude(status=R.IN_PROGRESS).exists()
        except Exception:
            return False
        finally:
            connections.close_all()
    return check


def _run(ce: ConditionExecution, rule: RuleExecution, doc: dict,
         now: datetime) -> tuple[providers.Outcome, str]:
    """One evaluation of one rule by its provider: (outcome, error text if it crashed)."""
    provider = providers.get(rule.provider)
    if provider is None:
        return providers.Outcome(R.FAILED, f'No rule provider "{rule.provider}" is installed '
                                 "here"), ""
    se = ce.stage_execution
    ex = se.execution
    base = Path(settings.WORKSPACE_ROOT) / str(rule.rule_execution_id)
    log = None
    try:
        variables = _variables(ex)
        resolved = _resolve(doc, variables)
        config = resolved.get("configuration") or {}
        if any(secrets.is_sealed(v) for v in config.values() if isinstance(v, str)):
            resolved["configuration"] = {k: secrets.unseal(v) for k, v in config.items()}
        inp = providers.RuleInput(
            rule=resolved, now=now, started_at=rule.started_at, pipeline_name=ex.pipeline.name,
            stage_name=se.stage_name, pipeline_execution_id=str(ex.execution_id),
            rule_execution_id=str(rule.rule_execution_id),
            condition_type=CONDITION_TYPES[ce.kind], variables=variables,
            deadline=rule.deadline_at, should_abandon=_abandoned(rule.pk))
        if rule.provider == "Commands":
            workspace = base / "workspace"
            workspace.mkdir(parents=True, exist_ok=True)
            for i, (name, storage_name) in enumerate(_inputs(ex, doc).items()):
                target = workspace if i == 0 else base / "inputs" / name
                artifacts.extract(storage_name, target)
                inp.input_dirs[name] = target
            log = LogWriter(Path(settings.LOG_ROOT) / rule_log_name(
                pipeline_name=ex.pipeline.name, execution_id=ex.execution_id,
                rule_execution_id=rule.rule_execution_id))
            inp.workspace, inp.log = workspace, log
        return provider.evaluate(inp), ""
    except Unresolvable as exc:
        return providers.Outcome(R.FAILED, str(exc)), ""
    except Exception as exc:  # a crash, not an answer: the condition is Errored
        logger.exception("rule %s crashed", rule.rule_execution_id)
        return (providers.Outcome(R.FAILED, f"The rule could not be evaluated: "
                                  f"{type(exc).__name__}: {exc}"[:2000]),
                traceback.format_exc())
    finally:
        if log is not None:
            log.close()
        if base.exists():
            shutil.rmtree(base, ignore_errors=True)


def _record(pk: int, rule: RuleExecution, outcome: providers.Outcome, error: str) -> bool:
    """Write a rule's answer: ended, or still waiting with its next look (never past its
    timeout). False when the rule ended meanwhile (its condition was stopped or
    overridden): the answer is dropped."""
    ce = _load(pk)
    now = timezone.now()
    with engine.condition_transaction(ce.stage_execution.pipeline_id) as fx:
        if outcome.status == R.IN_PROGRESS:
            deadline = rule.deadline_at
            if deadline is not None and deadline <= now:
                minutes = round((deadline - rule.started_at).total_seconds() / 60)
                return records.rule_set(fx, ce, rule, R.FAILED,
                                        summary=f"Rule timed out after {minutes} min: "
                                        f"{outcome.summary}")
            recheck = outcome.recheck_at or now + timedelta(minutes=1)
            if deadline is not None:
                recheck = min(recheck, deadline)
            return records.rule_set(fx, ce, rule, R.IN_PROGRESS, summary=outcome.summary,
                                    recheck_at=recheck, lease_expires_at=None)
        status = R.SUCCEEDED if outcome.status == R.SUCCEEDED else R.FAILED
        return records.rule_set(fx, ce, rule, status, summary=outcome.summary,
                                error=error[:20000])


def _decide(pk: int, status: str, summary: str) -> None:
    """The condition ended ``status``: record it and let the engine move the stage on."""
    ce = _load(pk)
    with engine.condition_transaction(ce.stage_execution.pipeline_id) as fx:
        if not records.condition_set(fx, ce, status, summary=summary):
            return
        engaged = outcome_engaged(ce.kind, status)
        retry_mode = ((_block(ce).get("retryConfiguration") or {}).get("retryMode") or ""
                      if ce.kind == "onFailure" else "")
        engine.condition_outcome(
            fx, stage_execution=ce.stage_execution, kind=ce.kind,
            # An Errored condition never skips: a crash is not a decision to skip.
            result="FAIL" if status == C.ERRORED and ce.result == "SKIP" else ce.result,
            engaged=engaged, summary=_stage_summary(ce, status, summary, engaged),
            retry_mode=retry_mode)


def _stage_summary(ce: ConditionExecution, status: str, summary: str, engaged: bool) -> str:
    """What the stage (and, when it fails, the execution) says about the condition."""
    kind = ce.kind
    if not engaged:
        return f"{kind} condition {status.lower()}: {summary}"
    return f"{kind} condition {status.lower()} (result {ce.result}): {summary}"


def sweep(*, enqueue, now: datetime | None = None) -> int:
    """Hand out again (``enqueue``) the conditions whose waiting rule is due (its recheck
    time or its timeout has come), whose worker was lost, or whose evaluation went
    missing. Called by the sweeper every minute; returns how many were handed out."""
    now = now or timezone.now()
    free = Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    due = set(RuleExecution.objects.filter(free, status=R.IN_PROGRESS).filter(
        Q(recheck_at__lte=now) | Q(deadline_at__lte=now) | Q(lease_expires_at__lt=now))
        .values_list("condition_execution_id", flat=True))
    running = RuleExecution.objects.filter(condition_execution=OuterRef("pk"),
                                           status=R.IN_PROGRESS)
    due |= set(ConditionExecution.objects.filter(status=C.IN_PROGRESS,
                                                 updated_at__lt=now - STALE)
               .exclude(Exists(running)).values_list("pk", flat=True))
    for pk in sorted(due):
        enqueue(pk)
    return len(due)
