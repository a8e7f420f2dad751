"""django-q2 task adapters of the approvals app: they take ids and call the services.

Enqueued with ``transaction.on_commit``; each first claims its row, so a
second delivery of the same task sends nothing twice.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from approvals import notifications
from approvals.choices import ApprovalStatus
from approvals.models import ApprovalRequest

logger = logging.getLogger("conveyor.approvals")


def enqueue(name: str, *args) -> None:
    """Put a task of this module on the django-q2 queue (tests run it inline instead)."""
    from django_q.tasks import async_task

    async_task(f"approvals.tasks.{name}", *args, task_name=f"{name}-{'-'.join(map(str, args))}")


def approval_notify(request_pk: str) -> str:
    """Email the reviewers and post the webhook of a request that is still pending."""
    claimed = ApprovalRequest.objects.filter(
        pk=request_pk, notified_at__isnull=True, status=ApprovalStatus.PENDING,
    ).update(notified_at=timezone.now())
    if not claimed:
        return "nothing to do"
    request = ApprovalRequest.objects.select_related("execution").get(pk=request_pk)
    sent = 0
    try:
        sent = notifications.send_emails(request)
    except Exception:  # the mail server's failure must not lose the webhook
        logger.exception("approval %s: sending the emails failed", request_pk)
    status = notifications.post_webhook(request)
    return f"emails {sent}, webhook {status}"
