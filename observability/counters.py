"""Incrementing the database counters of ``observability.models.Counter``."""

from __future__ import annotations

import json

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from observability.models import Counter

# Counter names (written by the services that act, read by observability.metrics).
SWEEPS = "sweeper_runs"                    # {}: one per completed sweep
SWEPT_ACTIONS = "sweeper_actions"          # {outcome: lost|timed_out|redispatched}
WEBHOOK_DELIVERIES = "webhook_deliveries"  # {pipeline, result}
PRUNED_EXECUTIONS = "executions_pruned"    # {pipeline, status}: deleted by retention


def counter_add(name: str, labels: dict[str, str] | None = None, amount: int = 1) -> None:
    """Add ``amount`` to the counter ``name`` with these labels (created at 0 if new).

    One UPDATE in the common case; the first increment of a label set inserts its
    row, and a concurrent first insert that loses the unique race updates instead.
    Label values must come from a bounded set (pipeline names, outcomes), never ids.
    """
    key = json.dumps(labels or {}, sort_keys=True)
    rows = Counter.objects.filter(name=name, labels=key)
    if rows.update(value=F("value") + amount, updated_at=timezone.now()):
        return
    try:
        with transaction.atomic():
            Counter.objects.create(name=name, labels=key, value=amount)
    except IntegrityError:
        rows.update(value=F("value") + amount, updated_at=timezone.now())


def counter_rows(name: str) -> list[tuple[dict[str, str], int, object]]:
    """(labels, value, updated_at) of every label set of counter ``name``."""
    return [(json.loads(labels), value, updated)
            for labels, value, updated in Counter.objects.filter(name=name)
            .values_list("labels", "value", "updated_at")]
