"""The duration histograms of ``/metrics``: a rollup of what ended long enough ago,
plus the few rows that ended since.

Why: aggregating every ended action execution at each scrape read a million rows at
100,000 executions (docs/benchmarks.md, "DORA figures and /metrics"). An action or
stage execution never changes once ended (a retry is a new row), so the bucket counts
of those that ended before a time T are fixed once every transaction that could
still write such an ending has committed. ``HistogramRollup`` keeps those counts; a
scrape reads that row and aggregates only the rows that ended at or after T (the
``ended_at`` indexes of ``executions.models``).

T trails the clock by ``LAG``: the engine sets ``ended_at`` to its own clock inside a
transaction that commits within seconds; one still open ``LAG`` later (or a worker
whose clock is ``LAG`` behind) would have its ending left out of the rollup. Executions
pruned by retention stay counted, as a Prometheus counter never goes down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum

from observability.models import HistogramRollup

LAG = timedelta(minutes=10)


@dataclass(frozen=True)
class HistogramSpec:
    """One histogram: its rollup's name, the model whose ``started_at``/``ended_at``
    it measures, the fields it is labelled by, and its bucket bounds (seconds)."""

    name: str
    model: type
    labels: tuple[str, ...]
    buckets: tuple[float, ...]


# {label values: [cumulative count of each bucket..., count (+Inf), sum in seconds]}
Series = dict[tuple, list]


def _seconds(value) -> float:
    if value is None:
        return 0.0
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value) / 1e6  # a backend answering microseconds


def _aggregate(spec: HistogramSpec, ended: Q) -> Series:
    """One query: the bucket counts, count and sum per label set of the rows that
    started and ended, among those ``ended`` selects."""
    duration = ExpressionWrapper(F("ended_at") - F("started_at"), output_field=DurationField())
    buckets = {f"b{i}": Count("pk", filter=Q(duration__lte=timedelta(seconds=b)))
               for i, b in enumerate(spec.buckets)}
    rows = (spec.model.objects.filter(ended, ended_at__isnull=False, started_at__isnull=False)
            .annotate(duration=duration).values(*spec.labels)
            .annotate(n=Count("pk"), total=Sum("duration"), **buckets).order_by())
    return {tuple(row[label] for label in spec.labels):
            [*(row[f"b{i}"] for i in range(len(spec.buckets))), row["n"],
             _seconds(row["total"])]
            for row in rows}


def _add(into: Series, more: Series) -> Series:
    for key, values in more.items():
        if key in into:
            into[key] = [a + b for a, b in zip(into[key], values, strict=True)]
        else:
            into[key] = list(values)
    return into


def _load(rollup: HistogramRollup) -> Series:
    return {tuple(json.loads(key)): list(values) for key, values in rollup.series.items()}


def _stale(rollup: HistogramRollup | None, spec: HistogramSpec, now: datetime) -> bool:
    return (rollup is None or rollup.until is None
            or rollup.buckets != [float(b) for b in spec.buckets]
            or rollup.until < now - 2 * LAG)


def rollup_advance(spec: HistogramSpec, *, now: datetime) -> HistogramRollup:
    """Move the rollup of ``spec`` to ``now - LAG``, adding the rows that ended since its
    last ``until`` (all of them the first time, or when the buckets changed).

    Under the rollup row's lock: of two scrapes that find it stale, the second waits,
    then finds it fresh and adds nothing (no ending is counted twice).
    """
    until = now - LAG
    with transaction.atomic():
        rollup, _ = HistogramRollup.objects.select_for_update().get_or_create(name=spec.name)
        bounds = [float(b) for b in spec.buckets]
        if rollup.buckets != bounds:
            rollup.buckets, rollup.series, rollup.until = bounds, {}, None
        elif not _stale(rollup, spec, now):
            return rollup
        ended = Q(ended_at__lt=until)
        if rollup.until is not None:
            ended &= Q(ended_at__gte=rollup.until)
        series = _add(_load(rollup), _aggregate(spec, ended))
        rollup.series = {json.dumps(list(key)): values for key, values in series.items()}
        rollup.until = until
        rollup.save()
    return rollup


def histogram_series(spec: HistogramSpec, *, now: datetime) -> Series:
    """The histogram of every duration that ended: the rollup (advanced first when it
    trails by more than twice ``LAG``) plus the rows that ended since its ``until``.

    Two queries when the rollup is fresh: the rollup row, and one aggregate of the
    rows that ended in the last ``LAG`` to ``2 * LAG``.
    """
    rollup = HistogramRollup.objects.filter(name=spec.name).first()
    if _stale(rollup, spec, now):
        rollup = rollup_advance(spec, now=now)
    return _add(_load(rollup), _aggregate(spec, Q(ended_at__gte=rollup.until)))
