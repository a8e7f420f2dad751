"""Deciding approvals: N of M, rejection, who may decide, closed requests, the AWS token."""

import pytest

from approvals import services
from approvals.errors import ApprovalClosed, ApprovalForbidden, ApprovalInvalid, ApprovalNotFound
from approvals.models import ApprovalDecision, ApprovalRequest
from executions import selectors
from executions.models import ActionExecution, PipelineExecution
from tests.approvals.conftest import release_pipeline


def decide(release, request, user, status="Approved", summary="", surface="api"):
    return release.call(services.approval_decide, request=request, user=user, status=status,
                        summary=summary, surface=surface)


def test_a_waiting_approval_opens_a_request_with_the_message_resolved_and_the_revision(
    release, alice,
):
    request = release.to_approval(release_pipeline(), commit="5ca1ab1e")
    assert request.status == "Pending"
    assert request.custom_data == "Ship 5ca1ab1e to production?"
    assert request.revision == "5ca1ab1e"
    assert (request.pipeline_name, request.stage_name, request.action_name) == (
        "shop", "Production", "Approve")
    ae = request.action_execution
    assert ae.status == "InProgress" and ae.waiting_since is not None
    # The token PutApprovalResult presents is the one GetPipelineState shows.
    state = selectors.pipeline_state(request.execution.pipeline)
    production = next(s for s in state["stageStates"] if s["stageName"] == "Production")
    assert production["actionStates"][0]["latestExecution"]["token"] == request.token
    assert ae.summary == "Waiting for 1 approval from any reviewer"


def test_an_approval_without_a_timeout_waits_seven_days(release, alice):
    request = release.to_approval(release_pipeline())
    ae = request.action_execution
    assert ae.timeout_minutes == 10080
    assert (ae.deadline_at - ae.started_at).total_seconds() == 7 * 24 * 3600
    assert request.expires_at == ae.deadline_at


def test_one_approval_of_one_succeeds_the_action_and_the_execution_goes_on(release, alice):
    request = release.to_approval(release_pipeline())
    decision = decide(release, request, alice, summary="Looks good")
    assert (decision.username, decision.status, decision.surface) == ("alice", "Approved", "api")
    request.refresh_from_db()
    assert request.status == "Approved" and request.closed_at is not None
    ae = ActionExecution.objects.get(pk=request.action_execution_id)
    assert ae.status == "Succeeded" and ae.summary == "Approved by alice: Looks good"
    release.run()
    assert PipelineExecution.objects.get(pk=request.execution_id).status == "Succeeded"


def test_two_of_three_needs_two_different_reviewers(release, alice, bob, carol):
    request = release.to_approval(
        release_pipeline(Reviewers="alice,bob,carol", RequiredApprovals="2"))
    decide(release, request, alice)
    request.refresh_from_db()
    assert request.status == "Pending"
    assert ActionExecution.objects.get(pk=request.action_execution_id).status == "InProgress"
    with pytest.raises(ApprovalClosed, match="already approved"):
        decide(release, request, alice)
    decide(release, request, carol, summary="ok")
    request.refresh_from_db()
    assert request.status == "Approved"
    assert request.action_execution.summary == "Approved by alice, carol: ok"
    with pytest.raises(ApprovalClosed, match=r"closed \(Approved"):
        decide(release, request, bob)
    assert ApprovalDecision.objects.filter(request=request).count() == 2


def test_one_rejection_fails_the_action_with_the_reviewers_summary(release, alice, bob):
    request = release.to_approval(
        release_pipeline(Reviewers="alice,bob", RequiredApprovals="2"))
    decide(release, request, alice)
    decide(release, request, bob, "Rejected", "The migration is not reversible")
    request.refresh_from_db()
    assert request.status == "Rejected"
    ae = request.action_execution
    assert ae.status == "Failed" and ae.summary == "The migration is not reversible"
    ex = PipelineExecution.objects.get(pk=request.execution_id)
    assert ex.status == "Failed"
    assert "The migration is not reversible" in ex.status_summary
    assert not ActionExecution.objects.filter(action_name="DeployProduction").exists()


def test_the_person_who_started_the_execution_may_not_approve_it_but_may_reject_it(
    release, alice,
):
    request = release.to_approval(release_pipeline(), user=alice)
    with pytest.raises(ApprovalForbidden, match="AllowSelfApproval is false"):
        decide(release, request, alice)
    assert not ApprovalDecision.objects.exists()
    decide(release, request, alice, "Rejected", "Wrong branch")
    request.refresh_from_db()
    assert request.status == "Rejected"


def test_allow_self_approval_lets_the_starter_approve(release, alice):
    request = release.to_approval(release_pipeline(AllowSelfApproval="true"), user=alice)
    decide(release, request, alice)
    request.refresh_from_db()
    assert request.status == "Approved"


def test_someone_without_the_decide_permission_is_refused_and_nothing_changes(
    release, mallory, owner,
):
    request = release.to_approval(release_pipeline())
    for user in (mallory, owner):
        with pytest.raises(ApprovalForbidden, match="not a reviewer"):
            decide(release, request, user)
    request.refresh_from_db()
    assert request.status == "Pending" and not request.decisions.exists()
    assert request.action_execution.status == "InProgress"


def test_reviewers_narrows_deciding_to_the_named_users_and_groups(release, alice, bob, carol):
    request = release.to_approval(release_pipeline(Reviewers="bob,group:release-managers",
                                                   RequiredApprovals="2"))
    with pytest.raises(ApprovalForbidden, match="Only bob, group:release-managers"):
        decide(release, request, alice)
    decide(release, request, carol)  # through the group
    decide(release, request, bob)    # by name
    request.refresh_from_db()
    assert request.status == "Approved"


def test_a_decision_must_be_approved_or_rejected(release, alice):
    request = release.to_approval(release_pipeline())
    with pytest.raises(ApprovalInvalid):
        decide(release, request, alice, "Maybe")


def test_decisions_are_immutable(release, alice):
    request = release.to_approval(release_pipeline())
    decision = decide(release, request, alice)
    decision.summary = "changed my mind"
    with pytest.raises(ValueError, match="immutable"):
        decision.save()
    with pytest.raises(ValueError, match="immutable"):
        decision.delete()


def test_put_approval_result_decides_by_token_and_refuses_a_wrong_one(release, alice):
    request = release.to_approval(release_pipeline())
    with pytest.raises(ApprovalNotFound):
        release.call(services.approval_decide_by_token, pipeline_name="shop",
                     stage_name="Production", action_name="Approve", token="wrong",
                     user=alice, status="Approved")
    decision = release.call(services.approval_decide_by_token, pipeline_name="shop",
                            stage_name="Production", action_name="Approve",
                            token=request.token, user=alice, status="Approved",
                            summary="via boto3")
    assert decision.surface == "aws"
    with pytest.raises(ApprovalClosed):
        release.call(services.approval_decide_by_token, pipeline_name="shop",
                     stage_name="Production", action_name="Approve", token=request.token,
                     user=alice, status="Rejected")


def test_a_decision_arriving_after_the_action_ended_records_nothing(release, alice, owner):
    """The engine ended the action a moment before the request was closed (its signal lags)."""
    request = release.to_approval(release_pipeline())
    # Ended from outside behind the approvals app's back, with its signal lost.
    ActionExecution.objects.filter(pk=request.action_execution_id).update(
        status="Abandoned", summary="Stopped by olivia")
    with pytest.raises(ApprovalClosed, match="Abandoned"):
        decide(release, request, alice)
    request.refresh_from_db()
    assert request.status == "Abandoned" and not request.decisions.exists()


def test_the_list_shows_a_reviewer_the_pending_approvals_they_may_decide(
    release, alice, bob, carol, mallory,
):
    anyone = release.to_approval(release_pipeline("shop"))
    managers = release.to_approval(release_pipeline("bank", Reviewers="group:release-managers"))
    assert [r.pk for r in services.approval_list(user=alice, status="Pending")] == [anyone.pk]
    assert [r.pk for r in services.approval_list(user=carol, status="Pending")] == [
        managers.pk, anyone.pk]
    assert services.approval_list(user=mallory, status="Pending") == []
    decide(release, anyone, bob)
    assert services.approval_list(user=alice, status="Pending") == []
    assert [r.pk for r in services.approval_list(user=alice, status="Approved")] == [anyone.pk]


def test_a_request_is_opened_once_per_action_execution(release, alice):
    request = release.to_approval(release_pipeline())
    from approvals.configuration import parse

    again = services.approval_request_open(
        action_execution=request.action_execution, config=parse({}), token="other")
    assert again.pk == request.pk and ApprovalRequest.objects.count() == 1
