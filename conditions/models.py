"""Records of stage conditions: one ``ConditionExecution`` per evaluation of a stage's
condition, one ``RuleExecution`` per evaluation of one of its rules (docs/conditions.md).

Status fields change only through ``conditions.records`` (compare-and-set, with an
ExecutionEvent of kind ``condition`` in the same transaction); the stage and execution
statuses a condition decides change only through ``executions.engine``.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from conditions.choices import (
    ConditionExecutionStatus,
    ConditionKind,
    ConditionResult,
    RuleExecutionStatus,
)
from executions.models import StageExecution


class ConditionExecution(models.Model):
    """One evaluation of one condition (``kind``) of one stage execution.

    ``beforeEntry`` is evaluated once the execution has entered the stage (it holds the
    stage's lock, no action has started); ``onSuccess``/``onFailure`` once its actions
    have ended, before the stage execution ends. ``result`` is what the condition does
    when it engages. ``overridden_by``/``override_reason``: who let it through, and why.
    """

    stage_execution = models.ForeignKey(StageExecution, on_delete=models.CASCADE,
                                        related_name="condition_executions")
    kind = models.CharField(max_length=16, choices=ConditionKind.choices)
    result = models.CharField(max_length=16, choices=ConditionResult.choices)
    status = models.CharField(max_length=16, choices=ConditionExecutionStatus.choices,
                              default=ConditionExecutionStatus.IN_PROGRESS)
    summary = models.CharField(max_length=2000, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    overridden_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="+")
    override_reason = models.CharField(max_length=2000, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # A stage execution evaluates each of its conditions at most once (a retry
            # is a new stage execution).
            models.UniqueConstraint(fields=["stage_execution", "kind"],
                                    name="conditions_conditionexecution_once_per_kind"),
        ]
        indexes = [
            # "Conditions still being evaluated" (the sweeper, stop, supersede).
            models.Index(fields=["status"], condition=Q(status="InProgress"),
                         name="conditions_ce_active_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.stage_execution} {self.kind} ({self.status})"


class RuleExecution(models.Model):
    """One evaluation of one rule of a condition; rows appear as the rules start, in order.

    ``configuration`` is the rule's resolved configuration with secret values masked.
    A waiting rule (a deployment window not open yet, a metric within its WaitTime) stays
    InProgress with ``recheck_at``; the sweeper evaluates it again then. ``deadline_at``
    is its timeout; ``lease_expires_at`` marks an evaluation running in a worker.
    """

    condition_execution = models.ForeignKey(ConditionExecution, on_delete=models.CASCADE,
                                            related_name="rule_executions")
    rule_execution_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    position = models.PositiveSmallIntegerField(default=0)
    rule_name = models.CharField(max_length=100)
    provider = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=RuleExecutionStatus.choices,
                              default=RuleExecutionStatus.IN_PROGRESS)
    summary = models.CharField(max_length=2000, blank=True)
    configuration = models.JSONField(default=dict, blank=True)
    external_execution_url = models.CharField(max_length=2000, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    recheck_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["condition_execution", "position"],
                                    name="conditions_ruleexecution_unique_position"),
        ]
        indexes = [
            # "Waiting rules due for another look" (the sweeper, every minute).
            models.Index(fields=["recheck_at"], condition=Q(status="InProgress"),
                         name="conditions_re_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_name} ({self.status})"
