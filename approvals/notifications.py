"""Telling reviewers an approval waits: email with signed links, and a chat webhook.

Both are sent by the ``approval_notify`` task (``approvals.tasks``), enqueued
when the request's transaction commits: never inside the engine's
transaction, and a slow mail server or chat service holds up no worker of
the pipeline.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse

from approvals import services
from approvals.choices import DecisionStatus
from approvals.models import ApprovalRequest
from config import outbound

logger = logging.getLogger("conveyor.approvals")


def absolute(path: str) -> str:
    return settings.CONVEYOR_BASE_URL.rstrip("/") + path


def inbox_url(request: ApprovalRequest) -> str:
    return absolute(reverse("approvals:inbox") + f"#approval-{request.pk}")


def _context(request: ApprovalRequest) -> dict:
    ex = request.execution
    return {
        "request": request,
        "execution": ex,
        "message": request.custom_data,
        "inbox_url": inbox_url(request),
        "required": request.required_approvals,
    }


def subject(request: ApprovalRequest) -> str:
    return (f"Approval needed: {request.pipeline_name} / {request.stage_name} / "
            f"{request.action_name} (#{request.execution.number})")


def send_emails(request: ApprovalRequest) -> int:
    """One email per reviewer with an email address, each with its own signed links.

    Returns how many were sent. The links land on a confirmation page: opening
    one decides nothing.
    """
    messages = []
    for user in services.approval_reviewers(request=request):
        link = services.approval_link_create(request=request, user=user)
        context = _context(request) | {
            "reviewer": user,
            "approve_url": absolute(reverse(
                "approvals:link", args=[services.link_sign(link, DecisionStatus.APPROVED)])),
            "reject_url": absolute(reverse(
                "approvals:link", args=[services.link_sign(link, DecisionStatus.REJECTED)])),
            "link_expires_at": link.expires_at,
        }
        body = render_to_string("approvals/email/approval_needed.txt", context)
        html = render_to_string("approvals/email/approval_needed.html", context)
        message = EmailMultiAlternatives(subject(request), body, None, [user.email])
        message.attach_alternative(html, "text/html")
        messages.append(message)
    if not messages:
        return 0
    return get_connection().send_messages(messages) or 0


def webhook_payload(request: ApprovalRequest) -> dict:
    """Slack-compatible JSON: ``text`` for chat, and the fields for any other receiver."""
    link = inbox_url(request)
    expiry = request.expires_at.isoformat().replace("+00:00", "Z") if request.expires_at else None
    where = f"{request.pipeline_name} / {request.stage_name} / {request.action_name}"
    text = f"Approval needed: {where} (#{request.execution.number})"
    if request.custom_data:
        text += f"\n{request.custom_data}"
    text += f"\n<{link}|Review it>" + (f" before {expiry}" if expiry else "")
    return {
        "text": text,
        "pipeline": request.pipeline_name,
        "stage": request.stage_name,
        "action": request.action_name,
        "message": request.custom_data,
        "link": link,
        "expiry": expiry,
        "pipelineExecutionId": str(request.execution.execution_id),
        "revision": request.revision,
    }


def post_webhook(request: ApprovalRequest) -> int | None:
    """POST the payload to the action's NotificationWebhook; the HTTP status, or None.

    A failing chat service is logged, never raised: the approval waits all the same.
    """
    url = request.notification_webhook
    if not url:
        return None
    data = json.dumps(webhook_payload(request)).encode()
    timeout = float(getattr(settings, "CONVEYOR_WEBHOOK_TIMEOUT", 10))
    # config.outbound: the resolved address is checked (CONVEYOR_OUTBOUND_ALLOW) and a
    # redirect is not followed (a 3xx is logged as the answer).
    try:
        answer = outbound.post(url, body=data, timeout=timeout, max_bytes=4096, headers={
            "Content-Type": "application/json", "User-Agent": "Conveyor approvals"})
    except outbound.OutboundRefused as exc:
        logger.warning("approval webhook %s refused: %s", url, exc)
        return None
    except OSError as exc:
        logger.warning("approval webhook %s failed: %s", url, exc)
        return None
    if not 200 <= answer.status < 300:
        logger.warning("approval webhook %s answered %s", url, answer.status)
    return answer.status
