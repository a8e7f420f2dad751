"""Stage conditions in the browser: a gate turns live as the worker evaluates it, and an
operator lets a held execution through with Override (and a reason).

The condition is real: a DeploymentWindow rule whose window opens in two hours, so the
engine (in the worker process) holds the execution before Deploy's actions, its rule
waiting InProgress. Nothing here writes condition records: the page learns everything
from the worker over the websocket.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pipelines.services import pipeline_save
from tests.dashboard.e2e.conftest import shot
from tests.dashboard.e2e.test_browser import SLOW, assert_not_reloaded, live, mark_no_reload
from tests.executions.conftest import sim
from tests.factories import definition

pytestmark = pytest.mark.e2e


def closed_window() -> dict:
    """A DeploymentWindow rule whose window (one hour a day) opens two hours from now."""
    hour = (timezone.now().hour + 2) % 24
    return {"name": "ChangeWindow", "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                                   "provider": "DeploymentWindow",
                                                   "version": "1"},
            "configuration": {"Cron": f"0 * {hour} ? * * *", "TimeZone": "UTC"}}


def held_pipeline(name: str):
    doc = definition(name, stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Deploy", [sim("Release", "Deploy")]),
    ])
    doc["stages"][1]["beforeEntry"] = {"conditions": [{"result": "FAIL",
                                                       "rules": [closed_window()]}]}
    return pipeline_save(document=doc).pipeline


def gate(page, stage: str, kind: str):
    return page.locator(f"[id='part-stage:{stage}'] section.gate[data-kind={kind}]")


def test_a_gate_turns_live_and_an_operator_overrides_it(page, conveyor, login, unique):
    violations: list[str] = []   # the strict CSP: Chromium reports any refused inline code
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    held_pipeline(unique)
    login("oscar")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    before = gate(page, "Deploy", "beforeEntry")
    expect(before).to_contain_text("not evaluated")
    expect(before).to_contain_text("ChangeWindow")
    live(page)
    page.click("summary:has-text('Release change')")
    page.click("button[name=release]")
    live(page)
    mark_no_reload(page)
    # The worker evaluates the rule: outside the window, it waits; the gate says so live.
    expect(before).to_have_attribute("data-status", "InProgress", timeout=SLOW)
    expect(before.locator(".rule[data-status=InProgress]")).to_contain_text("ChangeWindow")
    expect(page.locator("[id='part-stage:Deploy'] section.stage .action").first
           ).to_have_attribute("data-status", "None")
    assert_not_reloaded(page)
    shot(page, "gate-held")

    before.locator("summary:has-text('Override')").click()
    before.locator("input[name=reason]").fill("Hotfix for the checkout outage")
    shot(page, "gate-override-form")
    before.locator("form button[type=submit]").click()
    expect(page.locator(".message.success")).to_contain_text("overridden")
    before = gate(page, "Deploy", "beforeEntry")
    expect(before).to_have_attribute("data-status", "Overridden", timeout=SLOW)
    expect(before).to_contain_text("Overridden by oscar: Hotfix for the checkout outage")
    # The held execution goes on: Deploy's actions run and it succeeds.
    expect(page.locator("[id='part-stage:Deploy'] section.stage")).to_have_attribute(
        "data-status", "Succeeded", timeout=SLOW)
    expect(before.locator("summary:has-text('Override')")).to_have_count(0)
    shot(page, "gate-overridden")
    # The execution page draws the gate on its timeline, with the evaluation's bar.
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/1/")
    row = page.locator("#part-timeline .g-gate[data-kind=beforeEntry]")
    expect(row.locator("section.gate")).to_have_attribute("data-status", "Overridden")
    expect(row.locator(".gate-bar")).to_have_attribute("data-status", "Overridden")
    # The bar's offset and width arrive through data-css (conveyor.js), never inline.
    assert row.locator(".gate-bar").evaluate("el => el.style.width") not in ("", "0%")
    shot(page, "gate-execution")
    assert violations == []


def test_a_viewer_sees_the_held_gate_without_a_button_and_the_override_arrives_live(
        page, conveyor, login, people, unique):
    """The viewer's execution page follows the gate: held, then overridden by someone
    else (through the service, as the REST endpoint would), without a reload."""
    from conditions import services as condition_services
    from executions import services
    from executions.models import PipelineExecution

    pipeline = held_pipeline(unique)
    services.execution_start(pipeline=pipeline, user=people["oscar"])
    login("vera")
    page.goto(f"{conveyor.url}/pipelines/{unique}/")
    expect(gate(page, "Deploy", "beforeEntry")).to_have_attribute(
        "data-status", "InProgress", timeout=SLOW)
    expect(page.locator("summary:has-text('Override')")).to_have_count(0)
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/1/")
    live(page)
    mark_no_reload(page)
    row = page.locator("#part-timeline .g-gate[data-kind=beforeEntry] section.gate")
    expect(row).to_have_attribute("data-status", "InProgress")
    expect(row.locator("summary:has-text('Override')")).to_have_count(0)
    condition_services.stage_condition_override(
        execution=PipelineExecution.objects.get(pipeline=pipeline, number=1),
        stage_name="Deploy", condition_type="BEFORE_ENTRY", user=people["rita"],
        reason="Approved in the change board")
    expect(row).to_have_attribute("data-status", "Overridden", timeout=SLOW)
    expect(row).to_contain_text("Overridden by rita: Approved in the change board")
    expect(page.locator("#part-header .status").first).to_have_attribute(
        "data-status", "Succeeded", timeout=SLOW)
    assert_not_reloaded(page)
