"""What a person sees in the browser: releases, stops, retries, gates, reviews, logs, drops.

Every test drives Debian's Chromium against the real server of ``conftest``
(daphne + a django-q2 cluster on a shared database): executions run in the
worker process and reach the page only over the websocket. "Without
reloading" is checked with a marker set on ``window`` that a reload would erase.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from playwright.sync_api import expect

from pipelines.services import pipeline_save
from tests.approvals.conftest import manual
from tests.dashboard.e2e.conftest import shot
from tests.executions.conftest import sim
from tests.factories import action, definition

pytestmark = pytest.mark.e2e

SLOW = 20_000  # ms: generous for a loaded 2-core machine


def make_pipeline(name: str, stages, **fields):
    doc = definition(name, stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}],
                        namespace="SourceVariables")]),
        *stages], **fields)
    return pipeline_save(document=doc).pipeline


def stage(page, name: str):
    return page.locator(f"[id='part-stage:{name}'] section.stage")


def mark_no_reload(page) -> None:
    page.evaluate("window.__conveyorNoReload = true")


def assert_not_reloaded(page) -> None:
    assert page.evaluate("window.__conveyorNoReload === true"), "the page was reloaded"


def live(page) -> None:
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "live",
                                                              timeout=SLOW)


def execution(pipeline, number: int = 1):
    from executions.models import PipelineExecution

    return PipelineExecution.objects.get(pipeline=pipeline, number=number)


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


MESSAGES = ["Fix flaky login test", "Bump payment SDK to 4.2", "Add retry to the S3 upload",
            "Cache the product catalogue", "Refactor checkout totals", "Tune DB pool size"]


def seed_history(pipeline, count: int = 48) -> None:
    """A month of finished executions (for the history and insights screenshots)."""
    from datetime import timedelta

    from django.utils import timezone

    from executions.models import PipelineExecution, SourceRevision, StageExecution

    now = timezone.now()
    version = pipeline.current_version
    rows = []
    for i in range(count):
        start = now - timedelta(days=29 * (count - i) / count, minutes=37)
        status = "Failed" if i % 7 == 3 else "Superseded" if i % 11 == 5 else "Succeeded"
        rows.append(PipelineExecution(
            pipeline=pipeline, number=i + 1, pipeline_version=version,
            execution_mode="SUPERSEDED", trigger_type="Webhook", trigger_detail="push to main",
            status=status, started_at=start,
            ended_at=start + timedelta(seconds=140 + (i * 37) % 90 + (60 if i > 30 else 0))))
    made = PipelineExecution.objects.bulk_create(rows)
    for ex in PipelineExecution.objects.filter(pipeline=pipeline, status="Superseded"):
        PipelineExecution.objects.filter(pk=ex.pk).update(
            superseded_by=PipelineExecution.objects.get(pipeline=pipeline,
                                                        number=ex.number + 1))
    stages, revisions = [], []
    for ex in PipelineExecution.objects.filter(pipeline=pipeline):
        t = ex.started_at
        for index, stage_doc in enumerate(pipeline.document["stages"]):
            length = timedelta(seconds=[8, 70, 40][index % 3] + (ex.number * 13) % 25)
            failed = ex.status == "Failed" and index == 1
            stages.append(StageExecution(
                execution=ex, pipeline=pipeline, stage_name=stage_doc["name"], stage_index=index,
                status="Failed" if failed else "Succeeded", started_at=t, ended_at=t + length))
            t += length
            if failed:
                break
        revisions.append(SourceRevision(
            execution=ex, action_name="Checkout", artifact_name="Src",
            revision_id=hashlib.sha1(str(ex.number).encode()).hexdigest(),
            revision_summary=MESSAGES[ex.number % len(MESSAGES)]))
    StageExecution.objects.bulk_create(stages)
    SourceRevision.objects.bulk_create(revisions)
    assert len(made) == count


def test_release_a_change_and_watch_every_stage_turn_green(page, conveyor, login, unique):
    pipeline = make_pipeline(unique, [
        ("Build", [sim("Compile", DurationSeconds=1, OutputVariables='{"Version": "1.4.2"}',
                       namespace="BuildVariables", outputArtifacts=[{"name": "BuildOutput"}],
                       inputArtifacts=[{"name": "Src"}]),
                   sim("UnitTests", "Test", DurationSeconds=1.5,
                       Summary="212 passed, 0 failed, 3 skipped")]),
        ("Deploy", [sim("Release", "Deploy", DurationSeconds=1)])],
        variables=[{"name": "environment", "defaultValue": "staging"}])
    login("oscar")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    live(page)
    shot(page, "pipeline-before-release")
    page.click("summary:has-text('Release change')")
    page.fill("input[name='var-environment']", "production")
    page.click("button[name=release]")
    expect(page.locator(".message.success")).to_contain_text("Started execution #1")
    live(page)
    mark_no_reload(page)
    expect(stage(page, "Build")).to_have_attribute("data-status", "InProgress", timeout=SLOW)
    shot(page, "pipeline-running")
    for name in ("Source", "Build", "Deploy"):
        expect(stage(page, name)).to_have_attribute("data-status", "Succeeded", timeout=SLOW)
    expect(page.locator("#part-header")).to_contain_text("Succeeded")
    assert_not_reloaded(page)
    assert execution(pipeline).variables == {"environment": "production"}
    shot(page, "pipeline")

    # The other pages of a finished execution, for the screenshots and a read check.
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/")
    expect(page.locator("#execution-1")).to_contain_text("Succeeded")
    shot(page, "history")
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/1/")
    expect(page.locator("#part-timeline .g-bar")).to_have_count(7)  # 3 stages, 4 actions
    expect(page.locator("#part-artifacts")).to_contain_text("BuildOutput")
    shot(page, "execution")
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/1/stages/Build/actions/UnitTests/")
    expect(page.locator(".report")).to_contain_text("212 passed")
    shot(page, "action")
    page.goto(f"{conveyor.url}/pipelines/{unique}/insights/")
    expect(page.locator("svg").first).to_be_visible()
    # A month of history makes the insights and the history worth looking at.
    seeded = make_pipeline(unique + "-history", [("Build", [sim("Compile")]),
                                                 ("Deploy", [sim("Release", "Deploy")])])
    seed_history(seeded)
    page.goto(f"{conveyor.url}/pipelines/{seeded.name}/insights/")
    expect(page.locator(".chart rect.rate").first).to_be_visible()
    shot(page, "insights")
    page.goto(f"{conveyor.url}/pipelines/{seeded.name}/executions/")
    expect(page.locator(".pager")).to_contain_text("Page 1 of 2")
    expect(page.locator("#execution-28")).to_contain_text("by #29")  # superseded link
    shot(page, "history-month")
    page.goto(f"{conveyor.url}/?q={unique}")
    expect(page.locator(f"#pipeline-{unique} .square[data-status=Succeeded]")).to_have_count(3)
    link = page.locator("#part-artifacts a", has_text="BuildOutput")
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/1/")
    download = page.request.get(conveyor.url + link.get_attribute("href"))
    assert download.status == 200 and download.body()[:2] == b"PK", "a zip archive"
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    shot(page, "pipeline-narrow")
    page.set_viewport_size({"width": 2560, "height": 1300})
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    shot(page, "pipeline-wall")


def test_stop_and_abandon_a_running_execution(page, conveyor, login, unique):
    pipeline = make_pipeline(unique, [("Build", [sim("Compile", DurationSeconds=60)]),
                                      ("Deploy", [sim("Release", "Deploy")])])
    login("oscar")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    page.click("summary:has-text('Release change')")
    page.click("button[name=release]")
    live(page)
    expect(stage(page, "Build")).to_have_attribute("data-status", "InProgress", timeout=SLOW)
    wait_for(lambda: execution(pipeline).action_executions.filter(
        stage_name="Build", worker__gt="").exists(), what="a worker to run Compile")
    page.click("#running-1 summary:has-text('Stop')")
    page.fill("#running-1 input[name=reason]", "wrong branch")
    page.click("#running-1 button[value=abandon]")
    live(page)
    expect(stage(page, "Build")).to_have_attribute("data-status", "Stopped", timeout=SLOW)
    expect(page.locator("#part-header .latest")).to_contain_text("Stopped")
    ex = execution(pipeline)
    assert ex.status == "Stopped" and "wrong branch" in ex.status_summary
    assert ex.action_executions.get(stage_name="Build").status == "Abandoned"


def test_retry_a_failed_stage(page, conveyor, login, unique, tmp_path):
    # The build runs sandboxed: it reads the flag's folder because the action says so
    # (ReadablePaths; a folder of the test's, outside the server's var/).
    flags = tmp_path / "flags"
    flags.mkdir()
    flag = flags / f"{unique}.ready"
    pipeline = make_pipeline(unique, [
        ("Build", [action("Check", commands=[f"test -f {flag} || {{ echo not ready; exit 3; }}",
                                               "echo ready"],
                          configuration={"ReadablePaths": str(flags)})]),
        ("Deploy", [sim("Release", "Deploy")])])
    login("oscar")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    page.click("summary:has-text('Release change')")
    page.click("button[name=release]")
    live(page)
    expect(stage(page, "Build")).to_have_attribute("data-status", "Failed", timeout=SLOW)
    mark_no_reload(page)
    shot(page, "pipeline-failed")
    flag.write_text("go")
    page.click("[id='part-stage:Build'] button:has-text('Retry failed actions')")
    live(page)
    for name in ("Build", "Deploy"):
        expect(stage(page, name)).to_have_attribute("data-status", "Succeeded", timeout=SLOW)
    assert execution(pipeline).status == "Succeeded"
    assert execution(pipeline).stage_executions.filter(stage_name="Build").count() == 2


def test_a_disabled_transition_holds_an_execution_and_says_why(page, conveyor, login, unique):
    pipeline = make_pipeline(unique, [("Build", [sim("Compile")]),
                                      ("Deploy", [sim("Release", "Deploy")])])
    login("oscar")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    deploy = page.locator("[id='part-stage:Deploy']")
    deploy.locator("summary:has-text('Disable transition')").click()
    deploy.locator("input[name=reason]").fill("Hold for the demo")
    deploy.locator("button:has-text('Disable')").click()
    expect(page.locator("[id='part-stage:Deploy'] .disabled-note")).to_contain_text(
        "by oscar")
    page.click("summary:has-text('Release change')")
    page.click("button[name=release]")
    live(page)
    mark_no_reload(page)
    expect(stage(page, "Build")).to_have_attribute("data-status", "Succeeded", timeout=SLOW)
    expect(page.locator("[id='part-stage:Deploy'] .inbound")).to_contain_text(
        "#1 waiting: transition disabled by oscar: Hold for the demo", timeout=SLOW)
    assert_not_reloaded(page)
    shot(page, "pipeline-transition-disabled")
    page.click("[id='part-stage:Deploy'] button:has-text('Enable transition')")
    live(page)
    expect(stage(page, "Deploy")).to_have_attribute("data-status", "Succeeded", timeout=SLOW)
    expect(page.locator("[id='part-stage:Deploy'] .inbound")).to_have_count(0)
    assert execution(pipeline).status == "Succeeded"


def test_a_reviewer_approves_and_a_non_reviewer_has_no_button(page, browser, conveyor, login,
                                                             unique, people):
    pipeline = make_pipeline(unique, [
        ("Staging", [sim("DeployStaging", "Deploy")]),
        ("Production", [manual(CustomData="Ship #{SourceVariables.CommitId}?"),
                        sim("DeployProduction", "Deploy", runOrder=2)])])
    from executions import services

    # Oscar releases (a reviewer may not approve an execution they started).
    services.execution_start(pipeline=pipeline, user=people["oscar"])
    login("rita")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    live(page)
    production = page.locator("[id='part-stage:Production']")
    expect(production.locator("summary:has-text('Review')")).to_be_visible(timeout=SLOW)
    mark_no_reload(page)

    # Oscar operates the pipeline but is no reviewer: the same page has no Review button.
    from django.test import Client

    other = browser.new_context(viewport={"width": 1440, "height": 900})
    client = Client()
    client.force_login(people["oscar"])
    other.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                        "url": conveyor.url}])
    oscar = other.new_page()
    oscar.goto(f"{conveyor.url}/pipelines/{unique}/")
    expect(oscar.locator("[id='part-stage:Production'] .action").first).to_have_attribute(
        "data-status", "InProgressWaiting")
    expect(oscar.locator("summary:has-text('Review')")).to_have_count(0)

    production.locator("summary:has-text('Review')").click()
    shot(page, "pipeline-review")
    production.locator("textarea[name=summary]").fill("Staging looks right")
    production.locator("button:has-text('Approve')").click()
    expect(page.locator(".message.success")).to_contain_text("Approved")
    expect(stage(page, "Production")).to_have_attribute("data-status", "Succeeded",
                                                        timeout=SLOW)
    # Oscar's page followed live.
    expect(oscar.locator("[id='part-stage:Production'] section.stage")).to_have_attribute(
        "data-status", "Succeeded", timeout=SLOW)
    other.close()
    assert execution(pipeline).status == "Succeeded"


def test_the_log_streams_live_and_stops_following_when_the_reader_scrolls_up(
        page, conveyor, login, unique, people):
    from executions import services

    pipeline = make_pipeline(unique, [
        ("Build", [action("Compile", commands=[
            "for i in $(seq 1 80); do echo \"compiling unit $i of 80\"; sleep 0.06; done"])])])
    login("vera")
    services.execution_start(pipeline=pipeline, user=people["oscar"])
    wait_for(lambda: execution(pipeline).action_executions.filter(
        stage_name="Build", status="InProgress").exists(), what="Compile to start")
    page.set_viewport_size({"width": 1440, "height": 700})
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/1/stages/Build/actions/Compile/")
    live(page)
    log = page.locator("#log")
    expect(log).to_contain_text("compiling unit 5 of 80", timeout=SLOW)
    assert page.locator("#log").get_attribute("data-ended") == "false", "it ran to the end first"
    mark_no_reload(page)
    # Following: the newest line is in view. Then the reader scrolls up: it stays put.
    expect(page.locator("#log-follow")).to_be_checked()
    expect(log).to_contain_text("compiling unit 40 of 80", timeout=SLOW)  # it overflows now
    assert log.evaluate("el => el.scrollHeight > el.clientHeight + 100")
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight < 30")
    log.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
    expect(page.locator("#log-follow")).not_to_be_checked()
    expect(log).to_contain_text("compiling unit 80 of 80", timeout=SLOW)
    assert log.evaluate("el => el.scrollTop") == 0
    expect(page.locator("#log-state")).to_have_text("complete", timeout=SLOW)
    text = log.inner_text()
    assert [f"unit {i} of" in text for i in range(1, 81)] == [True] * 80
    assert text.count("compiling unit 7 of 80") == 1
    assert_not_reloaded(page)
    shot(page, "action-log")


def test_after_the_server_cuts_the_websocket_the_page_catches_up_on_reconnect(
        page, conveyor, login, unique, people):
    from executions import services

    pipeline = make_pipeline(unique, [("Build", [sim("Compile", DurationSeconds=2)]),
                                      ("Deploy", [sim("Release", "Deploy", DurationSeconds=1)])])
    login("vera")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    live(page)
    mark_no_reload(page)
    services.execution_start(pipeline=pipeline, user=people["oscar"])
    expect(stage(page, "Build")).to_have_attribute("data-status", "InProgress", timeout=SLOW)
    conveyor.stop_web()  # every websocket is cut; the worker goes on
    expect(page.locator("#live-indicator")).to_have_attribute("data-state", "reconnecting")
    shot(page, "pipeline-reconnecting")
    wait_for(lambda: execution(pipeline).status == "Succeeded", what="the execution to end")
    assert stage(page, "Deploy").get_attribute("data-status") == "None", "updated while down?"
    conveyor.start_web()
    live(page)
    for name in ("Build", "Deploy"):
        expect(stage(page, name)).to_have_attribute("data-status", "Succeeded", timeout=SLOW)
    expect(page.locator("#part-header .latest")).to_contain_text("Succeeded")
    assert_not_reloaded(page)


@pytest.mark.parametrize("width", [1440])
def test_pages_read_without_javascript(browser, conveyor, people, unique, width):
    from django.test import Client

    make_pipeline(unique, [("Build", [sim("Compile")])])
    context = browser.new_context(java_script_enabled=False,
                                  viewport={"width": width, "height": 900})
    client = Client()
    client.force_login(people["vera"])
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                          "url": conveyor.url}])
    page = context.new_page()
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    expect(page.locator("h1")).to_have_text(unique)
    expect(stage(page, "Build")).to_be_visible()
    expect(page.locator("#live-indicator")).to_be_hidden()
    css = page.evaluate("getComputedStyle(document.querySelector('.stage')).borderTopWidth")
    assert css == "4px", "the stylesheet is served by the app itself"
    context.close()


def test_the_pipelines_list_and_the_execution_page_follow_an_execution(
        page, context, conveyor, login, unique, people):
    from executions import services

    pipeline = make_pipeline(unique, [("Build", [sim("Compile", DurationSeconds=1.5)]),
                                      ("Deploy", [sim("Release", "Deploy")])])
    login("vera")
    page.goto(f"{conveyor.url}/?q={unique}")
    live(page)
    mark_no_reload(page)
    ex = services.execution_start(pipeline=pipeline, user=people["oscar"])
    detail = context.new_page()
    detail.goto(f"{conveyor.url}/pipelines/{unique}/executions/{ex.number}/")
    live(detail)
    mark_no_reload(detail)
    squares = page.locator(f"#pipeline-{unique} .square")
    expect(squares.nth(1)).to_have_attribute("data-status", "InProgress", timeout=SLOW)
    expect(detail.locator("#part-header .status").first).to_have_text("InProgress")
    for i in range(3):
        expect(squares.nth(i)).to_have_attribute("data-status", "Succeeded", timeout=SLOW)
    expect(page.locator(f"#pipeline-{unique}")).to_contain_text("Succeeded")
    expect(detail.locator("#part-header .status").first).to_have_text("Succeeded",
                                                                      timeout=SLOW)
    expect(detail.locator("#part-timeline .g-bar[data-status=Succeeded]")).to_have_count(6)
    expect(detail.locator("#part-artifacts")).to_contain_text("Src")
    assert_not_reloaded(page)
    assert_not_reloaded(detail)
    page.goto(f"{conveyor.url}/")  # every pipeline the other tests left, in their states
    shot(page, "pipelines")
