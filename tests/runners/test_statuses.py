"""Commit statuses to GitHub, GitLab and Gitea.

A local HTTP server (``receiver``) stands in for each forge's REST API; the
requests it records are checked against what each forge documents.
"""

import pytest
from django.utils import timezone

from executions.models import PipelineExecution
from pipelines.models import CommitStatusTarget
from tests.executions.conftest import sim, simple_pipeline
from tests.runners.receiver import start_receiver
from triggers import queue as tasks
from triggers import statuses
from triggers.models import CommitStatusReport

SHA = "3" * 40


@pytest.fixture
def forge():
    r, server = start_receiver()
    r.answer = (201, {"state": "ok"}, {})
    yield r
    server.shutdown()


@pytest.fixture
def syncs(monkeypatch, settings):
    """The status syncs the engine queued (django-q2 stands aside); retries recorded."""
    queued, retries = [], []
    monkeypatch.setattr(tasks, "enqueue", lambda name, ids: queued.append(ids))
    monkeypatch.setattr(tasks, "retry_at", lambda ids, when: retries.append((ids, when)))
    statuses._targets_cache.clear()
    settings.CONVEYOR_BASE_URL = "https://conveyor.example.com"

    class Syncs:
        def run(self):
            while queued:
                statuses.statuses_sync(execution_ids=queued.pop(0))

    s = Syncs()
    s.queued, s.retries = queued, retries
    yield s
    statuses._targets_cache.clear()


def target(pipeline, forge, provider="GitHub", repository="acme/app", per_stage=False):
    return CommitStatusTarget.objects.create(
        pipeline=pipeline, provider=provider, api_url=forge.url, repository=repository,
        token="t0ken", per_stage=per_stage)


def start(driver, pipeline):
    return driver.start(pipeline, source_revisions=[
        {"actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": SHA}])


def test_github_gets_pending_then_success_with_a_link_to_the_execution(db, driver, syncs,
                                                                       forge):
    pipeline = simple_pipeline("shop")
    target(pipeline, forge)
    start(driver, pipeline)
    syncs.run()
    driver.run()
    syncs.run()
    states = [r.json["state"] for r in forge.requests]
    assert states == ["pending", "success"]
    first = forge.requests[0]
    assert first.path == f"/conveyor/repos/acme/app/statuses/{SHA}"
    assert first.headers["Authorization"] == "Bearer t0ken"
    assert first.json["context"] == "conveyor/shop"
    assert first.json["target_url"] == "https://conveyor.example.com/pipelines/shop/executions/1/"


def test_gitlab_gets_its_own_states_and_the_project_path_encoded(db, driver, syncs, forge):
    pipeline = simple_pipeline("shop", stages=[("Build", [sim("Compile",
                                                              Outcome="Failed")])])
    target(pipeline, forge, provider="GitLab", repository="acme/team/app", per_stage=True)
    start(driver, pipeline)
    driver.run()
    syncs.run()
    by_context = {r.json["name"]: r for r in forge.requests}
    assert by_context["conveyor/shop"].json["state"] == "failed"
    assert by_context["conveyor/shop/Build"].json["state"] == "failed"
    assert by_context["conveyor/shop/Source"].json["state"] == "success"
    assert by_context["conveyor/shop"].path == \
        f"/conveyor/projects/acme%2Fteam%2Fapp/statuses/{SHA}"
    assert by_context["conveyor/shop"].headers["Private-Token"] == "t0ken"


def test_gitea_gets_error_for_a_stopped_execution(db, driver, syncs, forge):
    from executions import services

    pipeline = simple_pipeline("shop")
    target(pipeline, forge, provider="Gitea")
    execution = start(driver, pipeline)
    driver.call(services.execution_stop, execution=execution, abandon=True, reason="no")
    syncs.run()
    (request,) = forge.requests
    assert request.json["state"] == "error"
    assert request.headers["Authorization"] == "token t0ken"
    assert request.path == f"/conveyor/repos/acme/app/statuses/{SHA}"


def test_a_forge_refusing_is_logged_and_retried_and_the_execution_still_succeeds(
        db, driver, syncs, forge, caplog):
    forge.answer = (401, {"message": "Bad credentials"}, {})
    pipeline = simple_pipeline("shop")
    target(pipeline, forge)
    execution = start(driver, pipeline)
    driver.run()
    syncs.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    report = CommitStatusReport.objects.get()
    assert report.wanted_state == "success" and report.reported_state == ""
    assert report.last_answer == 'HTTP 401: {"message": "Bad credentials"}'
    assert "Bad credentials" in caplog.text
    assert syncs.retries and syncs.retries[0][0] == [execution.pk]
    # The retry, once the forge is back, reports it; a repeated sync sends nothing more.
    forge.answer = (201, {}, {})
    assert statuses.statuses_sync(execution_ids=[execution.pk]) == []  # not due yet
    CommitStatusReport.objects.update(next_attempt_at=timezone.now())
    statuses.statuses_sync(execution_ids=[execution.pk])
    statuses.statuses_sync(execution_ids=[execution.pk])
    report.refresh_from_db()
    assert report.reported_state == "success"
    assert [r.json["state"] for r in forge.requests] == ["success", "success"]


def test_a_pipeline_without_a_target_queues_nothing(db, driver, syncs):
    start(driver, simple_pipeline("quiet"))
    driver.run()
    assert syncs.queued == []
    assert PipelineExecution.objects.get().status == "Succeeded"


def test_the_forge_token_is_stored_sealed_and_never_shown_back_in_the_admin(db, client, forge):
    pipeline = simple_pipeline("shop")
    row = target(pipeline, forge)
    stored = CommitStatusTarget.objects.values_list("token", flat=True).get(pk=row.pk)
    assert "t0ken" not in stored and stored.startswith("conveyor:sealed:")
    assert CommitStatusTarget.objects.get(pk=row.pk).token_value == "t0ken"
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("root", "r@example.com", "x-Long-pass-1"))
    page = client.get(f"/admin/pipelines/commitstatustarget/{row.pk}/change/").content.decode()
    assert "t0ken" not in page and stored not in page
