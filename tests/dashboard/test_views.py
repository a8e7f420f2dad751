"""The dashboard's pages: what each persona sees and may do, and what each page costs.

Pages are read through Django's test client; buttons are real POSTs that go
through ``executions.services`` to the engine (the queue is held by the
execution tests' ``driver``, which then runs the actions through the real worker).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.models import (
    ActionExecution,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from pipelines.services import pipeline_save
from tests.executions.conftest import sim, simple_pipeline

pytestmark = pytest.mark.django_db


def released(driver, pipeline, **kwargs) -> PipelineExecution:
    ex = driver.start(pipeline, **kwargs)
    driver.run()
    ex.refresh_from_db()
    return ex


def page_urls(pipeline, ex) -> dict[str, str]:
    name = pipeline.name
    return {
        "pipelines": "/",
        "pipeline": f"/pipelines/{name}/",
        "history": f"/pipelines/{name}/executions/",
        "history page 2": f"/pipelines/{name}/executions/?page=2",
        "execution": f"/pipelines/{name}/executions/{ex.number}/",
        "action": f"/pipelines/{name}/executions/{ex.number}/stages/Build/actions/Compile/",
        "insights": f"/pipelines/{name}/insights/",
        "pipeline parts": f"/pipelines/{name}/?parts=header,stage:Build",
    }


# --- reading -----------------------------------------------------------------------


def test_a_viewer_reads_every_page_without_any_button(client, viewer, driver):
    pipeline = simple_pipeline("web")
    ex = released(driver, pipeline)
    client.force_login(viewer)
    for label, url in page_urls(pipeline, ex).items():
        response = client.get(url)
        assert response.status_code == 200, label
    body = client.get(f"/pipelines/{pipeline.name}/").content.decode()
    assert "Release change" not in body and "Disable transition" not in body
    assert 'data-status="Succeeded"' in body


def test_an_operator_sees_the_buttons(client, operator, driver):
    pipeline = simple_pipeline("web")
    released(driver, pipeline)
    client.force_login(operator)
    body = client.get(f"/pipelines/{pipeline.name}/").content.decode()
    assert "Release change" in body and "Disable transition" in body


def test_an_outsider_is_refused_and_a_stranger_is_sent_to_sign_in(client, outsider, driver):
    pipeline = simple_pipeline("web")
    ex = released(driver, pipeline)
    for label, url in page_urls(pipeline, ex).items():
        assert client.get(url).status_code == 302, label
    client.force_login(outsider)
    for label, url in page_urls(pipeline, ex).items():
        assert client.get(url).status_code == 403, label


def test_the_pipelines_page_shows_the_latest_status_and_a_square_per_stage(client, viewer,
                                                                          driver):
    ok = simple_pipeline("alpha")
    released(driver, ok)
    broken = simple_pipeline("beta", stages=[("Build", [sim("Compile", Outcome="Failed")]),
                                             ("Deploy", [sim("Release")])])
    released(driver, broken)
    simple_pipeline("gamma")
    client.force_login(viewer)
    body = client.get("/").content.decode()
    row = re.search(r'<tr id="pipeline-beta">.*?</tr>', body, re.S).group(0)
    assert re.findall(r'class="square" data-status="(\w+)"', row) == [
        "Succeeded", "Failed", "None"]
    assert 'data-status="Failed">Failed' in row
    assert "alpha" in client.get("/?q=alp").content.decode()
    assert "beta" not in client.get("/?q=alp").content.decode()
    failed_only = client.get("/?status=Failed").content.decode()
    assert "pipeline-beta" in failed_only and "pipeline-alpha" not in failed_only
    assert "pipeline-gamma" in client.get("/?status=none").content.decode()


def test_parts_answer_the_same_partials_as_json(client, viewer, driver):
    pipeline = simple_pipeline("web")
    released(driver, pipeline)
    client.force_login(viewer)
    answer = client.get(f"/pipelines/{pipeline.name}/?parts=header,stage:Build").json()
    assert set(answer["parts"]) == {"header", "stage:Build"}
    assert answer["parts"]["stage:Build"].strip().startswith(
        '<div class="stage-wrap" id="part-stage:Build">')
    assert answer["seq"] > 0


def test_an_inbound_execution_shows_why_it_waits(client, operator, driver):
    pipeline = simple_pipeline("web", mode="QUEUED")
    client.force_login(operator)
    response = client.post(f"/pipelines/{pipeline.name}/stages/Deploy/transition/",
                           {"enabled": "false", "reason": "Freeze for the audit"})
    assert response.status_code == 302
    with driver.capture(execute=True):
        client.post(f"/pipelines/{pipeline.name}/release/", {})
    driver.run()
    body = client.get(f"/pipelines/{pipeline.name}/").content.decode()
    assert "waiting: <span class=\"why\">transition disabled by oscar: Freeze for the audit" \
        in body
    with driver.capture(execute=True):
        client.post(f"/pipelines/{pipeline.name}/release/", {})
    driver.run()
    body = client.get(f"/pipelines/{pipeline.name}/").content.decode()
    assert ("#2</a> waiting: <span class=\"why\">transition disabled by oscar: Freeze for the "
            "audit; queued at position 2") in body


def test_a_stage_locked_by_an_older_execution_is_named(client, viewer, driver):
    pipeline = simple_pipeline("web", stages=[("Build", [sim("Compile")]),
                                              ("Deploy", [sim("Release")])])
    first = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    driver.run_action("Build", "Compile")  # #1 now holds Deploy
    driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    driver.run_action("Build", "Compile")  # #2 waits at Deploy
    client.force_login(viewer)
    body = client.get(f"/pipelines/{pipeline.name}/").content.decode()
    assert f"waiting: <span class=\"why\">stage locked by #{first.number}" in body


def test_the_execution_page_shows_the_version_it_ran_and_the_diff_to_the_current(
        client, viewer, driver):
    pipeline = simple_pipeline("web")
    ex = released(driver, pipeline)
    document = json.loads(json.dumps(pipeline.document))
    document["stages"][1]["actions"][0]["configuration"]["DurationSeconds"] = "5"
    pipeline_save(document=document)
    client.force_login(viewer)
    body = client.get(f"/pipelines/{pipeline.name}/executions/{ex.number}/").content.decode()
    assert "version 1</strong>" in body and "The current version is 2" in body
    assert '<span class="add">+' in body and "DurationSeconds" in body
    assert f"/api/executions/{ex.execution_id}/artifacts/Src/" in body


def test_the_action_page_shows_the_log_and_output_variables(client, viewer, driver):
    pipeline = simple_pipeline("web", stages=[
        ("Build", [sim("Compile", OutputVariables='{"Version": "1.2.3"}',
                       namespace="BuildVariables")])])
    ex = released(driver, pipeline)
    client.force_login(viewer)
    url = f"/pipelines/{pipeline.name}/executions/{ex.number}/stages/Build/actions/Compile/"
    body = client.get(url).content.decode()
    assert "Simulating Build action Compile" in body
    # The name may break between its words (<wbr>, the word_breaks filter).
    assert "BuildVariables.Version" in body.replace("<wbr>", "") and "1.2.3" in body
    raw = client.get(url + "log/")
    text = b"".join(raw.streaming_content).decode()
    assert "Simulated Succeeded" in text
    # The stored log holds the lines as printed; the page and the download show each
    # with its time (runners/logfile.py), as the log API does.
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
    assert re.fullmatch(f"({stamp}[^\n]*\n)+", text), text
    assert re.search(stamp + "Simulating Build action Compile", body)


def test_a_superseded_execution_links_to_the_one_that_superseded_it(client, viewer, driver):
    pipeline = simple_pipeline("web")
    driver.start(pipeline)                       # #1 runs Source
    second = driver.start(pipeline)              # #2 waits at Source
    third = driver.start(pipeline)               # #3 supersedes #2
    driver.run()
    second.refresh_from_db()
    assert second.status == "Superseded"
    client.force_login(viewer)
    body = client.get(f"/pipelines/{pipeline.name}/executions/").content.decode()
    row = re.search(r'<tr id="execution-2">.*?</tr>', body, re.S).group(0)
    assert f'href="/pipelines/{pipeline.name}/executions/{third.number}/">#{third.number}' in row


def test_test_actions_show_their_report_counts():
    from dashboard.execution_views import test_report

    assert test_report("12 passed, 1 failed, 2 skipped: test_login") == {
        "passed": 12, "failed": 1, "skipped": 2, "total": 15}
    assert test_report("Simulated Test succeeded") is None


def test_a_long_action_name_may_break_between_its_words_only():
    from dashboard.templatetags.dashboard import word_breaks

    assert word_breaks("PromoteToProduction") == "Promote<wbr>To<wbr>Production"
    assert word_breaks("BuildVariables.TestsPassed") == "Build<wbr>Variables.<wbr>Tests<wbr>Passed"
    assert word_breaks("deploy_eu-west1") == "deploy_<wbr>eu-<wbr>west1"
    assert word_breaks("<b>Evil</b>") == "&lt;b&gt;Evil&lt;/b&gt;"   # still escaped
    assert word_breaks("") == ""


# --- insights ------------------------------------------------------------------------


def axis_labels(page: str, title: str) -> list[tuple[str, str, str]]:
    """(x, anchor, text) of the x-axis labels under the chart titled ``title``."""
    svg = page.split(f'aria-label="{title}"', 1)[1].split("</svg>", 1)[0]
    # The y-axis's ticks carry dominant-baseline after their anchor: not matched.
    return re.findall(r'<text x="([\d.]+)" [^>]*class="tick" '
                      r'text-anchor="(start|middle|end)">([^<]*)</text>', svg)


def test_the_insights_of_a_single_execution_label_its_point_once(client, viewer, driver):
    pipeline = simple_pipeline("web")
    released(driver, pipeline)
    client.force_login(viewer)
    page = client.get(f"/pipelines/{pipeline.name}/insights/").content.decode()
    [(x, anchor, text)] = axis_labels(page, "Execution duration")
    assert (anchor, text) == ("middle", "#1")        # once, not "#1 … #1"
    svg = page.split('aria-label="Execution duration"', 1)[1].split("</svg>", 1)[0]
    assert re.findall(r'<circle cx="([\d.]+)"', svg) == [x]      # the point above its label
    assert "last 1 finished execution</span>" in page


def test_the_insights_of_two_executions_label_the_ends_of_the_axis(client, viewer, driver):
    pipeline = simple_pipeline("web")
    released(driver, pipeline)
    released(driver, pipeline)
    client.force_login(viewer)
    page = client.get(f"/pipelines/{pipeline.name}/insights/").content.decode()
    labels = [(anchor, text) for _, anchor, text in axis_labels(page, "Execution duration")]
    assert labels == [("start", "#1"), ("end", "#2")]


def test_the_insights_of_a_pipeline_never_run_say_so_instead_of_a_chart(client, viewer,
                                                                       driver):
    pipeline = simple_pipeline("web")
    client.force_login(viewer)
    page = client.get(f"/pipelines/{pipeline.name}/insights/").content.decode()
    assert page.count("No finished execution yet.") == 2     # execution and stage charts
    assert 'aria-label="Execution duration"' not in page
    assert "No finished execution in the last 30 days." in page
    assert "median duration: no finished execution yet" in page
    assert "last 0 finished" not in page


# --- buttons -------------------------------------------------------------------------


def test_release_change_starts_an_execution_with_variables_and_a_revision(client, operator,
                                                                         driver):
    pipeline = simple_pipeline("web", variables=[{"name": "env", "defaultValue": "staging"}])
    client.force_login(operator)
    with driver.capture(execute=True):
        response = client.post(f"/pipelines/{pipeline.name}/release/",
                               {"var-env": "production", "rev-Checkout": "abc123"})
    assert response.status_code == 302 and response["Location"] == f"/pipelines/{pipeline.name}/"
    driver.run()
    ex = PipelineExecution.objects.get(pipeline=pipeline)
    assert ex.variables == {"env": "production"} and ex.triggered_by == operator
    assert ex.status == "Succeeded"
    assert SourceRevision.objects.get(execution=ex).revision_id == "abc123"
    assert "Started execution #1" in client.get(response["Location"]).content.decode()


def test_a_viewer_cannot_press_buttons_by_posting(client, viewer, driver):
    pipeline = simple_pipeline("web")
    ex = released(driver, pipeline)
    client.force_login(viewer)
    name = pipeline.name
    for url in (f"/pipelines/{name}/release/", f"/pipelines/{name}/stages/Build/transition/",
                f"/pipelines/{name}/executions/{ex.number}/stop/",
                f"/pipelines/{name}/executions/{ex.number}/stages/Build/retry/"):
        assert client.post(url, {"reason": "x"}).status_code == 403, url
    assert PipelineExecution.objects.count() == 1


def test_stop_and_abandon_stops_a_running_execution(client, operator, driver):
    pipeline = simple_pipeline("web")
    ex = driver.start(pipeline)
    client.force_login(operator)
    with driver.capture(execute=True):
        response = client.post(f"/pipelines/{pipeline.name}/executions/{ex.number}/stop/",
                               {"mode": "abandon", "reason": "wrong branch"})
    assert response.status_code == 302
    ex.refresh_from_db()
    assert ex.status == "Stopped" and "wrong branch" in ex.status_summary


def test_retry_failed_actions_runs_the_failed_stage_again(client, operator, driver):
    pipeline = simple_pipeline("web", stages=[
        ("Build", [sim("Compile", Outcome="#{variables.outcome}")])],
        variables=[{"name": "outcome", "defaultValue": "Failed"}])
    ex = released(driver, pipeline)
    assert ex.status == "Failed"
    client.force_login(operator)
    body = client.get(f"/pipelines/{pipeline.name}/").content.decode()
    assert "Retry failed actions" in body
    with driver.capture(execute=True):
        client.post(f"/pipelines/{pipeline.name}/executions/{ex.number}/stages/Build/retry/",
                    {"mode": "FAILED_ACTIONS"})
    assert StageExecution.objects.filter(execution=ex, stage_name="Build").count() == 2


def test_a_refused_button_says_why(client, operator, driver):
    pipeline = simple_pipeline("web")
    ex = released(driver, pipeline)
    client.force_login(operator)
    response = client.post(f"/pipelines/{pipeline.name}/executions/{ex.number}/stop/",
                           {"mode": "wait"}, follow=True)
    assert "has already ended (Succeeded)" in response.content.decode()
    response = client.post(f"/pipelines/{pipeline.name}/stages/Build/transition/",
                           {"enabled": "false", "reason": ""}, follow=True)
    assert "A reason is required" in response.content.decode()


def test_forms_need_the_csrf_token(operator, driver):
    from django.test import Client

    pipeline = simple_pipeline("web")
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert client.post(f"/pipelines/{pipeline.name}/release/", {}).status_code == 403


# --- query counts --------------------------------------------------------------------


def _bulk_history(pipeline, count: int = 10_000, with_stages: int = 2_000) -> None:
    """``count`` finished executions (the last ``with_stages`` with their stages and
    actions, a source revision each, a few failures and supersedings)."""
    version = pipeline.current_version
    start = PipelineExecution.objects.filter(pipeline=pipeline).count() + 1
    now = timezone.now()
    rows = []
    for i in range(count):
        t = now - timedelta(minutes=(count - i) * 7)
        rows.append(PipelineExecution(
            pipeline=pipeline, number=start + i, pipeline_version=version,
            execution_mode="SUPERSEDED", trigger_type="Webhook",
            status="Failed" if i % 13 == 0 else "Succeeded", started_at=t,
            ended_at=t + timedelta(seconds=30 + i % 50)))
    PipelineExecution.objects.bulk_create(rows, batch_size=2000)
    recent = list(PipelineExecution.objects.filter(pipeline=pipeline, number__gte=start)
                  .order_by("-number")[:with_stages])
    stages, revisions = [], []
    for ex in recent:
        for index, stage in enumerate(pipeline.document["stages"]):
            stages.append(StageExecution(
                execution=ex, pipeline=pipeline, stage_name=stage["name"], stage_index=index,
                status="Succeeded", started_at=ex.started_at, ended_at=ex.ended_at))
        revisions.append(SourceRevision(execution=ex, action_name="Checkout",
                                        revision_id=f"{ex.number:040x}",
                                        revision_summary=f"Commit {ex.number}"))
    StageExecution.objects.bulk_create(stages, batch_size=2000)
    SourceRevision.objects.bulk_create(revisions, batch_size=2000)
    actions = []
    for se in StageExecution.objects.filter(execution__in=recent):
        for action in pipeline.document["stages"][se.stage_index]["actions"]:
            actions.append(ActionExecution(
                execution_id=se.execution_id, stage_execution=se, pipeline=pipeline,
                stage_name=se.stage_name, action_name=action["name"], category="Build",
                provider="Simulate", status="Succeeded", started_at=se.started_at,
                ended_at=se.ended_at))
    ActionExecution.objects.bulk_create(actions, batch_size=2000)


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries)


def test_every_page_costs_the_same_queries_with_10000_executions(client, viewer, driver):
    pipeline = simple_pipeline("web")
    first = released(driver, pipeline)
    for _ in range(HISTORY_PAGE_PLUS := 26):  # a second history page exists in both runs
        PipelineExecution.objects.create(
            pipeline=pipeline, number=PipelineExecution.objects.count() + 1,
            pipeline_version=pipeline.current_version, execution_mode="SUPERSEDED",
            trigger_type="Webhook", status="Succeeded", started_at=timezone.now())
    assert HISTORY_PAGE_PLUS
    client.force_login(viewer)
    urls = page_urls(pipeline, first)
    for url in urls.values():
        client.get(url)  # warm caches (permissions, content types)
    before = {label: _queries(client, url) for label, url in urls.items()}
    _bulk_history(pipeline)
    # An execution with many retried actions: the execution and action pages too.
    ex = PipelineExecution.objects.get(pipeline=pipeline, number=first.number)
    build = StageExecution.objects.get(execution=ex, stage_name="Build")
    ActionExecution.objects.bulk_create([
        ActionExecution(execution=ex, stage_execution=build, pipeline=pipeline,
                        stage_name="Build", action_name="Compile", category="Build",
                        provider="Simulate", attempt=n, status="Failed",
                        started_at=timezone.now(), ended_at=timezone.now())
        for n in range(2, 60)])
    assert PipelineExecution.objects.filter(pipeline=pipeline).count() > 10_000
    after = {label: _queries(client, url) for label, url in urls.items()}
    assert after == before
    print("queries per page:", after)
    assert max(after.values()) <= 16, after
