"""The duration histograms of ``/metrics`` as a rollup of old endings plus the recent
ones (observability.rollups): the same figures as aggregating every row, each ending
counted once, pruned executions still counted, and a scrape's queries not growing with
the history."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions import retention
from executions.models import ActionExecution
from observability.metrics import ACTION_BUCKETS
from observability.models import HistogramRollup
from observability.rollups import LAG, HistogramSpec, histogram_series
from tests.executions.conftest import sim, simple_pipeline
from tests.observability.test_metrics import scrape, value

ACTIONS = HistogramSpec("action_duration", ActionExecution,
                        ("pipeline_id", "stage_name", "provider"), ACTION_BUCKETS)
NAME = "conveyor_action_duration_seconds"
LABELS = {"pipeline": "timed", "stage": "Build", "provider": "Simulate"}


@pytest.fixture(autouse=True)
def _no_scrape_cache(settings):
    settings.CONVEYOR_METRICS_CACHE_SECONDS = 0
    settings.CONVEYOR_METRICS_TOKEN = "s3cret-scraper"


def _run(driver, pipeline, times: int = 1) -> None:
    for _ in range(times):
        driver.start(pipeline)
        driver.run()


def _later(hours: float):
    """The clock ``hours`` ahead (and ticking): endings so far are that old by then."""
    return time_machine.travel(timezone.now() + timedelta(hours=hours), tick=True)


def _key(samples_or_series, pipeline) -> list:
    return samples_or_series[(pipeline.pk, "Build", "Simulate")]


def _timed():
    return simple_pipeline("timed", stages=[("Build", [sim("Compile", DurationSeconds="0.2")])])


def test_old_endings_come_from_the_rollup_and_new_ones_from_the_rows_each_counted_once(
        client, driver):
    pipeline = _timed()
    _run(driver, pipeline, 2)
    with _later(hours=3):
        _run(driver, pipeline)
        samples = scrape(client)
        rollup = HistogramRollup.objects.get(name="action_duration")
        assert rollup.until > timezone.now() - 2 * LAG
        assert rollup.series[f'[{pipeline.pk}, "Build", "Simulate"]'][-2] == 2  # the old ones
        assert value(samples, NAME + "_count", **LABELS) == 3                   # + the new one
        assert value(samples, NAME + "_bucket", le="0.1", **LABELS) == 0
        assert value(samples, NAME + "_bucket", le="0.5", **LABELS) == 3
        assert 0.6 <= value(samples, NAME + "_sum", **LABELS) < 1.5
        assert value(samples, "conveyor_stage_duration_seconds_count", pipeline="timed",
                     stage="Build") == 3

        again = scrape(client)
        assert value(again, NAME + "_count", **LABELS) == 3
        assert value(again, NAME + "_sum", **LABELS) == value(samples, NAME + "_sum", **LABELS)


def test_the_rollup_moves_forward_without_counting_an_ending_twice(driver):
    pipeline = _timed()
    _run(driver, pipeline)
    with _later(hours=3):
        first = histogram_series(ACTIONS, now=timezone.now())
        _run(driver, pipeline)
        with _later(hours=1):
            later = histogram_series(ACTIONS, now=timezone.now())
            again = histogram_series(ACTIONS, now=timezone.now())
    assert (_key(first, pipeline)[-2], _key(later, pipeline)[-2]) == (1, 2)
    assert _key(again, pipeline) == _key(later, pipeline)
    assert HistogramRollup.objects.get(name="action_duration").series[
        f'[{pipeline.pk}, "Build", "Simulate"]'][-2] == 2


def test_executions_pruned_by_retention_stay_in_the_duration_histograms(client, driver):
    pipeline = _timed()
    _run(driver, pipeline, 3)
    with _later(hours=48):
        assert value(scrape(client), NAME + "_count", **LABELS) == 3     # rolled up
        report = retention.executions_prune(days=1, now=timezone.now())
        assert report.executions == 2
        assert value(scrape(client), NAME + "_count", **LABELS) == 3


def test_other_bucket_bounds_rebuild_the_rollup_from_the_rows(client, driver):
    pipeline = _timed()
    _run(driver, pipeline, 2)
    with _later(hours=3):
        scrape(client)
        HistogramRollup.objects.filter(name="action_duration").update(
            buckets=[1.0, 2.0], series={f'[{pipeline.pk}, "Build", "Simulate"]': [9, 9, 9, 9.0]})
        samples = scrape(client)
    assert value(samples, NAME + "_count", **LABELS) == 2
    assert value(samples, NAME + "_bucket", le="0.5", **LABELS) == 2
    assert HistogramRollup.objects.get(name="action_duration").buckets == [
        float(b) for b in ACTION_BUCKETS]


def test_a_deleted_pipeline_leaves_the_histograms(client, driver):
    pipeline = _timed()
    _run(driver, pipeline)
    with _later(hours=3):
        assert value(scrape(client), NAME + "_count", **LABELS) == 1
        pipeline.delete()
        assert value(scrape(client), NAME + "_count", **LABELS) is None


def test_a_scrape_makes_as_many_queries_for_a_long_history_as_for_a_short_one(
        client, driver, django_assert_max_num_queries):
    pipeline = _timed()
    other = simple_pipeline("other", stages=[("Build", [sim("Compile", Outcome="Failed")])])
    _run(driver, pipeline)
    scrape(client)                      # the first scrape makes the rollups
    with CaptureQueriesContext(connection) as short:
        scrape(client)
    _run(driver, pipeline, 12)
    _run(driver, other, 4)
    with _later(hours=1):
        _run(driver, pipeline, 2)
        scrape(client)                  # the rollups move forward (a few more queries)
        # Pipelines' names; executions by status, the pruned ones; inbound; each
        # histogram's rollup and recent rows (2 x 2); queue, running, heartbeats;
        # approvals; sweeps, swept actions, webhook deliveries.
        with django_assert_max_num_queries(15) as long:
            samples = scrape(client)
    assert len(long) == len(short)
    assert value(samples, NAME + "_count", **LABELS) == 15
    assert value(samples, "conveyor_executions_total", pipeline="other", status="Failed") == 4
