"""The Review button of the live dashboard (pipeline, execution and action pages).

The dashboard sits above approvals and imports them: for the waiting Manual
approval actions on a page, ``review_forms`` answers which ones the signed-in user
may decide and where the Review form posts (``dashboard.views.review``, which goes
through ``approvals.services.approval_decide`` with surface "dashboard").
"""

from __future__ import annotations

from django.urls import reverse

from approvals import services
from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest
from teams.access import visible_group_ids
from teams.choices import Act


def review_forms(request, action_executions) -> dict[int, dict]:
    """{action execution pk: review form} for the pending approvals this user may decide."""
    waiting = [ae.pk for ae in action_executions
               if ae is not None and ae.category == "Approval" and ae.status == "InProgress"]
    user = request.user
    if not waiting or visible_group_ids(user, Act.REVIEW) == set():
        return {}
    found = {}
    for approval in (ApprovalRequest.objects.filter(action_execution_id__in=waiting,
                                                    status=ApprovalStatus.PENDING)
                     .select_related("execution__pipeline__group")):
        if services.approval_may_decide(request=approval, user=user):
            found[approval.action_execution_id] = {
                "url": reverse("dashboard-review", args=[approval.pk]),
                "label": f"{approval.stage_name} / {approval.action_name}",
                "detail": approval.custom_data,
            }
    return found

