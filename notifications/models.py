"""Notification rules and the deliveries they caused.

A ``NotificationRule`` chooses events (``choices.NotificationEvent``) of one
pipeline, or of every pipeline, and one target. Each matching ExecutionEvent
becomes one ``NotificationDelivery`` (unique per rule and event, so a second
scan of the same events sends nothing twice), attempted by a django-q2 task
with retries and backoff; its last answer is kept for the admin.
"""

from django.db import models

from executions.models import ExecutionEvent
from notifications.choices import DeliveryStatus, NotificationEvent, TargetKind
from pipelines.models import Pipeline


class NotificationRule(models.Model):
    """Which events of which pipeline (all when ``pipeline`` is empty) go to one target."""

    name = models.CharField(max_length=100, unique=True)
    pipeline = models.ForeignKey(Pipeline, null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="notification_rules",
                                 help_text="Empty: every pipeline.")
    events = models.JSONField(default=list, help_text="Event keys, e.g. execution.failed.")
    target_kind = models.CharField(max_length=16, choices=TargetKind.choices)
    target_url = models.URLField(max_length=2000, blank=True)
    # Webhook targets: the body is signed with it (X-Conveyor-Signature-256).
    secret = models.CharField(max_length=200, blank=True)
    email_to = models.CharField(max_length=1000, blank=True,
                                help_text="Email targets: addresses, comma-separated.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def event_labels(self) -> list[str]:
        labels = dict(NotificationEvent.choices)
        return [labels.get(e, e) for e in self.events]


class NotificationDelivery(models.Model):
    """One event sent (or being sent) to one rule's target; every attempt counted."""

    rule = models.ForeignKey(NotificationRule, on_delete=models.CASCADE,
                             related_name="deliveries")
    event = models.ForeignKey(ExecutionEvent, on_delete=models.CASCADE, related_name="+")
    event_key = models.CharField(max_length=32, choices=NotificationEvent.choices)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # When the current attempt began (Sending): the concurrency cap counts only
    # recent ones, so a worker that died mid-send does not hold a slot for ever.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # What the target answered last ("HTTP 200: ok", "connection refused", ...).
    last_answer = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "notification deliveries"
        constraints = [
            models.UniqueConstraint(fields=["rule", "event"],
                                    name="notifications_notificationdelivery_unique_event"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} · {self.event_key} · {self.status}"


class NotificationCursor(models.Model):
    """The last ExecutionEvent of a pipeline that was matched against the rules."""

    pipeline = models.OneToOneField(Pipeline, on_delete=models.CASCADE, related_name="+")
    last_event_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.pipeline_id} @ {self.last_event_id}"
