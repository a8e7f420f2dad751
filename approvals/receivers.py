"""Listeners of the engine's signals (sent after the engine's transaction commits), and
of ``approval_requested`` (a new request's notifications are queued).

``executions`` never imports ``approvals``: it announces ended and abandoned
actions, and these receivers close the pending request of a Manual approval
that ended without a decision (timeout, stop and abandon, docs/semantics.md §10).
"""

from django.dispatch import receiver

from approvals import services, tasks
from approvals import signals as approval_signals
from executions import signals


def _is_manual_approval(action_execution) -> bool:
    return action_execution.category == "Approval" and action_execution.provider == "Manual"


@receiver(signals.action_abandoned, dispatch_uid="approvals.action_abandoned")
def close_abandoned_approval(sender, action_execution, reason, superseded_by=None, **kwargs):
    """Stop-and-abandon → Abandoned; a newer execution → Superseded, naming it
    (docs/semantics.md §10)."""
    if _is_manual_approval(action_execution):
        services.approval_close_for_action(
            action_execution=action_execution, status=action_execution.status, summary=reason,
            superseded_by=superseded_by)


@receiver(signals.action_ended, dispatch_uid="approvals.action_ended")
def close_ended_approval(sender, action_execution, status, summary, **kwargs):
    """Any other end without a decision: the timeout ("approval expired") → Expired."""
    if _is_manual_approval(action_execution):
        services.approval_close_for_action(
            action_execution=action_execution, status=status, summary=summary)


@receiver(approval_signals.approval_requested, dispatch_uid="approvals.approval_requested")
def notify_requested_approval(sender, request_pk, **kwargs):
    """Email the reviewers and post the webhook of a new request (a task, off the request)."""
    tasks.enqueue("approval_notify", request_pk)
