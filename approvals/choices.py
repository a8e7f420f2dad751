"""The approvals vocabulary.

As in ``executions.choices``, the ``TERMINAL``/``ACTIVE`` sets and the table of
allowed status changes hold plain strings (an Enum member hashes by its name).
"""

from django.db import models


class ApprovalStatus(models.TextChoices):
    """Where an ApprovalRequest stands; only Pending can still be decided."""

    PENDING = "Pending", "Pending"
    APPROVED = "Approved", "Approved"
    REJECTED = "Rejected", "Rejected"
    EXPIRED = "Expired", "Expired"
    SUPERSEDED = "Superseded", "Superseded"
    ABANDONED = "Abandoned", "Abandoned"


ApprovalStatus.ACTIVE = frozenset({"Pending"})
ApprovalStatus.TERMINAL = frozenset({"Approved", "Rejected", "Expired", "Superseded",
                                     "Abandoned"})
ApprovalStatus.TRANSITIONS = {
    # Approved/Rejected by decisions; Expired by the action's timeout;
    # Superseded by a newer execution (docs/semantics.md §10); Abandoned when the execution
    # is stopped and abandoned, or the action ended some other way.
    "Pending": frozenset({"Approved", "Rejected", "Expired", "Superseded", "Abandoned"}),
    "Approved": frozenset(),
    "Rejected": frozenset(),
    "Expired": frozenset(),
    "Superseded": frozenset(),
    "Abandoned": frozenset(),
}


class DecisionStatus(models.TextChoices):
    """What one reviewer decided (PutApprovalResult's ``result.status``)."""

    APPROVED = "Approved", "Approved"
    REJECTED = "Rejected", "Rejected"


class DecisionSurface(models.TextChoices):
    """Through which surface a decision was made (the audit trail says so)."""

    DASHBOARD = "dashboard", "Dashboard"
    API = "api", "REST API"
    LINK = "link", "Signed link in a notification"
    AWS = "aws", "AWS-compatible endpoint"
