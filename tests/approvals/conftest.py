"""Fixtures of the approval tests: a release pipeline with a Manual approval, reviewers.

The engine runs for real through the executions tests' ``Driver`` (engine
steps called directly, the worker code running each action, only the
django-q2 queue replaced). The approvals app's own queue is replaced the same
way: ``approval_notify`` runs inline when it is enqueued (on commit).
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User

from approvals import tasks as approval_tasks
from approvals.models import ApprovalRequest
from executions import tasks
from pipelines.services import pipeline_save
from tests.executions.conftest import Driver, sim
from tests.factories import action, definition
from tests.roles import ensure_role_groups


def manual(name: str = "Approve", runOrder: int = 1, timeoutInMinutes: int | None = None,  # noqa: N803
           owner: str = "AWS", **configuration) -> dict:
    """A Manual approval action; keyword arguments are its configuration (strings)."""
    body = action(name, "Approval", "Manual", runOrder=runOrder,
                  configuration={k: str(v) for k, v in configuration.items()})
    body["actionTypeId"]["owner"] = owner
    if timeoutInMinutes is not None:
        body["timeoutInMinutes"] = timeoutInMinutes
    return body


def release_pipeline(name: str = "shop", *, mode: str = "SUPERSEDED", **approval):
    """Source → Staging → Production, where Production asks for approval before deploying."""
    approval.setdefault("CustomData", "Ship #{SourceVariables.CommitId} to production?")
    doc = definition(name, executionMode=mode, stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}],
                        namespace="SourceVariables")]),
        ("Staging", [sim("DeployStaging", "Deploy")]),
        ("Production", [manual(**approval), sim("DeployProduction", "Deploy", runOrder=2)]),
    ])
    return pipeline_save(document=doc).pipeline


def revision(value: str) -> list[dict]:
    """The sourceRevisions override that makes the Simulate source resolve ``value``."""
    return [{"actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": value}]


class Release(Driver):
    """The executions Driver, plus: run an execution up to its pending approval."""

    def to_approval(self, pipeline, *, user=None, commit: str = "c0ffee1") -> ApprovalRequest:
        ex = self.start(pipeline, user=user, source_revisions=revision(commit))
        self.run_action("Source", "Checkout", ex)
        self.run_action("Staging", "DeployStaging", ex)
        self.run_action("Production", "Approve", ex)
        return ApprovalRequest.objects.get(execution=ex)


@pytest.fixture
def release(db, monkeypatch, django_capture_on_commit_callbacks):
    d = Release(django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks, "enqueue", d.pending.append)
    return d


@pytest.fixture(autouse=True)
def _inline_approval_tasks(monkeypatch):
    """The approvals queue is the edge the tests hold: its tasks run at once, inline."""
    monkeypatch.setattr(approval_tasks, "enqueue",
                        lambda name, *args: getattr(approval_tasks, name)(*args))


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    settings.CONVEYOR_HEARTBEAT_SECONDS = 3600
    settings.CONVEYOR_LEASE_SECONDS = 3 * 3600
    settings.CONVEYOR_BASE_URL = "https://conveyor.example.com"


def _person(username: str, *groups: str) -> User:
    ensure_role_groups()
    user = User.objects.create_user(username, f"{username}@example.com", "pw-" + username)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def alice(db) -> User:
    """A reviewer (group "reviewers")."""
    return _person("alice", "reviewers")


@pytest.fixture
def bob(db) -> User:
    """Another reviewer."""
    return _person("bob", "reviewers")


@pytest.fixture
def carol(db) -> User:
    """A reviewer who is also a release manager."""
    return _person("carol", "reviewers", "release-managers")


@pytest.fixture
def mallory(db) -> User:
    """Runs pipelines (operators) but is no reviewer."""
    return _person("mallory", "operators")
