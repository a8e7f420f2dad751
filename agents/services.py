"""Agent keys and agents: every write of this app but the jobs' (agents/work.py).

Keys are 256-bit random strings ``cva_<prefix>_<secret>``; the database keeps the
prefix (to find the row) and a SHA-256 digest of the whole key (a copy of the
database gives no usable key). Revoking sets ``revoked_at``: the key is read from the
database on every request (no cache outlives a revocation), the actions its agents
run fail at once naming the key, and the agents' doorbell answers their held requests
with the refusal (``agents.doorbell``); the agent kills the job's commands and exits.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.models import Agent, AgentKey
from runners.checks import LABEL_RE

KEY_RE = re.compile(r"^cva_([A-Za-z0-9]{12})_[A-Za-z0-9_-]{43}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class AgentRefused(Exception):
    """A request of an agent that is refused; ``status`` is the HTTP answer."""

    def __init__(self, detail: str, status: int = 400):
        self.detail, self.status = detail, status
        super().__init__(detail)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def agent_key_create(*, name: str, user=None) -> tuple[AgentKey, str]:
    """A new agent key; returns (row, key). The key exists only in this answer."""
    prefix = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    key = f"cva_{prefix}_{secrets.token_urlsafe(32)}"
    row = AgentKey.objects.create(name=name[:100] or "agent", prefix=prefix,
                                  digest=_digest(key), created_by=user)
    return row, key


def agent_key_revoke(*, key: AgentKey) -> bool:
    """Revoke a key; False if it already was.

    1. ``revoked_at`` is set: every later request with the key is refused;
    2. the actions its agents run fail now, their summary naming the key
       (``agents.work.key_actions_stop``);
    3. once committed, the doorbell answers the key's held requests (a poll, a job's
       lease renewal) with the refusal: the agent stops the job's commands and exits.
    """
    with transaction.atomic():
        revoked = AgentKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()) == 1
        if revoked:
            agent_key_ended(key=key, how="revoked")
    return revoked


def agent_key_ended(*, key: AgentKey, how: str) -> int:
    """A key was revoked or is being deleted: its agents' actions fail naming it, and
    its held requests are answered on commit. The count of actions failed. (Also
    called on a revoking ``save()`` and on ``delete()``: ``agents.apps``.)"""
    from agents import doorbell, work

    stopped = work.key_actions_stop(
        key_id=key.pk, summary=f'The agent key "{key.name}" ({key.prefix}…) was {how}: '
        "its agent was refused and stopped this action")
    doorbell.on_commit(doorbell.ring_revoked, key.pk)
    return stopped


def agent_key_authenticate(*, key: str) -> AgentKey | None:
    """The live key row for a presented key, or None (unknown, mistyped or revoked)."""
    match = KEY_RE.match(key or "")
    if match is None:
        return None
    row = AgentKey.objects.filter(prefix=match.group(1)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.digest, _digest(key)):
        return None
    return row


def agent_authenticate(*, key: str, name: str) -> Agent | None:
    """The agent ``name`` of the live key presented (one query), or None."""
    match = KEY_RE.match(key or "")
    if match is None:
        return None
    agent = (Agent.objects.select_related("key")
             .filter(name=name, key__prefix=match.group(1)).first())
    if agent is None or agent.key.revoked_at is not None:
        return None
    if not hmac.compare_digest(agent.key.digest, _digest(key)):
        return None
    return agent


def agent_labels(value) -> list[str]:
    """The labels an agent declares, checked (a list of names, or "a,b")."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        raise AgentRefused("labels: must be a list of label names")
    labels = sorted({str(v).strip() for v in value if str(v).strip()})
    bad = [label for label in labels if not LABEL_RE.match(label)]
    if bad:
        raise AgentRefused(f'labels: "{bad[0]}" is not a label (letters, digits, "_", "." '
                           'and "-", at most 40 characters)')
    return labels


def agent_seen(*, key: AgentKey, name: str, labels=None, version: str = "",
               hostname: str = "") -> Agent:
    """Record that the agent ``name`` (of ``key``) is alive and what it says it is.

    An agent name belongs to the key that first used it: another live key cannot
    take it over (it would see that agent's job); once that key is revoked, a new
    key may.
    """
    if not NAME_RE.match(name or ""):
        raise AgentRefused('name: letters, digits, "_", "." and "-", at most 100 characters')
    now = timezone.now()
    fields = {"last_seen_at": now}
    if labels is not None:
        fields["labels"] = agent_labels(labels)
    if version:
        fields["version"] = str(version)[:50]
    if hostname:
        fields["hostname"] = str(hostname)[:200]
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        # A minute's precision is enough to tell a key in use: one write less per poll.
        AgentKey.objects.filter(pk=key.pk).update(last_used_at=now)
    agent = Agent.objects.select_related("key").filter(name=name).first()
    if agent is None:
        try:
            with transaction.atomic():
                return Agent.objects.create(name=name, key=key, **fields)
        except IntegrityError:  # two first polls at once
            agent = Agent.objects.select_related("key").get(name=name)
    if agent.key_id != key.pk:
        if agent.key.revoked_at is None:
            raise AgentRefused(f'name: agent "{name}" belongs to another key', status=409)
        fields["key"] = key
    Agent.objects.filter(pk=agent.pk).update(**fields)
    for field, value in fields.items():
        setattr(agent, field, value)
    return agent
