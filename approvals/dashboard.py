"""The Review button of the live dashboard (pipeline, execution and action pages).

``executions`` never imports ``approvals`` (imports point one way), so the
dashboard exposes a hook, ``dashboard.views.review_hooks``, and this module
fills it when the URLconf includes it: for the waiting Manual approval actions
on a page, it answers which ones the signed-in user may decide and where the
Review form posts. The POST goes through ``approvals.services.approval_decide``
(surface "dashboard") and returns to the page it came from with a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from approvals import services
from approvals.choices import ApprovalStatus, DecisionSurface
from approvals.errors import ApprovalError
from approvals.models import ApprovalRequest
from dashboard import views as dashboard


def review_hook(request, action_executions) -> dict[int, dict]:
    """{action execution pk: review form} for the pending approvals this user may decide."""
    waiting = [ae.pk for ae in action_executions
               if ae is not None and ae.category == "Approval" and ae.status == "InProgress"]
    user = request.user
    if not waiting or not user.has_perm(services.DECIDE_PERMISSION):
        return {}
    found = {}
    for approval in (ApprovalRequest.objects.filter(action_execution_id__in=waiting,
                                                    status=ApprovalStatus.PENDING)
                     .select_related("execution")):
        if services.approval_may_decide(request=approval, user=user):
            found[approval.action_execution_id] = {
                "url": reverse("dashboard-review", args=[approval.pk]),
                "label": f"{approval.stage_name} / {approval.action_name}",
                "detail": approval.custom_data,
            }
    return found


if review_hook not in dashboard.review_hooks:
    dashboard.review_hooks.append(review_hook)


@login_required
@require_POST
def review(request, pk):
    """Approve or Reject from a dashboard page, then back to that page."""
    target = dashboard.safe_next(request, reverse("home"))
    try:
        approval = services.approval_get(approval_id=pk, user=request.user)
        services.approval_decide(request=approval, user=request.user,
                                 status=request.POST.get("status", ""),
                                 summary=request.POST.get("summary", ""),
                                 surface=DecisionSurface.DASHBOARD)
    except ApprovalError as exc:
        messages.error(request, exc.detail)
        return redirect(target)
    approval.refresh_from_db()
    where = f"{approval.stage_name} / {approval.action_name}"
    if approval.status == ApprovalStatus.PENDING:
        messages.success(request, f"Your approval of {where} is recorded; it needs "
                                  f"{approval.required_approvals} in all.")
    else:
        messages.success(request, f"{where}: {approval.status}.")
    return redirect(target)


urlpatterns = [
    path("approvals/<uuid:pk>/review/", review, name="dashboard-review"),
]
