"""The approvals REST API: the caller's approvals, and deciding one (201, 403, 409, 404, 400)."""

from __future__ import annotations

import uuid

from tests.approvals.conftest import release_pipeline


def test_a_reviewer_lists_their_pending_approvals_in_the_design_shape(release, api, alice):
    request = release.to_approval(release_pipeline(ExternalEntityLink="https://ci.example.com/7"),
                                  commit="5ca1ab1e")
    response = api(alice).get("/api/approvals/?status=Pending")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    item = body["results"][0]
    assert {"id", "pipelineName", "stageName", "actionName", "pipelineExecutionId",
            "customData", "externalEntityLink", "revision", "status", "expiresAt",
            "decisions"} <= set(item)
    assert item["id"] == str(request.pk)
    assert (item["pipelineName"], item["stageName"], item["actionName"]) == (
        "shop", "Production", "Approve")
    assert item["pipelineExecutionId"] == str(request.execution.execution_id)
    assert item["customData"] == "Ship 5ca1ab1e to production?"
    assert item["externalEntityLink"] == "https://ci.example.com/7"
    assert item["revision"] == "5ca1ab1e"
    assert item["status"] == "Pending" and item["decisions"] == []
    assert item["expiresAt"] == request.expires_at.isoformat().replace("+00:00", "Z")


def test_someone_who_may_decide_nothing_gets_an_empty_list(release, api, mallory, viewer):
    release.to_approval(release_pipeline())
    for user in (mallory, viewer):
        assert api(user).get("/api/approvals/?status=Pending").json()["count"] == 0


def test_an_anonymous_caller_gets_401(api):
    assert api().get("/api/approvals/").status_code == 401


def test_an_unknown_status_filter_is_a_400_in_the_one_error_body(api, alice):
    response = api(alice).get("/api/approvals/?status=Maybe")
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["path"] == "status"
    assert body["detail"].startswith('status: "Maybe" is not a status')


def test_posting_a_decision_answers_201_with_the_approval_and_its_decision(release, api, alice):
    request = release.to_approval(release_pipeline())
    response = api(alice).post(f"/api/approvals/{request.pk}/decision/",
                               {"status": "Approved", "summary": "LGTM"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "Approved" and body["statusSummary"] == "Approved by alice: LGTM"
    [decision] = body["decisions"]
    assert (decision["user"], decision["status"], decision["summary"], decision["surface"]) == (
        "alice", "Approved", "LGTM", "api")
    assert api(alice).get("/api/approvals/?status=Approved").json()["count"] == 1


def test_a_non_reviewer_gets_403_and_nothing_changes(release, api, mallory):
    request = release.to_approval(release_pipeline())
    response = api(mallory).post(f"/api/approvals/{request.pk}/decision/",
                                 {"status": "Approved"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": response.json()["detail"]}
    assert "not a reviewer" in response.json()["detail"]
    request.refresh_from_db()
    assert request.status == "Pending" and not request.decisions.exists()


def test_a_reviewer_outside_the_named_reviewers_gets_403(release, api, alice):
    request = release.to_approval(release_pipeline(Reviewers="group:release-managers"))
    response = api(alice).post(f"/api/approvals/{request.pk}/decision/",
                               {"status": "Rejected"}, format="json")
    assert response.status_code == 403
    assert response.json()["detail"] == "Only group:release-managers may decide this approval."


def test_approving_ones_own_execution_gets_403(release, api, alice):
    request = release.to_approval(release_pipeline(), user=alice)
    response = api(alice).post(f"/api/approvals/{request.pk}/decision/",
                               {"status": "Approved"}, format="json")
    assert response.status_code == 403 and "AllowSelfApproval" in response.json()["detail"]


def test_deciding_a_closed_approval_gets_409(release, api, alice, bob):
    request = release.to_approval(release_pipeline())
    api(alice).post(f"/api/approvals/{request.pk}/decision/", {"status": "Rejected",
                                                               "summary": "no"}, format="json")
    response = api(bob).post(f"/api/approvals/{request.pk}/decision/",
                             {"status": "Approved"}, format="json")
    assert response.status_code == 409
    assert response.json() == {"detail": "This approval is closed (Rejected: no)."}


def test_a_bad_status_is_400_and_an_unknown_id_404(release, api, alice):
    request = release.to_approval(release_pipeline())
    response = api(alice).post(f"/api/approvals/{request.pk}/decision/", {"status": "Maybe"},
                               format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "status"
    response = api(alice).post(f"/api/approvals/{uuid.uuid4()}/decision/",
                               {"status": "Approved"}, format="json")
    assert response.status_code == 404


def test_the_schema_describes_the_approvals_endpoints(api, alice):
    response = api(alice).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    schema = response.json()
    assert {"/api/approvals/", "/api/approvals/{id}/decision/"} <= set(schema["paths"])
    approval = schema["components"]["schemas"]["Approval"]["properties"]
    assert {"pipelineExecutionId", "customData", "expiresAt", "decisions"} <= set(approval)
    assert schema["components"]["schemas"]["ApprovalStatusEnum"]["enum"] == [
        "Pending", "Approved", "Rejected", "Expired", "Superseded", "Abandoned"]
