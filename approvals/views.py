"""The approvals inbox and the signed-link confirmation page (server-rendered).

Thin views: every decision goes through ``approvals.services``. Opening a
signed link only shows what it would do; the reviewer confirms with a POST.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from approvals import services
from approvals.choices import ApprovalStatus, DecisionStatus, DecisionSurface
from approvals.errors import (
    ApprovalClosed,
    ApprovalError,
    ApprovalForbidden,
    ApprovalInvalid,
    ApprovalLinkInvalid,
    ApprovalNotFound,
)
from teams.access import visible_group_ids
from teams.choices import Act

HTTP_STATUS = {ApprovalForbidden: 403, ApprovalClosed: 409, ApprovalNotFound: 404,
               ApprovalInvalid: 400}
NOTICE_KEY = "approvals.notice"
LINK_STATUS = {"forged": 400, "not_yours": 403, "used": 409, "expired": 410}


def _status_of(exc: ApprovalError) -> int:
    if isinstance(exc, ApprovalLinkInvalid):
        return LINK_STATUS.get(exc.reason, 400)
    return next((code for cls, code in HTTP_STATUS.items() if isinstance(exc, cls)), 400)


def approval_card(approval, user) -> dict:
    """What the inbox shows of one request (also used by the link page)."""
    return {
        "approval": approval,
        "changes": services.approval_changes(request=approval),
        "decisions": list(approval.decisions.all()),
        "approvals_given": sum(1 for d in approval.decisions.all()
                               if d.status == DecisionStatus.APPROVED),
        "approve_refusal": services.approval_refusal(request=approval, user=user,
                                                     status=DecisionStatus.APPROVED),
    }


def _inbox(request, *, error: str = "", status: int = 200):
    approvals = services.approval_list(user=request.user, status=ApprovalStatus.PENDING)
    cards = [approval_card(a, request.user) for a in approvals]
    # The outcome of the POST that redirected here (kept in the session, not in
    # django.contrib.messages, so a base template that lists messages does not
    # show it twice).
    notice = request.session.pop(NOTICE_KEY, "")
    return render(request, "approvals/inbox.html", {
        "cards": cards, "error": error, "notice": notice,
        "is_reviewer": visible_group_ids(request.user, Act.REVIEW) != set(),
    }, status=status)


@login_required
def inbox(request):
    """Every pending approval the signed-in user may decide, across pipelines."""
    return _inbox(request)


@login_required
@require_POST
def decide(request, pk):
    """Approve or Reject from the inbox (form POST with CSRF)."""
    try:
        approval = services.approval_get(approval_id=pk, user=request.user)
        services.approval_decide(request=approval, user=request.user,
                                 status=request.POST.get("status", ""),
                                 summary=request.POST.get("summary", ""),
                                 surface=DecisionSurface.DASHBOARD)
    except ApprovalError as exc:
        return _inbox(request, error=exc.detail, status=_status_of(exc))
    _flash(request, approval)
    return redirect("approvals:inbox")


def _flash(request, approval) -> None:
    approval.refresh_from_db()
    where = f"{approval.pipeline_name} / {approval.stage_name} / {approval.action_name}"
    if approval.status == ApprovalStatus.PENDING:
        notice = (f"Your approval of {where} is recorded; it needs "
                  f"{approval.required_approvals} in all.")
    else:
        notice = f"{where}: {approval.status}."
    request.session[NOTICE_KEY] = notice


@login_required
@require_http_methods(["GET", "POST"])
def link(request, signed: str):
    """A signed Approve/Reject link: GET shows a confirmation page, POST decides."""
    try:
        target = services.approval_link_resolve(signed=signed, user=request.user)
    except ApprovalLinkInvalid as exc:
        return render(request, "approvals/link.html", {"error": exc.detail},
                      status=_status_of(exc))
    context = {"card": approval_card(target.request, request.user),
               "decision": target.status}
    if request.method == "GET":
        return render(request, "approvals/link.html", context)
    try:
        services.approval_decide_by_link(signed=signed, user=request.user,
                                         summary=request.POST.get("summary", ""))
    except ApprovalError as exc:
        return render(request, "approvals/link.html", context | {"error": exc.detail},
                      status=_status_of(exc))
    _flash(request, target.request)
    return redirect("approvals:inbox")
