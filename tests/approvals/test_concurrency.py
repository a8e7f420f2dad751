"""Two reviewers deciding at the same instant: exactly one decision counts (PostgreSQL).

Real threads, each with its own database connection, call the real service.
To make "the same instant" certain rather than likely, the test holds the
request's row lock first, lets both reviewers run into it (PostgreSQL shows
both waiting on the lock), then lets go: both UPDATEs are then in flight at
once, and the database decides the order.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from approvals import services
from approvals.errors import ApprovalClosed
from approvals.models import ApprovalDecision, ApprovalRequest
from executions.models import ActionExecution
from tests.approvals.conftest import release_pipeline

pytestmark = [
    # serialized_rollback: the groups and permissions of the data migrations
    # come back after the flush, for the tests that follow.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'",
                       reason="the decision race runs on PostgreSQL (SQLite serializes every "
                              "writer): set DATABASE_URL"),
]


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction pg_stat_activity is a snapshot taken at first use: drop it.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        return cursor.fetchone()[0]


def race(request: ApprovalRequest, deciders: list[tuple]) -> dict[str, str]:
    """Run each (user, status) decision in its own thread at once; user → outcome."""
    outcomes: dict[str, str] = {}

    def decide(user, status):
        try:
            services.approval_decide(request=ApprovalRequest.objects.get(pk=request.pk),
                                     user=user, status=status, summary=f"{user} says {status}",
                                     surface="api")
            outcomes[user.username] = "counted"
        except ApprovalClosed:
            outcomes[user.username] = "409"
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            outcomes[user.username] = f"{type(exc).__name__}: {exc}"
        finally:
            from django.db import connection as thread_connection

            thread_connection.close()

    threads = [threading.Thread(target=decide, args=pair) for pair in deciders]
    with transaction.atomic():
        ApprovalRequest.objects.select_for_update().get(pk=request.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_on_locks() < len(threads) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _waiting_on_locks() == len(threads), f"the deciders never met: {outcomes}"
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def test_two_reviewers_approving_a_one_of_n_request_at_once_count_once(release, alice, bob):
    request = release.to_approval(release_pipeline())
    outcomes = race(request, [(alice, "Approved"), (bob, "Approved")])
    assert sorted(outcomes.values()) == ["409", "counted"], outcomes
    request.refresh_from_db()
    assert request.status == "Approved"
    assert ApprovalDecision.objects.filter(request=request).count() == 1
    winner = ApprovalDecision.objects.get(request=request).username
    assert outcomes[winner] == "counted"
    assert ActionExecution.objects.get(pk=request.action_execution_id).status == "Succeeded"


def test_an_approval_and_a_rejection_at_once_one_wins_and_the_action_agrees(
    release, alice, bob,
):
    request = release.to_approval(release_pipeline())
    outcomes = race(request, [(alice, "Approved"), (bob, "Rejected")])
    assert sorted(outcomes.values()) == ["409", "counted"], outcomes
    request.refresh_from_db()
    decision = ApprovalDecision.objects.get(request=request)
    assert request.status == decision.status
    ae = ActionExecution.objects.get(pk=request.action_execution_id)
    assert ae.status == ("Succeeded" if decision.status == "Approved" else "Failed")


def test_the_last_two_approvals_of_two_of_three_at_once_close_it_once(release, alice, bob, carol):
    request = release.to_approval(release_pipeline(Reviewers="alice,bob,carol",
                                                   RequiredApprovals="2"))
    services.approval_decide(request=request, user=alice, status="Approved", surface="api")
    outcomes = race(request, [(bob, "Approved"), (carol, "Approved")])
    assert sorted(outcomes.values()) == ["409", "counted"], outcomes
    request.refresh_from_db()
    assert request.status == "Approved"
    assert ApprovalDecision.objects.filter(request=request).count() == 2
