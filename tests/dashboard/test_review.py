"""The Review button: reviewers approve or reject from the dashboard; others see no button."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest
from tests.approvals.conftest import release_pipeline

pytestmark = pytest.mark.django_db


def pages(approval) -> list[str]:
    name, number = approval.pipeline_name, approval.execution.number
    return [f"/pipelines/{name}/", f"/pipelines/{name}/executions/{number}/",
            f"/pipelines/{name}/executions/{number}/stages/Production/actions/Approve/"]


def test_a_reviewer_approves_from_the_pipeline_page_and_the_release_goes_on(
        client, release, alice):
    pipeline = release_pipeline()
    approval = release.to_approval(pipeline)
    client.force_login(alice)
    for url in pages(approval):
        body = client.get(url).content.decode()
        assert f'action="/approvals/{approval.pk}/review/"' in body, url
    with release.capture(execute=True):
        response = client.post(f"/approvals/{approval.pk}/review/", {
            "status": "Approved", "summary": "Checked staging", "next": pages(approval)[0]})
    assert response.status_code == 302 and response["Location"] == pages(approval)[0]
    release.run()
    approval.refresh_from_db()
    approval.execution.refresh_from_db()
    assert approval.status == "Approved" and approval.execution.status == "Succeeded"
    assert "Production / Approve: Approved." in client.get(pages(approval)[0]).content.decode()


def test_a_non_reviewer_has_no_review_button_and_cannot_decide_by_posting(
        client, release, mallory):
    pipeline = release_pipeline()
    approval = release.to_approval(pipeline)
    client.force_login(mallory)
    for url in pages(approval):
        body = client.get(url).content.decode()
        assert "/review/" not in body and "Approve</button>" not in body, url
    response = client.post(f"/approvals/{approval.pk}/review/",
                           {"status": "Approved", "next": pages(approval)[0]}, follow=True)
    assert "You are not a reviewer" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "Pending"
