"""Counters shared by every process, kept in the database.

A Prometheus counter kept in one process's memory would need prometheus-client's
multiprocess directory to add up the web processes and the django-q2 workers of
every machine; a row per (name, labels) incremented in the database adds them up
wherever they run, and survives restarts.
"""

from django.db import models
from django.utils import timezone


class Counter(models.Model):
    """A cumulative count (sweeper runs, webhook deliveries) for one label set.

    ``labels`` is the label dict as canonical JSON (sorted keys), so one
    (name, labels) pair is one row; ``updated_at`` is when it last moved.
    Only ``observability.counters.counter_add`` writes it.
    """

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=500, default="{}")
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "labels"]
        constraints = [
            models.UniqueConstraint(fields=["name", "labels"],
                                    name="observability_counter_unique_labels"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.labels} = {self.value}"


class AuditAct(models.TextChoices):
    """What a person (or a client acting for one) did."""

    EXECUTION_START = "execution.start", "Started an execution"
    EXECUTION_STOP = "execution.stop", "Stopped an execution"
    STAGE_RETRY = "stage.retry", "Retried a stage"
    STAGE_ROLLBACK = "stage.rollback", "Rolled a stage back"
    CONDITION_OVERRIDE = "condition.override", "Overrode a stage condition"
    APPROVAL_APPROVE = "approval.approve", "Approved"
    APPROVAL_REJECT = "approval.reject", "Rejected"
    TRANSITION_DISABLE = "transition.disable", "Disabled a transition"
    TRANSITION_ENABLE = "transition.enable", "Enabled a transition"
    PIPELINE_CREATE = "pipeline.create", "Created a pipeline"
    PIPELINE_UPDATE = "pipeline.update", "Changed a definition"
    PIPELINE_DELETE = "pipeline.delete", "Deleted a pipeline"
    GROUP_ROLES = "group.roles", "Changed a pipeline group's roles"
    SECRET_CHANGE = "secret.change", "Changed a webhook secret"
    KEY_CREATE = "key.create", "Created an access key"
    KEY_DEACTIVATE = "key.deactivate", "Deactivated an access key"


class AuditSurface(models.TextChoices):
    """Through what the act came in."""

    REST = "rest", "REST API"
    AWS = "aws", "AWS endpoint"
    DASHBOARD = "dashboard", "Dashboard"
    ADMIN = "admin", "Admin"
    COMMAND = "command", "Management command"
    SYSTEM = "system", "Conveyor itself"


class AuditEntryQuerySet(models.QuerySet):
    """No bulk update or delete: an audit entry, once written, stays as written."""

    def update(self, **kwargs):
        raise TypeError("The audit trail is append-only: entries cannot be changed.")

    def delete(self):
        raise TypeError("The audit trail is append-only: entries cannot be deleted.")

    # QuerySet.delete has alters_data; keep templates from calling ours too.
    update.alters_data = delete.alters_data = True


class AuditEntry(models.Model):
    """One act: who, what, on which pipeline or execution, through what, why, when.

    Append-only: ``save`` of an existing row, ``delete`` and the queryset's
    ``update``/``delete`` raise, the admin and the API only read, and on
    PostgreSQL a trigger refuses UPDATE and DELETE (migration 0003). No foreign
    keys: an entry outlives the pipeline, execution or user it names (a cascade
    would delete it, a SET NULL would change it). Only
    ``observability.audit.audit_record`` writes it.
    """

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=150, blank=True)  # username; "" = Conveyor itself
    actor_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=32, choices=AuditAct.choices)
    surface = models.CharField(max_length=16, choices=AuditSurface.choices)
    pipeline = models.CharField(max_length=100, blank=True)
    execution_id = models.UUIDField(null=True, blank=True)
    execution_number = models.PositiveIntegerField(null=True, blank=True)
    stage = models.CharField(max_length=100, blank=True)
    reason = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # "The trail of pipeline P, newest first" (its dashboard page, ?pipeline=).
            models.Index(fields=["pipeline", "-id"], name="observability_audit_pipe_idx"),
            # "What person A did" (?actor=).
            models.Index(fields=["actor", "-id"], name="observability_audit_actor_idx"),
            # "Every rollback" (?action=).
            models.Index(fields=["action", "-id"], name="observability_audit_action_idx"),
        ]

    def __str__(self) -> str:
        who = self.actor or "conveyor"
        return f"{self.at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.pipeline}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("The audit trail is append-only: entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("The audit trail is append-only: entries cannot be deleted.")


class HistogramRollup(models.Model):
    """The bucket counts of one duration histogram of ``/metrics`` for every duration
    that ended before ``until``, per label set.

    A scrape adds the rows that ended since ``until`` (a small indexed range) to these
    counts instead of aggregating every action execution ever run; ``until`` moves
    forward now and then, under this row's lock (``observability.rollups``).
    ``series`` maps a label set (canonical JSON list) to its non-cumulative bucket
    counts, then the count of the +Inf bucket, then the sum in seconds; ``buckets`` are
    the bounds those counts were made with (other bounds: rebuilt from the rows).
    """

    name = models.CharField(max_length=100, unique=True)
    until = models.DateTimeField(null=True, blank=True)
    buckets = models.JSONField(default=list)
    series = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} until {self.until}"
