"""Approvals: the people's side of a Manual approval action.

An ``ApprovalRequest`` is opened when a Manual approval action starts and is
closed exactly once (compare-and-set from Pending): by enough approvals, by
one rejection, by its timeout, or because its execution was superseded,
stopped or abandoned. Each reviewer's ``ApprovalDecision`` is an immutable
row. An ``ApprovalLink`` is the single-use half of the signed Approve/Reject
links a notification email carries.

Only ``approvals.services`` writes these rows.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from approvals.choices import ApprovalStatus, DecisionStatus, DecisionSurface
from executions.models import ActionExecution, PipelineExecution
from pipelines.models import Pipeline


class ApprovalRequest(models.Model):
    """One Manual approval waiting for (or closed by) people.

    ``custom_data`` is the message with its ``#{...}`` references resolved;
    ``revision`` the source revision the execution carries (what reviewers
    approve); ``reviewers`` the configured spec (``"alice,group:release"``),
    resolved against users and groups when someone decides. ``token`` is the
    action execution's token, the one CodePipeline's PutApprovalResult presents.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    action_execution = models.OneToOneField(
        ActionExecution, on_delete=models.CASCADE, related_name="approval_request"
    )
    execution = models.ForeignKey(
        PipelineExecution, on_delete=models.CASCADE, related_name="approval_requests"
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    pipeline_name = models.CharField(max_length=100)
    stage_name = models.CharField(max_length=100)
    action_name = models.CharField(max_length=100)

    custom_data = models.TextField(blank=True)
    external_entity_link = models.URLField(max_length=2000, blank=True)
    revision = models.CharField(max_length=200, blank=True)
    revision_summary = models.CharField(max_length=2000, blank=True)
    required_approvals = models.PositiveSmallIntegerField(default=1)
    reviewers = models.CharField(max_length=2000, blank=True)
    # The same spec as ",alice,group:release," (empty: anyone permitted), so
    # "the requests naming this user or one of their groups" is a LIKE query.
    reviewer_keys = models.CharField(max_length=2000, blank=True, editable=False)
    allow_self_approval = models.BooleanField(default=False)
    notification_webhook = models.URLField(max_length=2000, blank=True)
    token = models.CharField(max_length=64)

    status = models.CharField(
        max_length=16, choices=ApprovalStatus.choices, default=ApprovalStatus.PENDING
    )
    # Why it closed: the rejecting reviewer's summary, "approval expired",
    # "Superseded by #7 (…)", ...
    status_summary = models.CharField(max_length=2000, blank=True)
    superseded_by = models.ForeignKey(
        PipelineExecution, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Claimed by the notification task (a second delivery sends nothing).
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(required_approvals__gte=1),
                name="approvals_approvalrequest_required_positive",
            ),
            # closed_at is set exactly when the request left Pending.
            models.CheckConstraint(
                condition=(Q(status=ApprovalStatus.PENDING, closed_at__isnull=True)
                           | (~Q(status=ApprovalStatus.PENDING) & Q(closed_at__isnull=False))),
                name="approvals_approvalrequest_closed_when_terminal",
            ),
        ]
        indexes = [
            # "The pending approvals, newest first" (inbox, GET /api/approvals/?status=Pending).
            models.Index(fields=["-created_at"], condition=Q(status="Pending"),
                         name="approvals_ar_pending_idx"),
            # "The request holding this token for pipeline/stage/action" (PutApprovalResult).
            models.Index(fields=["token"], name="approvals_ar_token_idx"),
        ]
        permissions = [
            ("decide_approvalrequest", "Can approve or reject approval requests"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline_name} / {self.stage_name} / {self.action_name} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status in ApprovalStatus.ACTIVE


class ApprovalDecision(models.Model):
    """One reviewer's Approve or Reject of one request: immutable once saved.

    ``username`` is kept beside the user so the audit trail outlives the account.
    """

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE,
                                related_name="decisions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                             related_name="approval_decisions")
    username = models.CharField(max_length=150)
    status = models.CharField(max_length=16, choices=DecisionStatus.choices)
    summary = models.CharField(max_length=2000, blank=True)
    surface = models.CharField(max_length=16, choices=DecisionSurface.choices)
    decided_at = models.DateTimeField()

    class Meta:
        ordering = ["request", "decided_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["request", "user"],
                                    name="approvals_approvaldecision_one_per_reviewer"),
        ]

    def __str__(self) -> str:
        return f"{self.username}: {self.status}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("An ApprovalDecision is immutable once saved.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("An ApprovalDecision is immutable: it cannot be deleted.")


class ApprovalLink(models.Model):
    """The single-use half of a signed Approve/Reject link pair sent to one reviewer.

    The link itself is ``django.core.signing`` over ``nonce`` (nobody can forge
    or alter it); this row binds it to its request and reviewer, bounds its
    life and is consumed (compare-and-set on ``used_at``) by the first POST.
    Both links of one email share the row: using one uses both.
    """

    nonce = models.CharField(max_length=64, unique=True)
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="links")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"link for {self.user_id} on {self.request_id}"
