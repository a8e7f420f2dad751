"""In Chromium: a reviewer approves from the inbox, and confirms a signed link.

Run with ``pytest -m e2e`` (Playwright's sync API cannot share a process with
pytest-asyncio tests). Skipped where Debian's Chromium is not installed.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from approvals.models import ApprovalRequest
from tests.approvals.conftest import release_pipeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = os.environ.get("CONVEYOR_SCREENSHOTS", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed"),
    # Live server: real transactions; the role groups of the data migration are restored after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def browser(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield chromium
        chromium.close()


def sign_in(page, url: str, username: str) -> None:
    page.goto(f"{url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", f"pw-{username}")
    page.click("[type=submit]")


def test_a_reviewer_approves_from_the_inbox_with_a_summary(
    browser, live_server, release, alice, bob,
):
    request = release.to_approval(release_pipeline(RequiredApprovals="1"), commit="5ca1ab1e")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_server.url, "alice")
    page.click("nav >> text=Approvals")
    card = page.locator(f"#approval-{request.pk}")
    assert "Ship 5ca1ab1e to production?" in card.inner_text()
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "approvals-inbox.png"), full_page=True)
    card.locator("textarea").fill("Staging looks right")
    card.locator("button.approve").click()
    page.wait_for_selector("text=shop / Production / Approve: Approved.")
    request.refresh_from_db()
    assert request.status == "Approved"
    assert request.decisions.get().summary == "Staging looks right"


def test_a_reviewer_confirms_the_reject_link_from_the_email(
    browser, live_server, release, mailoutbox, alice,
):
    request = release.to_approval(release_pipeline())
    email = next(m for m in mailoutbox if m.to == ["alice@example.com"])
    reject = re.search(r"^Reject: https://conveyor\.example\.com(\S+)$", email.body, re.M)[1]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}{reject}")
    page.fill("#id_username", "alice")                     # the login page, then back
    page.fill("#id_password", "pw-alice")
    page.click("[type=submit]")
    page.wait_for_selector("text=Confirm: reject shop / Production / Approve")
    assert ApprovalRequest.objects.get(pk=request.pk).status == "Pending"
    if SCREENSHOTS:
        page.screenshot(path=os.path.join(SCREENSHOTS, "approvals-link.png"), full_page=True)
    page.fill("#summary", "Not on a Friday")
    page.click("button.reject")
    page.wait_for_selector("text=shop / Production / Approve: Rejected.")
    request.refresh_from_db()
    assert request.status == "Rejected" and request.decisions.get().surface == "link"
