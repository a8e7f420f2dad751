"""In Chromium: an owner builds a five-stage pipeline in the admin by clicking.

Run with ``pytest -m e2e`` (Playwright's sync API cannot share a process with
pytest-asyncio tests). Skipped where Debian's Chromium is not installed.
"""

import json
import shutil

import pytest
from django.contrib.auth.models import User

from pipelines.models import Pipeline

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed"),
    # Live server: real transactions; the role groups of the data migration are restored after.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

STAGES = [
    ("Source", [("Checkout", "Source", "Git", {"RepositoryUrl": "/srv/app.git"}, [],
                 ["Src"], [])]),
    ("Build", [("Compile", "Build", "Shell", {}, ["Src"], ["App"], ["make"])]),
    ("Test", [("Unit", "Test", "Shell", {}, ["App"], [], ["make test"])]),
    ("Approve", [("Review", "Approval", "Manual", {"CustomData": "Ship it?"}, [], [], [])]),
    ("Deploy", [("Release", "Deploy", "Directory", {"TargetDirectory": "/srv/app"}, ["App"],
                 [], [])]),
]


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # The test reads the database while Playwright's loop runs in this thread.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    User.objects.create_superuser("root", "root@example.com", "pw-root")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "pw-root")
        page.click("input[type=submit]")
        yield page
        browser.close()


def test_an_owner_builds_a_five_stage_pipeline_by_clicking_and_reimports_its_export(
        page, live_server, known_providers):
    page.goto(f"{live_server.url}/admin/pipelines/pipeline/add/")
    page.fill("[name=name]", "clicked")
    page.select_option("[name=execution_mode]", "QUEUED")
    for s, (stage_name, actions) in enumerate(STAGES):
        page.locator("a.djn-add-handler.djn-model-pipelines-stage").last.click()
        page.fill(f"[name=stages-{s}-name]", stage_name)
        for a, (name, category, provider, config, inputs, outputs, commands) in enumerate(
                actions):
            page.locator(f"#stages-{s} a.djn-add-handler.djn-model-pipelines-action").last.click()
            q = f"stages-{s}-actions-{a}"
            page.fill(f"[name={q}-name]", name)
            page.select_option(f"[name={q}-category]", category)
            page.fill(f"[name={q}-provider]", provider)
            page.fill(f"[name={q}-configuration]", json.dumps(config))
            page.fill(f"[name={q}-input_artifacts]", json.dumps([{"name": n} for n in inputs]))
            page.fill(f"[name={q}-output_artifacts]", json.dumps([{"name": n} for n in outputs]))
            page.fill(f"[name={q}-commands]", json.dumps(commands))
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    pipeline = Pipeline.objects.get(name="clicked")
    assert pipeline.version == 1 and pipeline.execution_mode == "QUEUED"
    assert [s["name"] for s in pipeline.document["stages"]] == [s[0] for s in STAGES]

    exported = page.request.get(
        f"{live_server.url}/admin/pipelines/pipeline/{pipeline.pk}/export/?format=yaml").text()
    page.goto(f"{live_server.url}/admin/pipelines/pipeline/import/")
    page.fill("[name=document]", exported)
    page.click("input[type=submit]")
    page.wait_for_selector('text=Imported "clicked": no change, version 1 kept.')
    assert Pipeline.objects.get(name="clicked").versions.count() == 1
