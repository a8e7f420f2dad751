"""Pipeline schedules, ticking under a fake clock (time-machine)."""

import threading
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection

from executions.models import PipelineExecution
from pipelines.models import PipelineSchedule, ScheduleTick
from pipelines.services import DefinitionInvalid, schedule_save
from tests.executions.conftest import is_postgresql, simple_pipeline
from triggers import schedules


def nightly(pipeline, cron="0 2 * * *", zone="Europe/Paris", name="nightly"):
    return schedule_save(schedule=PipelineSchedule(pipeline=pipeline, name=name, cron=cron,
                                                   timezone=zone))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def pipeline(db, driver):
    with time_machine.travel(at("2026-12-01T12:00:00+00:00"), tick=False):
        p = simple_pipeline("nightly-build")
        nightly(p)
    return p


def test_a_tick_in_the_schedules_time_zone_starts_one_execution_of_the_latest_commit(
        pipeline, driver):
    # 02:00 in Paris is 01:00 UTC in December.
    with time_machine.travel(at("2026-12-02T00:59:30+00:00"), tick=False):
        assert driver.call(schedules.schedules_run) == []
    with time_machine.travel(at("2026-12-02T01:00:20+00:00"), tick=False):
        (tick,) = driver.call(schedules.schedules_run)
    execution = PipelineExecution.objects.get()
    assert execution.trigger_type == "CloudWatchEvent"
    assert "Schedule nightly (0 2 * * * Europe/Paris)" in execution.trigger_detail
    assert execution.source_revision_overrides == []  # the source's head, not a pinned one
    assert tick.execution_id == execution.execution_id
    assert tick.tick == at("2026-12-02T01:00:00+00:00")
    # The scheduler runs again within the same tick (next minute, a retried task): nothing.
    with time_machine.travel(at("2026-12-02T01:01:10+00:00"), tick=False):
        assert driver.call(schedules.schedules_run) == []
    assert PipelineExecution.objects.count() == 1
    with time_machine.travel(at("2026-12-03T01:00:05+00:00"), tick=False):
        driver.call(schedules.schedules_run)
    assert PipelineExecution.objects.count() == 2


def test_a_tick_missed_by_more_than_the_grace_is_not_started_late(pipeline, driver):
    with time_machine.travel(at("2026-12-02T03:30:00+00:00"), tick=False):
        assert driver.call(schedules.schedules_run) == []
    assert not PipelineExecution.objects.exists()


def test_a_disabled_schedule_starts_nothing(pipeline, driver):
    PipelineSchedule.objects.update(enabled=False)
    with time_machine.travel(at("2026-12-02T01:00:20+00:00"), tick=False):
        assert driver.call(schedules.schedules_run) == []


def test_the_pipeline_page_shows_the_next_run_in_the_schedules_zone(pipeline, client, owner):
    client.force_login(owner)
    with time_machine.travel(at("2026-12-02T12:00:00+00:00"), tick=False):
        page = client.get("/pipelines/nightly-build/").content.decode()
    assert "Schedule nightly" in page
    assert "2026-12-03 02:00 CET" in page


def test_cron_and_time_zone_are_checked_naming_the_field(db):
    pipeline = simple_pipeline("x")
    with pytest.raises(DefinitionInvalid) as exc:
        nightly(pipeline, cron="0 2 * *", zone="Mars/Olympus")
    assert {p.path for p in exc.value.problems} == {"cron", "timezone"}
    assert not PipelineSchedule.objects.exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_clusters_ticking_at_once_start_one_execution(monkeypatch):
    """Real threads, each with its own database connection, race for one tick."""
    from executions import tasks

    monkeypatch.setattr(tasks, "enqueue", lambda pk: None)
    with time_machine.travel(at("2026-12-01T12:00:00+00:00"), tick=False):
        pipeline = simple_pipeline("raced")
        nightly(pipeline)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def cluster():
        try:
            with time_machine.travel(at("2026-12-02T01:00:20+00:00"), tick=False):
                barrier.wait()
                results.append(len(schedules.schedules_run()))
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=cluster) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not is_postgresql():
        assert not errors or all("locked" in str(e) for e in errors), errors
    else:
        assert not errors, errors
    assert sorted(results)[-1] == 1 and sum(results) == 1
    assert ScheduleTick.objects.count() == 1
    assert PipelineExecution.objects.filter(pipeline=pipeline).count() == 1
