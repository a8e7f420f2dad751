"""``/metrics``: the Prometheus exposition, parsed with prometheus-client's own parser
after real executions (engine steps and worker code; only the django-q2 queue held)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from executions import engine, retention
from executions.models import PipelineExecution
from tests.approvals.conftest import release_pipeline
from tests.executions.conftest import sim, simple_pipeline
from triggers.hooks import services as hook_services


@pytest.fixture(autouse=True)
def _no_scrape_cache(settings):
    settings.CONVEYOR_METRICS_CACHE_SECONDS = 0
    settings.CONVEYOR_METRICS_TOKEN = "s3cret-scraper"


def scrape(client, token: str = "s3cret-scraper") -> dict[tuple, float]:
    """{(sample name, ((label, value), ...)): value} of one scrape."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_ended_executions_are_counted_by_pipeline_and_status(client, driver):
    good = simple_pipeline("good")
    bad = simple_pipeline("bad", stages=[("Build", [sim("Compile", Outcome="Failed")])])
    for pipeline in (good, good, bad):
        driver.start(pipeline)
        driver.run()
    running = driver.start(good)

    samples = scrape(client)
    assert value(samples, "conveyor_executions_total", pipeline="good", status="Succeeded") == 2
    assert value(samples, "conveyor_executions_total", pipeline="bad", status="Failed") == 1
    # The one still running is a gauge, not a counter that would later go down.
    assert value(samples, "conveyor_executions_total", pipeline="good",
                 status="InProgress") is None
    assert value(samples, "conveyor_executions_active", pipeline="good",
                 status="InProgress") == 1
    # Its Source action waits for a worker: the queue.
    assert value(samples, "conveyor_queue_depth") == 1
    assert value(samples, "conveyor_queue_oldest_age_seconds") >= 0
    assert running.status == "InProgress"


def test_action_and_stage_durations_are_histograms_by_pipeline_stage_and_provider(
        client, driver):
    pipeline = simple_pipeline("timed", stages=[("Build", [sim("Compile",
                                                               DurationSeconds="0.3")])])
    driver.start(pipeline)
    driver.run()

    samples = scrape(client)
    labels = {"pipeline": "timed", "stage": "Build", "provider": "Simulate"}
    name = "conveyor_action_duration_seconds"
    assert value(samples, name + "_count", **labels) == 1
    assert value(samples, name + "_bucket", le="0.1", **labels) == 0
    assert value(samples, name + "_bucket", le="0.5", **labels) == 1
    assert value(samples, name + "_bucket", le="+Inf", **labels) == 1
    assert 0.3 <= value(samples, name + "_sum", **labels) < 0.5
    stage = {"pipeline": "timed", "stage": "Build"}
    assert value(samples, "conveyor_stage_duration_seconds_count", **stage) == 1
    assert value(samples, "conveyor_stage_duration_seconds_bucket", le="1.0", **stage) == 1
    # No label carries an execution id: only names from the definition.
    assert {k for (n, lbls) in samples for k, _ in lbls} <= {
        "pipeline", "stage", "provider", "status", "reason", "le", "host", "outcome", "result"}


def test_pending_approvals_are_counted_with_their_age(client, release):
    shop = release_pipeline("shop")
    release.to_approval(shop)

    samples = scrape(client)
    assert value(samples, "conveyor_approvals_pending", pipeline="shop") == 1
    assert value(samples, "conveyor_approvals_oldest_pending_age_seconds", pipeline="shop") >= 0


def test_sweeper_runs_and_webhook_deliveries_are_counted(client, driver):
    simple_pipeline("hooked")
    assert value(scrape(client), "conveyor_sweeper_last_run_timestamp_seconds") == 0
    engine.sweep()
    engine.sweep()
    for name in ("hooked", "no-such-pipeline"):
        with pytest.raises(hook_services.HookError):
            hook_services.push_receive(pipeline_name=name, body=b"{}", headers={})

    samples = scrape(client)
    assert value(samples, "conveyor_sweeper_runs_total") == 2
    assert value(samples, "conveyor_sweeper_last_run_timestamp_seconds") > 0
    # "hooked" has no webhook secret: refused as unauthorized; a made-up pipeline's
    # name is not kept as a label.
    assert value(samples, "conveyor_webhook_deliveries_total", pipeline="hooked",
                 result="unauthorized") == 1
    assert value(samples, "conveyor_webhook_deliveries_total", pipeline="",
                 result="not_found") == 1


@pytest.mark.django_db
def test_metrics_need_the_bearer_token_or_a_staff_session(client, settings):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics",
                      HTTP_AUTHORIZATION="Bearer s3cret-scraper").status_code == 200
    someone = User.objects.create_user("someone", password="pw")
    client.force_login(someone)
    assert client.get("/metrics").status_code == 401
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/metrics").status_code == 200

    settings.CONVEYOR_METRICS_TOKEN = ""
    client.logout()
    # No token configured: no bearer token is accepted, however it is spelled.
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper").status_code == 401


def test_executions_deleted_by_retention_stay_counted(client, driver):
    pipeline = simple_pipeline("kept")
    for _ in range(3):
        driver.start(pipeline)
        driver.run()
    report = retention.executions_prune(days=1, now=timezone.now() + timedelta(days=3))
    assert report.executions == 2           # the newest one is kept
    assert PipelineExecution.objects.count() == 1
    samples = scrape(client)
    assert value(samples, "conveyor_executions_total", pipeline="kept", status="Succeeded") == 3
