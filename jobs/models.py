"""Custom action types and the jobs their job workers poll for (docs/job-workers.md).

``Job`` is AWS's own name for one offer of an action to a job worker (the
protocol's exception to the house rule against "job" in model names).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from jobs.choices import JobStatus, PropertyType, TypeOwner


class CustomActionType(models.Model):
    """An action type a team registers (CreateCustomActionType); its jobs go to their worker.

    Identified as AWS does by (category, owner, provider, version). Deleting one
    keeps the row with ``deleted_at`` set (AWS: a deleted type is gone from lists
    and polls, and its version can never be used again for that provider).
    ``configuration_properties`` is AWS's list of ``{name, required, key,
    secret, queryable, description, type}``. A ``ThirdParty`` type has a client
    id and token (shown once, stored hashed) its partner's worker presents.
    """

    category = models.CharField(max_length=16)
    owner = models.CharField(max_length=16, choices=TypeOwner.choices, default=TypeOwner.CUSTOM)
    provider = models.CharField(max_length=35)
    version = models.CharField(max_length=9)
    entity_url_template = models.CharField(max_length=2048, blank=True)
    execution_url_template = models.CharField(max_length=2048, blank=True)
    revision_url_template = models.CharField(max_length=2048, blank=True)
    third_party_configuration_url = models.CharField(max_length=2048, blank=True)
    configuration_properties = models.JSONField(default=list, blank=True)
    input_minimum = models.PositiveSmallIntegerField(default=0)
    input_maximum = models.PositiveSmallIntegerField(default=5)
    output_minimum = models.PositiveSmallIntegerField(default=0)
    output_maximum = models.PositiveSmallIntegerField(default=5)
    description = models.CharField(max_length=1024, blank=True)
    client_id = models.UUIDField(null=True, blank=True, editable=False)
    client_token_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["category", "provider", "version"]
        constraints = [
            models.UniqueConstraint(fields=["category", "owner", "provider", "version"],
                                    name="jobs_customactiontype_unique_id"),
            models.CheckConstraint(condition=Q(input_minimum__lte=models.F("input_maximum"))
                                   & Q(output_minimum__lte=models.F("output_maximum")),
                                   name="jobs_customactiontype_counts"),
        ]

    def __str__(self) -> str:
        return f"{self.category}/{self.owner}/{self.provider}/{self.version}"

    @property
    def type_id(self) -> dict:
        return {"category": self.category, "owner": self.owner, "provider": self.provider,
                "version": self.version}

    def properties(self) -> list[dict]:
        return [dict(p) for p in self.configuration_properties or []]

    def queryable_property(self) -> str | None:
        return next((p["name"] for p in self.properties() if p.get("queryable")), None)


PROPERTY_TYPES = PropertyType.values


class Job(models.Model):
    """One offer of an InProgress action to a job worker (AWS's ``Job``).

    Made Queued when the engine runs an action that ``jobs.routing.job_route``
    sends to workers, or (with ``labels``) starts an action routed to Conveyor's agents
    (docs/job-workers.md, Agents); a poll hands it out (Dispatched, a fresh ``nonce``), the
    worker acknowledges it with that nonce (InProgress) and reports a result.
    A success with a continuation token ends this job Succeeded and queues the
    next one (``attempt`` + 1) carrying the token; the action stays InProgress.
    ``expires_at`` is the deadline of the current state (acknowledge, result),
    enforced by the sweeper. ``data`` is the JobData without credentials; the
    artifact credentials (``credential_id``, sealed secret and session token)
    work only while the job is Dispatched or InProgress, and only for its own
    artifacts.
    """

    job_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    action_execution = models.ForeignKey("executions.ActionExecution", on_delete=models.CASCADE,
                                         related_name="jobs")
    action_type = models.ForeignKey(CustomActionType, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="jobs")
    category = models.CharField(max_length=16)
    owner = models.CharField(max_length=16)
    provider = models.CharField(max_length=100)
    version = models.CharField(max_length=9, default="1")
    status = models.CharField(max_length=16, choices=JobStatus.choices,
                              default=JobStatus.QUEUED)
    attempt = models.PositiveSmallIntegerField(default=1)
    nonce = models.CharField(max_length=50, blank=True)
    client_id = models.UUIDField(null=True, blank=True)
    # The value of the type's queryable property in this action (PollForJobs' queryParam).
    query_value = models.CharField(max_length=50, blank=True)
    # The labels a built-in action asks for (configuration.RunOn), for agents.
    labels = models.JSONField(default=list, blank=True)
    continuation_token = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    execution_details = models.JSONField(default=dict, blank=True)
    current_revision = models.JSONField(default=dict, blank=True)
    output_variables = models.JSONField(default=dict, blank=True)
    failure = models.JSONField(default=dict, blank=True)
    # Output artifacts a worker uploaded: {name: {storage_name, sha256, size, file_count}}.
    uploads = models.JSONField(default=dict, blank=True)
    credential_id = models.CharField(max_length=20, unique=True)
    credential_secret = models.TextField()
    session_token = models.TextField()   # sealed, as the secret
    worker = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField()
    dispatched_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["action_execution", "attempt"],
                                    name="jobs_job_unique_attempt"),
            # At most one live job per action execution.
            models.UniqueConstraint(fields=["action_execution"],
                                    condition=Q(status__in=["Created", "Queued", "Dispatched",
                                                            "InProgress"]),
                                    name="jobs_job_one_active"),
        ]
        indexes = [
            # PollForJobs: "Queued jobs of type T available now, oldest first".
            models.Index(fields=["category", "owner", "provider", "version", "available_at"],
                         condition=Q(status="Queued"), name="jobs_job_queue_idx"),
            # The sweeper: "held jobs whose acknowledge/result deadline passed".
            models.Index(fields=["expires_at"],
                         condition=Q(status__in=["Dispatched", "InProgress"]),
                         name="jobs_job_expiry_idx"),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} ({self.status})"

    @property
    def type_id(self) -> dict:
        return {"category": self.category, "owner": self.owner, "provider": self.provider,
                "version": self.version}
