"""Finding 8 of the security review: the dashboard works under its Content-Security-Policy
(no inline script or style), seen in Chromium, which reports every refused inline script,
style or handler on the console."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.dashboard.e2e.test_browser import SLOW, make_pipeline, stage
from tests.executions.conftest import sim

pytestmark = pytest.mark.e2e


def test_every_dashboard_page_runs_under_the_csp_without_a_violation(
        page, conveyor, login, unique):
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    make_pipeline(unique, [("Build", [sim("Compile", DurationSeconds=0.5,
                                          Summary="3 passed, 1 failed")])])
    login("oscar")
    answer = page.goto(f"{conveyor.url}/pipelines/{unique}/")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    page.click("summary:has-text('Release change')")
    page.click("button[name=release]")
    expect(stage(page, "Build")).to_have_attribute("data-status", "Succeeded", timeout=SLOW)
    page.goto(f"{conveyor.url}/pipelines/{unique}/executions/1/")
    # The timeline's bars get their offsets and widths from data-css through conveyor.js.
    bar = page.locator("#part-timeline .g-bar").first
    expect(bar).to_be_visible()
    assert bar.evaluate("el => el.style.width") not in ("", "0%")
    for path in ("/", f"/pipelines/{unique}/executions/",
                 f"/pipelines/{unique}/executions/1/stages/Build/actions/Compile/",
                 f"/pipelines/{unique}/insights/", "/approvals/"):
        page.goto(conveyor.url + path)
        expect(page.locator("main")).to_be_visible()
    assert violations == []
