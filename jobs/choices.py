"""The job-worker protocol's vocabulary, in CodePipeline's own strings (docs/job-workers.md)."""

from django.db import models


class JobStatus(models.TextChoices):
    """AWS's JobStatus. Created is never stored: a job is Queued when it is made."""

    CREATED = "Created", "Created"
    QUEUED = "Queued", "Queued"
    DISPATCHED = "Dispatched", "Dispatched"
    IN_PROGRESS = "InProgress", "InProgress"
    TIMED_OUT = "TimedOut", "TimedOut"
    SUCCEEDED = "Succeeded", "Succeeded"
    FAILED = "Failed", "Failed"


TERMINAL = frozenset({JobStatus.TIMED_OUT, JobStatus.SUCCEEDED, JobStatus.FAILED})
ACTIVE = frozenset({JobStatus.CREATED, JobStatus.QUEUED, JobStatus.DISPATCHED,
                    JobStatus.IN_PROGRESS})
# Where a job's artifact credentials work: a worker holds it.
HELD = frozenset({JobStatus.DISPATCHED, JobStatus.IN_PROGRESS})

# The allowed status changes (compare-and-set in jobs.services).
TRANSITIONS = {
    # Queued → InProgress: an agent's poll that acknowledges at once (docs/job-workers.md).
    JobStatus.QUEUED: {JobStatus.DISPATCHED, JobStatus.IN_PROGRESS, JobStatus.FAILED,
                       JobStatus.TIMED_OUT},
    JobStatus.DISPATCHED: {JobStatus.IN_PROGRESS, JobStatus.TIMED_OUT, JobStatus.FAILED},
    JobStatus.IN_PROGRESS: {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT},
}


class FailureType(models.TextChoices):
    JOB_FAILED = "JobFailed", "JobFailed"
    CONFIGURATION_ERROR = "ConfigurationError", "ConfigurationError"
    PERMISSION_ERROR = "PermissionError", "PermissionError"
    REVISION_OUT_OF_SYNC = "RevisionOutOfSync", "RevisionOutOfSync"
    REVISION_UNAVAILABLE = "RevisionUnavailable", "RevisionUnavailable"
    SYSTEM_UNAVAILABLE = "SystemUnavailable", "SystemUnavailable"


class PropertyType(models.TextChoices):
    STRING = "String", "String"
    NUMBER = "Number", "Number"
    BOOLEAN = "Boolean", "Boolean"


class TypeOwner(models.TextChoices):
    """Owners a registered action type may have (AWS's are built in, never registered)."""

    CUSTOM = "Custom", "Custom"
    THIRD_PARTY = "ThirdParty", "ThirdParty"
