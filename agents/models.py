"""Agent keys and the agents that use them (docs/deploy.md, Build farm).

An ``AgentKey`` is the one credential of an agent: made in the admin (the key is
shown once), stored as a SHA-256 digest, revoked by setting ``revoked_at`` — the
next request with it is refused. An ``Agent`` row is kept per agent name: what it
said about itself in its last poll or heartbeat, and the action execution it runs.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AgentKey(models.Model):
    """A bearer key agents authenticate with; only its digest is stored."""

    name = models.CharField(max_length=100, help_text="What the key is for (a machine, a pool).")
    # The first characters of the key, to tell keys apart in the admin and find the row.
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Agent(models.Model):
    """An agent as it last reported itself; ``action_execution`` is what it runs now."""

    name = models.CharField(max_length=100, unique=True)
    key = models.ForeignKey(AgentKey, on_delete=models.CASCADE, related_name="agents")
    labels = models.JSONField(default=list, blank=True)
    version = models.CharField(max_length=50, blank=True)
    hostname = models.CharField(max_length=200, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    action_execution = models.ForeignKey(
        "executions.ActionExecution", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def worker_name(self) -> str:
        """The ActionExecution.worker of the actions this agent claims."""
        from executions.engine import AGENT_PREFIX

        return f"{AGENT_PREFIX}{self.name}"
