"""DORA figures on a seeded history with known answers (executions written as rows
with fixed times: the engine's part is covered elsewhere; what is under test here is
which executions count and how)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions import dora
from executions.models import PipelineExecution, SourceRevision, StageExecution
from pipelines.models import Pipeline
from tests.executions.conftest import simple_pipeline

STAGES = ["Source", "Build", "Deploy"]


class History:
    """Writes ended executions of a pipeline: status, end time, last stage entered."""

    def __init__(self, pipeline):
        self.pipeline = pipeline
        self.number = 0

    def add(self, status: str, ended_at, *, reached: int = 2, committed_at=None,
            execution_type: str = "STANDARD") -> PipelineExecution:
        self.number += 1
        ex = PipelineExecution.objects.create(
            pipeline=self.pipeline, number=self.number,
            pipeline_version=self.pipeline.current_version, execution_mode="SUPERSEDED",
            execution_type=execution_type, trigger_type="StartPipelineExecution",
            status=status, started_at=ended_at - timedelta(minutes=10), ended_at=ended_at)
        for index in range(reached + 1):
            last = index == reached
            StageExecution.objects.create(
                execution=ex, pipeline=self.pipeline, stage_name=STAGES[index],
                stage_index=index, status="Succeeded" if not last or status == "Succeeded"
                else ("Failed" if status == "Failed" else "Stopped"),
                started_at=ended_at - timedelta(minutes=1), ended_at=ended_at)
        SourceRevision.objects.create(execution=ex, action_name="Checkout",
                                      revision_id=f"{self.number:040d}",
                                      committed_at=committed_at)
        return ex


@pytest.fixture
def now():
    return timezone.now().replace(microsecond=0)


def test_the_four_figures_of_a_known_history(driver, now):
    shop = History(simple_pipeline("shop"))
    since, t = now - timedelta(weeks=12), now - timedelta(days=10)
    shop.add("Succeeded", now - timedelta(weeks=13), committed_at=now - timedelta(weeks=14))
    shop.add("Succeeded", t - timedelta(days=5), committed_at=t - timedelta(days=5, hours=2))
    shop.add("Failed", t - timedelta(days=4), reached=1)        # never reached production
    shop.add("Superseded", t - timedelta(days=3), reached=1)
    shop.add("Stopped", t - timedelta(days=2), reached=2)
    shop.add("Failed", t, reached=2)                             # the incident opens
    shop.add("Failed", t + timedelta(hours=1), reached=2)        # still the same incident
    shop.add("Succeeded", t + timedelta(hours=3), committed_at=t + timedelta(hours=2))
    shop.add("Succeeded", t + timedelta(days=1))                 # no commit time known

    figures = dora.dora([shop.pipeline.pk], since=since, until=now)
    assert (figures.deployments, figures.failures) == (3, 2)
    assert figures.per_day == pytest.approx(3 / 84)
    assert figures.lead_time == 5400                  # median of 2 h and 1 h
    assert figures.lead_time_unknown == 1
    assert figures.failure_rate == pytest.approx(40.0)
    assert figures.restore == 3 * 3600                # from the first failure, not the last
    assert (figures.restored, figures.open_incidents) == (1, 0)
    assert len(figures.weeks) == 12
    assert sum(w.deployments for w in figures.weeks) == 3
    assert [w.restore for w in figures.weeks if w.restores] == [3 * 3600]


def test_a_rollback_restores_service_without_counting_as_a_deployment_and_pipelines_of_a_group_keep_their_own_incidents(  # noqa: E501
        driver, now):
    api = History(simple_pipeline("api"))
    web = History(simple_pipeline("web"))
    t = now - timedelta(days=3)
    api.add("Failed", t)
    api.add("Succeeded", t + timedelta(minutes=30), reached=2, execution_type="ROLLBACK")
    web.add("Failed", t + timedelta(minutes=10))
    web.add("Succeeded", t + timedelta(hours=2))
    web.add("Failed", t + timedelta(hours=5))          # still failing now

    group = dora.dora([api.pipeline.pk, web.pipeline.pk], since=now - timedelta(weeks=12),
                      until=now)
    assert (group.deployments, group.failures) == (1, 3)
    assert group.failure_rate == pytest.approx(75.0)
    assert group.restore == pytest.approx(statistics_median([30 * 60, 110 * 60]))
    assert (group.restored, group.open_incidents) == (2, 1)
    only_api = dora.dora([api.pipeline.pk], since=now - timedelta(weeks=12), until=now)
    assert (only_api.deployments, only_api.restore) == (0, 30 * 60)


def statistics_median(values):
    values = sorted(values)
    return (values[0] + values[-1]) / 2 if len(values) == 2 else values[len(values) // 2]


def test_each_dora_figure_is_one_query_however_long_the_history(driver, now,
                                                                 django_assert_num_queries):
    shop = History(simple_pipeline("shop"))
    for i in range(30):
        shop.add("Succeeded" if i % 3 else "Failed", now - timedelta(days=i + 1),
                 committed_at=now - timedelta(days=i + 2))
    # Deployments and failures per week; lead-time medians; incidents.
    with django_assert_num_queries(3):
        dora.dora([shop.pipeline.pk], since=now - timedelta(weeks=12), until=now)
    with django_assert_num_queries(3):
        dora.dora(Pipeline.objects.filter(name="shop"), since=now - timedelta(weeks=12),
                  until=now)


def test_the_insights_page_shows_each_figure_with_its_definition(driver, client, viewer, now):
    shop = History(simple_pipeline("shop"))
    shop.add("Failed", now - timedelta(hours=5))
    shop.add("Succeeded", now - timedelta(hours=1), committed_at=now - timedelta(hours=3))
    client.force_login(viewer)
    page = client.get("/pipelines/shop/insights/").content.decode()
    for text in dora.DEFINITIONS.values():
        assert text in page
    assert "change failure rate (1 of 2)" in page
    assert "50%" in page
    assert "1 restored" in page
    assert "Deployments per week" in page


def test_a_superseded_execution_is_not_a_failure_in_the_success_rate(driver, client, viewer,
                                                                     now):
    shop = History(simple_pipeline("shop"))
    shop.add("Superseded", now - timedelta(hours=1), reached=1)
    client.force_login(viewer)
    page = client.get("/pipelines/shop/insights/").content.decode()
    assert "0%" not in page.split("success rate")[0][-200:]
    assert "(0 of 0; 1 stopped or superseded, not counted)" in page


def test_the_insights_of_every_pipeline_add_their_deployments_up(driver, client, viewer, now):
    History(simple_pipeline("one")).add("Succeeded", now - timedelta(days=1))
    History(simple_pipeline("two")).add("Succeeded", now - timedelta(days=2))
    client.force_login(viewer)
    page = client.get("/insights/").content.decode()
    assert "2 pipelines" in page
    assert "deployments per day (2 in 12 weeks)" in page


def test_the_insights_of_every_pipeline_answer_one_who_sees_no_pipeline(client, viewer, db):
    # The Insights link is on every page; with no pipeline to view, the lead-time query
    # of no pipeline (pipeline__in=[]) once raised EmptyResultSet: a 500.
    client.force_login(viewer)
    page = client.get("/insights/")
    assert page.status_code == 200
    assert "0 pipelines" in page.content.decode()


def test_a_group_of_pipelines_given_as_a_queryset_has_the_figures_of_its_ids(driver, now):
    api, web, other = (History(simple_pipeline(n)) for n in ("api", "web", "other"))
    t = now - timedelta(days=3)
    api.add("Failed", t)
    api.add("Succeeded", t + timedelta(hours=1), committed_at=t - timedelta(hours=1))
    web.add("Succeeded", t + timedelta(hours=2), committed_at=t - timedelta(hours=1))
    other.add("Failed", t + timedelta(hours=3))
    since = now - timedelta(weeks=12)

    group = dora.dora(Pipeline.objects.filter(name__in=["api", "web"]), since=since, until=now)
    by_ids = dora.dora([api.pipeline.pk, web.pipeline.pk], since=since, until=now)
    assert group == by_ids
    assert (group.deployments, group.failures, group.restored) == (2, 1, 1)
    assert group.lead_time == 2.5 * 3600              # median of 2 h and 3 h
    assert group.restore == 3600


def _history(count: int, now) -> None:
    """``count`` executions of "shop" over the last 10 weeks: deployments with commit
    times, failures in the last stage and before it, superseded and stopped ones."""
    shop = History(simple_pipeline("shop"))
    for i in range(count):
        at = now - timedelta(hours=12 * (count - i))
        kind = i % 6
        if kind == 0:
            shop.add("Failed", at, reached=2)
        elif kind == 1:
            shop.add("Failed", at, reached=1)
        elif kind == 2:
            shop.add("Superseded", at, reached=1)
        else:
            shop.add("Succeeded", at, committed_at=at - timedelta(hours=kind))


@pytest.mark.parametrize("url", ["/pipelines/shop/insights/", "/insights/",
                                 "/pipelines/shop/insights/?weeks=52", "/insights/?weeks=4"])
def test_the_insights_pages_make_as_few_queries_for_a_long_history_as_for_a_short_one(
        driver, client, viewer, now, url, django_assert_max_num_queries):
    client.force_login(viewer)
    _history(6, now)
    with CaptureQueriesContext(connection) as short:
        assert client.get(url).status_code == 200
    PipelineExecution.objects.all().delete()
    _history(140, now)
    # The session, the user, their roles on pipeline groups (teams.access, one query)
    # and their model permissions; on a pipeline's page the pipeline, its recent
    # executions and their stages and the success rate per day (on the page of every
    # pipeline, their count); the three DORA queries.
    with django_assert_max_num_queries(11) as long:
        assert client.get(url).status_code == 200
    assert len(long) == len(short)


def test_the_period_of_the_insights_page_is_chosen_and_a_wrong_one_is_named(driver, client,
                                                                          viewer, now):
    shop = History(simple_pipeline("shop"))
    shop.add("Succeeded", now - timedelta(weeks=20))
    shop.add("Succeeded", now - timedelta(days=1))
    client.force_login(viewer)

    page = client.get("/pipelines/shop/insights/?weeks=26").content.decode()
    assert "deployments per day (2 in 26 weeks)" in page
    assert '<a href="?weeks=26" aria-current="page">26 weeks</a>' in page
    page = client.get("/insights/?weeks=4").content.decode()
    assert "deployments per day (1 in 4 weeks)" in page
    page = client.get("/pipelines/shop/insights/?weeks=5").content.decode()
    assert "weeks: &#x27;5&#x27; is not one of 4, 12, 26, 52; showing the last 12 weeks." in page
    assert "deployments per day (1 in 12 weeks)" in page
