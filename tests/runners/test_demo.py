"""``manage.py load_demo``: the demo pipeline really works, end to end, on real files."""

from __future__ import annotations

import io
import subprocess

import pytest
from django.core.management import call_command

from executions import services
from executions.models import ActionExecution, PipelineExecution
from pipelines.models import Pipeline
from tests.runners.receiver import start_receiver
from triggers import changes


@pytest.fixture
def demo(settings, tmp_path, db):
    settings.VAR_DIR = tmp_path / "var"
    out = io.StringIO()
    call_command("load_demo", stdout=out, stderr=io.StringIO())
    return tmp_path / "var" / "demo", out.getvalue()


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_load_demo_creates_a_repository_and_a_valid_pipeline(demo):
    root, out = demo
    assert git(root / "app", "log", "--format=%s") == "Initial commit of the demo shop"
    assert (root / "app" / ".git" / "hooks" / "post-commit").exists()
    pipeline = Pipeline.objects.get(name="demo")
    assert [s["name"] for s in pipeline.document["stages"]] == [
        "Source", "Build", "Staging", "Approval", "Production"]
    assert pipeline.webhook_secret
    assert git(root / "app", "config", "conveyor.secret") == pipeline.webhook_secret
    assert "Commit to" in out


def test_load_demo_twice_changes_nothing(demo):
    root, _ = demo
    pipeline = Pipeline.objects.get(name="demo")
    head = git(root / "app", "rev-parse", "HEAD")
    call_command("load_demo", stdout=io.StringIO(), stderr=io.StringIO())
    again = Pipeline.objects.get(name="demo")
    assert (again.version, again.webhook_secret) == (pipeline.version, pipeline.webhook_secret)
    assert git(root / "app", "rev-parse", "HEAD") == head


def approve(driver, execution):
    ae = ActionExecution.objects.get(execution=execution, action_name="PromoteToProduction")
    assert ae.status == "InProgress" and ae.waiting_since is not None
    driver.call(services.action_complete, action_execution=ae, succeeded=True,
                summary="Looks good")


def test_the_demo_pipeline_tests_packages_deploys_and_releases(demo, driver):
    root, _ = demo
    pipeline = Pipeline.objects.get(name="demo")
    decisions = driver.call(changes.poll_pipeline, pipeline)  # what the schedule does
    assert decisions[0].started
    driver.run()
    execution = PipelineExecution.objects.get()
    build = ActionExecution.objects.get(execution=execution, action_name="TestAndPackage")
    assert build.summary == "Tests: 5 passed, 0 failed, 0 skipped (2 commands succeeded)"
    smoke = ActionExecution.objects.get(execution=execution, action_name="SmokeTest")
    assert smoke.status == "Succeeded", smoke.summary
    head = git(root / "app", "rev-parse", "HEAD")
    assert (root / "staging" / "current" / "dist" / "REVISION").read_text().strip() == head
    assert not (root / "production").exists()
    approve(driver, execution)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert (root / "production" / "current" / "dist" / "REVISION").read_text().strip() == head


def test_a_commit_breaking_a_test_fails_the_build_naming_the_test(demo, driver):
    root, _ = demo
    repo = root / "app"
    pricing = repo / "shop" / "pricing.py"
    pricing.write_text(pricing.read_text().replace("round(total, 2)", "round(total, 1)"))
    git(repo, "-c", "core.hooksPath=/dev/null", "commit", "-qam", "Round to one decimal")
    driver.call(changes.poll_pipeline, Pipeline.objects.get(name="demo"))
    driver.run()
    build = ActionExecution.objects.get(action_name="TestAndPackage")
    assert build.status == "Failed"
    assert build.summary.startswith(
        "Tests: 4 passed, 1 failed, 0 skipped; failing: "
        "tests.test_pricing.TotalTests.test_rounds_to_cents. Command 1 of 2 failed")
    assert not (root / "staging").exists()


def test_committing_to_the_demo_repository_tells_conveyor(settings, tmp_path, db, driver, api):
    receiver, server = start_receiver()  # stands in for Conveyor's web server (the edge)
    try:
        settings.CONVEYOR_BASE_URL = receiver.url.rsplit("/", 1)[0]
        settings.VAR_DIR = tmp_path / "var"
        call_command("load_demo", stdout=io.StringIO(), stderr=io.StringIO())
        repo = tmp_path / "var" / "demo" / "app"
        (repo / "README.md").write_text("# Demo shop, changed\n")
        git(repo, "commit", "-qam", "Change the readme")
        assert len(receiver.requests) == 1
        sent = receiver.requests[0]
        response = driver.call(
            api(None).post, sent.path, sent.body, content_type="application/json",
            HTTP_X_CONVEYOR_EVENT="push",
            HTTP_X_HUB_SIGNATURE_256=sent.headers["X-Hub-Signature-256"])
        assert response.status_code == 202, response.json()
        execution = PipelineExecution.objects.get()
        assert execution.source_revision_overrides[0]["revisionValue"] == \
            git(repo, "rev-parse", "HEAD")
    finally:
        server.shutdown()
        server.server_close()
