"""The events a notification rule can choose, its target kinds, a delivery's statuses."""

from django.db import models


class NotificationEvent(models.TextChoices):
    """What happened, as a rule names it (the keys of ``events.event_key``)."""

    EXECUTION_STARTED = "execution.started", "Execution started"
    EXECUTION_RESUMED = "execution.resumed", "Execution resumed (retry)"
    EXECUTION_SUCCEEDED = "execution.succeeded", "Execution succeeded"
    EXECUTION_FAILED = "execution.failed", "Execution failed"
    EXECUTION_STOPPED = "execution.stopped", "Execution stopped"
    EXECUTION_SUPERSEDED = "execution.superseded", "Execution superseded"
    ROLLBACK_STARTED = "rollback.started", "Rollback started"
    STAGE_STARTED = "stage.started", "Stage started"
    STAGE_SUCCEEDED = "stage.succeeded", "Stage succeeded"
    STAGE_FAILED = "stage.failed", "Stage failed"
    ACTION_FAILED = "action.failed", "Action failed"
    APPROVAL_NEEDED = "approval.needed", "Approval needed"


class TargetKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (EventBridge-shaped JSON, HMAC-signed)"
    SLACK = "slack", "Slack-compatible incoming webhook"
    EMAIL = "email", "Email"


class DeliveryStatus(models.TextChoices):
    PENDING = "Pending", "Pending"
    SENDING = "Sending", "Sending"
    DELIVERED = "Delivered", "Delivered"
    FAILED = "Failed", "Failed (no attempt left)"


# A delivery in one of these is never attempted again.
DELIVERY_TERMINAL = frozenset({DeliveryStatus.DELIVERED, DeliveryStatus.FAILED})
