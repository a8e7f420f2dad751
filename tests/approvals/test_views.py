"""The inbox page and the signed links a notification email carries."""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta

import time_machine
from django.test import Client

from approvals import services
from approvals.models import ApprovalLink
from executions import services as execution_services
from executions.models import PipelineExecution
from pipelines.services import pipeline_save
from tests.approvals.conftest import manual, release_pipeline
from tests.executions.conftest import sim
from tests.factories import action, definition

BASE = "https://conveyor.example.com"


def links_for(mailoutbox, user) -> dict[str, str]:
    """{"Approve": path, "Reject": path} from the email sent to ``user``."""
    email = next(m for m in mailoutbox if m.to == [user.email])
    return {kind: url.removeprefix(BASE)
            for kind, url in re.findall(r"^(Approve|Reject): (\S+)$", email.body, re.M)}


# --- the inbox ----------------------------------------------------------------------


def test_the_inbox_shows_each_pending_approval_with_its_message_revision_and_changes(
    release, client, alice,
):
    pipeline = release_pipeline()
    deployed = release.to_approval(pipeline, commit="aaaa111")
    release.call(services.approval_decide,
                 request=deployed, user=alice, status="Approved", surface="api")
    release.run()                                   # #1 reaches production
    skipped = release.start(pipeline, source_revisions=[
        {"actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": "bbbb222"}])
    release.run_action("Source", "Checkout", skipped)
    release.call(execution_services.execution_stop,
                 execution=skipped, abandon=True, reason="not this one", user=None)
    waiting = release.to_approval(pipeline, commit="cccc333")

    client.force_login(alice)
    page = client.get("/approvals/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'id="approval-{waiting.pk}"' in html and f'id="approval-{deployed.pk}"' not in html
    assert "Ship cccc333 to production?" in html
    assert "<code>cccc333</code> Simulated revision" in html
    changes = html[html.index("Changed since the last deploy"):]
    assert "Last deployed: execution #1" in changes and "aaaa111" in changes
    assert changes.index("cccc333") < changes.index("bbbb222")   # newest first
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'value="Approved"' in html and 'value="Rejected"' in html
    assert 'href="/approvals/"' in html                               # the nav link


def test_approving_from_the_inbox_posts_with_csrf_and_says_what_happened(release, alice):
    request = release.to_approval(release_pipeline())
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    url = f"/approvals/{request.pk}/decide/"
    assert browser.post(url, {"status": "Approved"}).status_code == 403   # no CSRF token
    page = browser.get("/approvals/")
    token = page.cookies["csrftoken"].value
    response = browser.post(url, {"status": "Approved", "summary": "Ship it",
                                  "csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response.url == "/approvals/"
    request.refresh_from_db()
    assert request.status == "Approved"
    decision = request.decisions.get()
    assert (decision.surface, decision.summary) == ("dashboard", "Ship it")
    after = browser.get("/approvals/").content.decode()
    assert "shop / Production / Approve: Approved." in after
    assert "Nothing waits for your approval." in after


def test_the_inbox_refuses_a_self_approval_and_a_non_reviewer(release, client, alice, mallory):
    request = release.to_approval(release_pipeline(), user=alice)
    client.force_login(alice)
    html = client.get("/approvals/").content.decode()
    assert 'value="Approved" class="approve" disabled' in html
    response = client.post(f"/approvals/{request.pk}/decide/", {"status": "Approved"})
    assert response.status_code == 403
    assert "AllowSelfApproval is false" in response.content.decode()
    client.force_login(mallory)
    assert "You are not a reviewer" in client.get("/approvals/").content.decode()
    assert client.post(f"/approvals/{request.pk}/decide/",
                       {"status": "Rejected"}).status_code == 403
    request.refresh_from_db()
    assert request.status == "Pending"


def test_deciding_a_closed_approval_from_the_inbox_answers_409(release, client, alice, bob):
    request = release.to_approval(release_pipeline())
    client.force_login(alice)
    client.post(f"/approvals/{request.pk}/decide/", {"status": "Approved"})
    client.force_login(bob)
    response = client.post(f"/approvals/{request.pk}/decide/", {"status": "Rejected"})
    assert response.status_code == 409 and "closed (Approved" in response.content.decode()


def test_the_inbox_needs_a_signed_in_user(client):
    response = client.get("/approvals/")
    assert response.status_code == 302 and response.url.startswith("/login/")


# --- signed links -------------------------------------------------------------------


def test_opening_a_signed_link_shows_a_confirmation_and_decides_nothing(
    release, client, mailoutbox, alice,
):
    request = release.to_approval(release_pipeline())
    approve = links_for(mailoutbox, alice)["Approve"]
    client.force_login(alice)
    page = client.get(approve)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Confirm: approve shop / Production / Approve" in html
    assert "Ship c0ffee1 to production?" in html
    request.refresh_from_db()
    assert request.status == "Pending" and not request.decisions.exists()
    assert ApprovalLink.objects.get(user=alice).used_at is None


def test_confirming_a_signed_link_decides_once_and_the_link_is_then_used(
    release, client, mailoutbox, alice,
):
    request = release.to_approval(release_pipeline(RequiredApprovals="2"))
    links = links_for(mailoutbox, alice)
    client.force_login(alice)
    response = client.post(links["Approve"], {"summary": "From my phone"})
    assert response.status_code == 302 and response.url == "/approvals/"
    decision = request.decisions.get()
    assert (decision.username, decision.status, decision.surface, decision.summary) == (
        "alice", "Approved", "link", "From my phone")
    # Single use: the same link, and its Reject twin, are spent.
    for kind in ("Approve", "Reject"):
        again = client.post(links[kind])
        assert again.status_code == 409 and "already used" in again.content.decode()
    assert client.get(links["Approve"]).status_code == 409
    assert request.decisions.count() == 1


def test_a_reject_link_rejects_with_the_summary(release, client, mailoutbox, alice):
    request = release.to_approval(release_pipeline())
    client.force_login(alice)
    client.post(links_for(mailoutbox, alice)["Reject"], {"summary": "Not on a Friday"})
    request.refresh_from_db()
    assert request.status == "Rejected"
    assert request.action_execution.summary == "Not on a Friday"
    assert PipelineExecution.objects.get(pk=request.execution_id).status == "Failed"


def test_a_signed_link_expires_with_its_approval(release, client, mailoutbox, alice):
    request = release.to_approval(release_pipeline(timeoutInMinutes=60))
    approve = links_for(mailoutbox, alice)["Approve"]
    client.force_login(alice)
    with time_machine.travel(request.expires_at + timedelta(seconds=1), tick=False):
        page = client.get(approve)
        assert page.status_code == 410 and "This link has expired." in page.content.decode()
        assert client.post(approve).status_code == 410
    assert not request.decisions.exists()


def test_a_signed_link_expires_after_its_max_age_even_if_the_approval_waits_longer(
    release, client, mailoutbox, alice, settings,
):
    settings.CONVEYOR_APPROVAL_LINK_MAX_AGE = 3600
    request = release.to_approval(release_pipeline())          # waits 7 days
    approve = links_for(mailoutbox, alice)["Approve"]
    client.force_login(alice)
    with time_machine.travel(request.created_at + timedelta(minutes=61), tick=False):
        assert client.get(approve).status_code == 410
    with time_machine.travel(request.created_at + timedelta(minutes=59), tick=False):
        assert client.get(approve).status_code == 200


def test_a_signed_link_works_only_for_its_reviewer(release, client, mailoutbox, alice, bob):
    request = release.to_approval(release_pipeline())
    approve = links_for(mailoutbox, alice)["Approve"]
    client.force_login(bob)
    for response in (client.get(approve), client.post(approve)):
        assert response.status_code == 403
        assert "sent to another reviewer" in response.content.decode()
    assert not request.decisions.exists()


def test_an_altered_signed_link_is_refused(release, client, mailoutbox, alice):
    request = release.to_approval(release_pipeline())
    approve = links_for(mailoutbox, alice)["Approve"]
    signed = approve.split("/")[-2]
    forged = approve.replace(signed, signed.replace(":", ":x", 1))
    client.force_login(alice)
    assert client.post(forged).status_code == 400
    assert not request.decisions.exists()


def test_a_signed_link_asks_an_anonymous_visitor_to_sign_in(release, client, mailoutbox, alice):
    release.to_approval(release_pipeline())
    approve = links_for(mailoutbox, alice)["Approve"]
    response = client.get(approve)
    assert response.status_code == 302 and response.url.startswith("/login/?next=")


def _commit(repo, message: str) -> str:
    (repo / "app.txt").write_text(message)
    env = {"GIT_AUTHOR_NAME": "Dana Dev", "GIT_AUTHOR_EMAIL": "dana@example.com",
           "GIT_COMMITTER_NAME": "Dana Dev", "GIT_COMMITTER_EMAIL": "dana@example.com",
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "add", "."], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", message], cwd=repo, check=True, env=env)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, env=env,
                          capture_output=True, text=True).stdout.strip()


def test_the_inbox_lists_the_commits_since_the_deployed_one_for_a_local_git_source(
    release, client, alice, tmp_path,
):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    deployed_sha = _commit(repo, "First release")
    _commit(repo, "Add the checkout page")
    head_sha = _commit(repo, "Fix the price rounding")
    pipeline = pipeline_save(document=definition("shop", stages=[
        ("Source", [action("Checkout", "Source", "Git", namespace="SourceVariables",
                           outputArtifacts=[{"name": "Src"}],
                           configuration={"RepositoryUrl": str(repo), "BranchName": "main"})]),
        ("Production", [manual(CustomData="#{SourceVariables.CommitMessage}"),
                        sim("DeployProduction", "Deploy", runOrder=2)]),
    ])).pipeline

    first = release.start(pipeline, source_revisions=[
        {"actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": deployed_sha}])
    release.run_action("Source", "Checkout", first)
    release.run_action("Production", "Approve", first)
    release.call(services.approval_decide, request=first.approval_requests.get(), user=alice,
                 status="Approved", surface="api")
    release.run()
    second = release.start(pipeline)
    release.run_action("Source", "Checkout", second)
    release.run_action("Production", "Approve", second)
    request = second.approval_requests.get()
    assert request.revision == head_sha and request.custom_data == "Fix the price rounding"

    client.force_login(alice)
    html = client.get("/approvals/").content.decode()
    changes = html[html.index("Changed since the last deploy"):]
    assert "Add the checkout page" in changes and "Fix the price rounding" in changes
    assert changes.index("Fix the price rounding") < changes.index("Add the checkout page")
    assert "First release" not in changes and "(Dana Dev)" in changes
