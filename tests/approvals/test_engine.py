"""Approvals ended by the engine: expiry (frozen time), superseding (docs/semantics.md §10),
stop and abandon."""

from datetime import timedelta

import pytest
import time_machine

from approvals import services
from approvals.errors import ApprovalClosed
from approvals.models import ApprovalRequest
from executions import engine
from executions import services as execution_services
from executions.models import ActionExecution, PipelineExecution
from tests.approvals.conftest import release_pipeline, revision


def decide(release, request, user, status="Approved"):
    return release.call(services.approval_decide, request=request, user=user, status=status,
                        summary="", surface="dashboard")


def test_an_approval_nobody_decides_expires_when_its_timeout_passes(release, alice):
    request = release.to_approval(release_pipeline())
    with time_machine.travel(request.expires_at - timedelta(minutes=1), tick=False):
        assert release.call(engine.sweep).timed_out == 0
    with time_machine.travel(request.expires_at + timedelta(minutes=1), tick=False):
        assert release.call(engine.sweep).timed_out == 1
    request.refresh_from_db()
    assert request.status == "Expired" and request.status_summary == "approval expired"
    ae = request.action_execution
    assert ae.status == "Failed" and ae.summary == "approval expired"
    assert PipelineExecution.objects.get(pk=request.execution_id).status == "Failed"
    with pytest.raises(ApprovalClosed, match="Expired"):
        decide(release, request, alice)


def test_a_decision_after_the_expiry_is_refused_even_before_the_sweeper_runs(release, alice):
    request = release.to_approval(release_pipeline(timeoutInMinutes=30))
    assert request.expires_at - request.action_execution.started_at == timedelta(minutes=30)
    assert services.approval_list(user=alice, status="Pending") == [request]
    with time_machine.travel(request.expires_at + timedelta(seconds=1), tick=False):
        with pytest.raises(ApprovalClosed, match="expired"):
            decide(release, request, alice)
        assert services.approval_list(user=alice, status="Pending") == []
    assert not request.decisions.exists()


def test_a_newer_execution_closes_a_stale_approval_as_superseded_and_takes_the_stage(
    release, alice,
):
    pipeline = release_pipeline()
    stale = release.to_approval(pipeline, commit="01d01d0")
    older = stale.execution
    newer = release.start(pipeline, source_revisions=revision("5ca1ab1e"))
    release.run_action("Source", "Checkout", newer)
    release.run_action("Staging", "DeployStaging", newer)   # arrives at Production

    stale.refresh_from_db()
    newer.refresh_from_db()
    older.refresh_from_db()
    assert stale.status == "Superseded" and stale.superseded_by_id == newer.pk
    assert f"#{newer.number}" in stale.status_summary
    assert str(newer.execution_id) in stale.status_summary
    assert older.status == "Superseded" and older.superseded_by_id == newer.pk
    assert stale.action_execution.status == "Abandoned"
    with pytest.raises(ApprovalClosed, match="Superseded"):
        decide(release, stale, alice)

    # The newer execution entered Production and asks for its own approval.
    release.run_action("Production", "Approve", newer)
    fresh = ApprovalRequest.objects.get(execution=newer)
    assert fresh.status == "Pending" and fresh.revision == "5ca1ab1e"
    decide(release, fresh, alice)
    release.run()
    newer.refresh_from_db()
    assert newer.status == "Succeeded"


def test_supersede_pending_approval_false_keeps_the_older_approval_and_the_newer_waits(
    release, alice,
):
    pipeline = release_pipeline(SupersedePendingApproval="false")
    stale = release.to_approval(pipeline)
    newer = release.start(pipeline, source_revisions=revision("5ca1ab1e"))
    release.run_action("Source", "Checkout", newer)
    release.run_action("Staging", "DeployStaging", newer)
    stale.refresh_from_db()
    newer.refresh_from_db()
    assert stale.status == "Pending"
    assert newer.inbound_stage_name == "Production" and newer.inbound_reason == "StageLocked"
    decide(release, stale, alice)
    release.run_action("Production", "DeployProduction", stale.execution)
    newer.refresh_from_db()
    assert newer.inbound_stage_name == ""   # it entered once the older left


def test_stop_and_abandon_closes_the_request_as_abandoned(release, alice, owner):
    request = release.to_approval(release_pipeline())
    release.call(execution_services.execution_stop, execution=request.execution, abandon=True,
                 reason="Wrong release", user=owner)
    request.refresh_from_db()
    assert request.status == "Abandoned" and "Wrong release" in request.status_summary
    assert ActionExecution.objects.get(pk=request.action_execution_id).status == "Abandoned"
    with pytest.raises(ApprovalClosed, match="Abandoned"):
        decide(release, request, alice)


def test_an_invalid_configuration_known_only_at_start_fails_the_action(release):
    pipeline = release_pipeline(RequiredApprovals="#{SourceVariables.CommitId}")
    ex = release.start(pipeline, source_revisions=revision("abc"))
    release.run()
    ae = ActionExecution.objects.get(execution=ex, action_name="Approve")
    assert ae.status == "Failed"
    assert ae.summary == ('Invalid approval configuration: RequiredApprovals must be a whole '
                          'number, not "abc"')
    assert not ApprovalRequest.objects.exists()


def test_stop_and_wait_closes_the_pending_approval_at_once_and_the_execution_stops(
    release, alice, owner,
):
    """A pending approval waits for people, not for work: stop-and-wait does not wait for it
    (it could hold the stop for days); the request is closed and can no longer be decided."""
    request = release.to_approval(release_pipeline())
    release.call(execution_services.execution_stop, execution=request.execution, abandon=False,
                 reason="Hold on", user=owner)
    request.refresh_from_db()
    assert request.status == "Abandoned" and "Hold on" in request.status_summary
    assert ActionExecution.objects.get(pk=request.action_execution_id).status == "Abandoned"
    with pytest.raises(ApprovalClosed, match="Abandoned"):
        decide(release, request, alice)
    ex = PipelineExecution.objects.get(pk=request.execution_id)
    assert ex.status == "Stopped"
    assert not ActionExecution.objects.filter(execution=ex, action_name="DeployProduction").exists()
