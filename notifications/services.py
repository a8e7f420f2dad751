"""Notification rules, and turning the engine's events into deliveries.

The engine never waits for a notification:

1. ``on_events_appended`` (connected to ``executions.signals.events_appended``,
   which the engine sends after its transaction commits) only enqueues
   ``tasks.events_scan`` — and not even that while no rule is enabled.
2. ``events_scan`` (a task) matches the pipeline's new events against the
   rules and writes one ``NotificationDelivery`` per (rule, event) — unique in
   the database, so overlapping scans send nothing twice — then sends them.
3. ``delivery_send`` claims its row, sends once, and records the answer; a
   failure is retried later with backoff (a one-off django-q2 schedule) until
   ``CONVEYOR_NOTIFY_ATTEMPTS`` attempts were made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from executions.models import ActionExecution, ExecutionEvent, PipelineExecution
from notifications import events as rules_events
from notifications import outbound
from notifications.choices import DeliveryStatus, NotificationEvent, TargetKind
from notifications.models import NotificationCursor, NotificationDelivery, NotificationRule
from pipelines.validation import Problem

logger = logging.getLogger("conveyor.notifications")

# A pipeline's first scan looks this far back (events before it were never
# promised to anyone: there was no cursor yet).
FIRST_SCAN_WINDOW = timedelta(minutes=5)


class RuleInvalid(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def rule_problems(*, events, target_kind: str, target_url: str, email_to: str) -> list[Problem]:
    """What is wrong with a rule (pure; every surface asks it before saving)."""
    problems = []
    if not isinstance(events, list) or not events:
        problems.append(Problem("events", "choose at least one event"))
    else:
        for i, key in enumerate(events):
            if key not in NotificationEvent.values:
                problems.append(Problem(f"events[{i}]", f"{key!r} is not an event; choose "
                                        f"from {', '.join(NotificationEvent.values)}"))
    if target_kind not in TargetKind.values:
        problems.append(Problem("targetKind", f"must be one of {', '.join(TargetKind.values)}"))
    elif target_kind == TargetKind.EMAIL:
        if not [a for a in email_to.split(",") if "@" in a]:
            problems.append(Problem("emailTo", "an email target needs at least one address"))
    elif not target_url.startswith(("http://", "https://")):
        problems.append(Problem("targetUrl", f"a {target_kind} target needs an http(s) URL"))
    return problems


def rule_save(*, rule: NotificationRule) -> NotificationRule:
    """Validate and save a rule (new or changed); ``RuleInvalid`` names each bad field."""
    problems = rule_problems(events=rule.events, target_kind=rule.target_kind,
                             target_url=rule.target_url or "", email_to=rule.email_to or "")
    if problems:
        raise RuleInvalid(problems)
    rule.save()
    _rules_cache.clear()
    return rule


# --- from the engine's events to deliveries ----------------------------------------

# The events enabled rules choose, per process, for a few seconds: the engine's
# commit path asks it for every batch of events and must not pay a query each time.
_rules_cache: dict[str, tuple[float, frozenset[str]]] = {}
_RULES_TTL = 5.0


def wanted_events() -> frozenset[str]:
    """The rule events any enabled rule chooses (cached ``_RULES_TTL`` seconds per process)."""
    now = time.monotonic()
    cached = _rules_cache.get("wanted")
    if cached is None or now - cached[0] > _RULES_TTL:
        keys = set()
        for events in NotificationRule.objects.filter(enabled=True).values_list("events",
                                                                                flat=True):
            keys.update(events)
        cached = (now, frozenset(keys))
        _rules_cache["wanted"] = cached
    return cached[1]


def on_events_appended(sender, *, pipeline_id: int, last_event_id: int = 0, **kwargs) -> None:
    """The engine's doorbell: queue a scan if the new events may interest a rule.

    Runs in the engine's caller after its commit, so it does at most one
    indexed read (the pipeline's newest events) and one enqueue, and nothing
    at all while no rule is enabled. Whether a rule of *this* pipeline wants
    the event is the scan's business.
    """
    wanted = wanted_events()
    if not wanted:
        return
    recent = (ExecutionEvent.objects.filter(pipeline_id=pipeline_id, id__lte=last_event_id)
              .order_by("-id").values_list("kind", "previous_status", "status")[:32])
    approvals = "approval.needed" in wanted
    if not any(set(rules_events.event_keys(kind=kind, previous=previous, status=status,
                                           execution_type="ROLLBACK",
                                           action_category="Approval" if approvals else ""))
               & wanted for kind, previous, status in recent):
        return
    from notifications import queue as tasks

    try:
        tasks.enqueue("events_scan", pipeline_id, last_event_id)
    except Exception:  # a broker hiccup loses a notification, never the engine's step
        logger.exception("could not queue a notification scan of pipeline %s", pipeline_id)


def events_scan(*, pipeline_id: int, up_to: int) -> list[NotificationDelivery]:
    """Match the pipeline's events after its cursor (up to ``up_to``) against the rules.

    Returns the deliveries created now (a concurrent scan of the same events
    creates none: the (rule, event) uniqueness decides) and queues them.
    """
    cursor, _ = NotificationCursor.objects.get_or_create(pipeline_id=pipeline_id)
    start = cursor.last_event_id
    rules = list(NotificationRule.objects.filter(
        Q(pipeline_id=pipeline_id) | Q(pipeline__isnull=True), enabled=True))
    events = ExecutionEvent.objects.filter(pipeline_id=pipeline_id, id__gt=start,
                                           id__lte=up_to, execution__isnull=False)
    if start == 0:
        events = events.filter(created_at__gte=timezone.now() - FIRST_SCAN_WINDOW)
    events = list(events.order_by("id"))
    if events:
        # Compare-and-set: a scan that lost the race still creates only new rows.
        NotificationCursor.objects.filter(pk=cursor.pk, last_event_id=start).update(
            last_event_id=max(start, events[-1].pk))
    if not rules or not events:
        return []
    executions = {e.pk: e for e in PipelineExecution.objects.filter(
        pk__in={ev.execution_id for ev in events})}
    categories = dict(ActionExecution.objects.filter(
        pk__in={ev.action_execution_id for ev in events if ev.action_execution_id}
    ).values_list("pk", "category"))
    wanted = []
    for event in events:
        execution = executions.get(event.execution_id)
        if execution is None:
            continue
        keys = rules_events.event_keys(
            kind=event.kind, previous=event.previous_status, status=event.status,
            execution_type=execution.execution_type,
            action_category=categories.get(event.action_execution_id, ""))
        for rule in rules:
            key = next((k for k in keys if k in rule.events), None)
            if key is not None:
                wanted.append(NotificationDelivery(rule=rule, event=event, event_key=key))
    if not wanted:
        return []
    with transaction.atomic():
        NotificationDelivery.objects.bulk_create(wanted, ignore_conflicts=True)
        created = list(NotificationDelivery.objects.filter(
            event_id__in={d.event_id for d in wanted}, rule_id__in={r.pk for r in rules},
            attempts=0, status=DeliveryStatus.PENDING, next_attempt_at__isnull=True))
    # Sent here, one after the other, rather than as a task each: a task per
    # delivery doubled the queue traffic that pipelines share (docs/integrations.md).
    for delivery in created:
        delivery_send(delivery_id=delivery.pk)
    return created


# --- sending ---------------------------------------------------------------------


def max_attempts() -> int:
    return int(getattr(settings, "CONVEYOR_NOTIFY_ATTEMPTS", 5))


def backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: 30 s, 2 min, 8 min, 32 min… (×4)."""
    base = float(getattr(settings, "CONVEYOR_NOTIFY_BACKOFF_SECONDS", 30))
    return timedelta(seconds=base * 4 ** max(0, attempts - 1))


def timeout() -> float:
    return float(getattr(settings, "CONVEYOR_NOTIFY_TIMEOUT", 5))


def signature(secret: str, body: bytes) -> str:
    """``X-Conveyor-Signature-256``: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _absolute(path: str) -> str:
    return settings.CONVEYOR_BASE_URL.rstrip("/") + path


def delivery_body(delivery: NotificationDelivery) -> dict:
    """The EventBridge-shaped body of a delivery's event."""
    event = delivery.event
    execution = PipelineExecution.objects.select_related("pipeline", "pipeline_version").get(
        pk=event.execution_id)
    action = (ActionExecution.objects.filter(pk=event.action_execution_id).first()
              if event.action_execution_id else None)
    account = getattr(settings, "CONVEYOR_AWS_ACCOUNT_ID", "000000000000")
    region = getattr(settings, "CONVEYOR_AWS_REGION", "us-east-1")
    link = _absolute(reverse("dashboard:execution", args=[execution.pipeline.name,
                                                          execution.number]))
    return rules_events.eventbridge_event(
        event=event, execution=execution, action=action, region=region, account=account,
        pipeline_arn=f"arn:aws:codepipeline:{region}:{account}:{execution.pipeline.name}",
        link=link, key=delivery.event_key)


def _send(delivery: NotificationDelivery) -> outbound.Answer:
    rule = delivery.rule
    body = delivery_body(delivery)
    label = NotificationEvent(delivery.event_key).label
    if rule.target_kind == TargetKind.EMAIL:
        text = rules_events.readable(body, label)
        summary = body["conveyor"]["summary"]
        message = "\n\n".join(x for x in (text, summary, body["conveyor"]["link"]) if x)
        try:
            sent = send_mail(text, message, None,
                             [a.strip() for a in rule.email_to.split(",") if "@" in a])
        except Exception as exc:  # the mail server's refusal is this delivery's answer
            return outbound.Answer(None, f"the mail server refused: {exc}")
        return outbound.Answer(250, f"{sent} email(s) sent")
    if rule.target_kind == TargetKind.SLACK:
        data = json.dumps(rules_events.slack_message(body, label)).encode()
        headers = {"Content-Type": "application/json"}
    else:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json",
                   "X-Conveyor-Event": delivery.event_key,
                   "X-Conveyor-Delivery": str(delivery.pk)}
        if rule.secret:
            headers["X-Conveyor-Signature-256"] = signature(rule.secret, data)
    headers["User-Agent"] = "Conveyor notifications"
    return outbound.http_request(rule.target_url, data=data, headers=headers,
                                 timeout=timeout())


def concurrency() -> int:
    return int(getattr(settings, "CONVEYOR_NOTIFY_CONCURRENCY", 1))


def _slots_taken(now) -> int:
    return NotificationDelivery.objects.filter(
        status=DeliveryStatus.SENDING,
        claimed_at__gte=now - timedelta(seconds=timeout() + 30)).count()


def delivery_send(*, delivery_id: int) -> str:
    """Attempt a delivery once (if it is due and nobody else has it); what happened.

    0. At most ``CONVEYOR_NOTIFY_CONCURRENCY`` (default 1) deliveries are sent
       at once: the workers are the pipelines' too, and a target that hangs
       until the timeout must not hold more than that many of them. Over the
       cap, the delivery is postponed a few seconds (not counted as an attempt).
       The count is a soft cap (two tasks may read it at once); it bounds the
       harm, it is not a lock.
    1. Claim: Pending and due → Sending, attempts + 1 (compare-and-set; a
       second task for the same delivery finds nothing to do).
    2. Send. A 2xx answer (or the mail accepted) is Delivered.
    3. Otherwise, with attempts left, Pending again with ``next_attempt_at``
       after the backoff and a one-off schedule to try then; else Failed.
    """
    from notifications import queue as tasks

    now = timezone.now()
    due = NotificationDelivery.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        pk=delivery_id, status=DeliveryStatus.PENDING)
    if _slots_taken(now) >= concurrency():
        later = now + timedelta(seconds=float(getattr(
            settings, "CONVEYOR_NOTIFY_POSTPONE_SECONDS", 5)))
        if due.update(next_attempt_at=later):
            tasks.retry_at(delivery_id, later)
            return f"postponed to {later}: {concurrency()} delivery(ies) already sending"
        return "nothing to do"
    claimed = due.update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1,
                         claimed_at=now)
    if not claimed:
        return "nothing to do"
    delivery = NotificationDelivery.objects.select_related("rule", "event").get(pk=delivery_id)
    try:
        answer = _send(delivery)
    except Exception as exc:  # a bug must not leave the row Sending forever
        logger.exception("notification delivery %s failed", delivery_id)
        answer = outbound.Answer(None, f"error: {exc}")
    if answer.ok:
        NotificationDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(),
            last_answer=answer.describe(), next_attempt_at=None)
        return f"delivered: {answer.describe()}"
    if delivery.attempts < max_attempts():
        due = timezone.now() + backoff(delivery.attempts)
        NotificationDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.PENDING, next_attempt_at=due, last_answer=answer.describe())
        tasks.retry_at(delivery_id, due)
        return f"attempt {delivery.attempts} failed ({answer.describe()}); next at {due}"
    NotificationDelivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.FAILED, last_answer=answer.describe(), next_attempt_at=None)
    logger.warning("notification delivery %s gave up after %s attempts: %s", delivery_id,
                   delivery.attempts, answer.describe())
    return f"failed for good: {answer.describe()}"
