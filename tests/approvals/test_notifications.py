"""Telling reviewers: email through Django's locmem backend, the chat webhook to a real server."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from approvals import tasks
from approvals.models import ApprovalLink
from tests.approvals.conftest import release_pipeline

LINK_RE = re.compile(r"^(Approve|Reject): (https://conveyor\.example\.com/approvals/link/\S+/)$",
                     re.M)


def test_each_reviewer_gets_one_email_with_the_message_revision_and_own_links(
    release, mailoutbox, alice, bob, carol, mallory, owner,
):
    request = release.to_approval(release_pipeline(ExternalEntityLink="https://ci.example.com/1"),
                                  commit="5ca1ab1e")
    # Reviewers with the permission and an address; not the operator, not the owner.
    assert sorted(m.to[0] for m in mailoutbox) == [
        "alice@example.com", "bob@example.com", "carol@example.com"]
    email = next(m for m in mailoutbox if m.to == ["alice@example.com"])
    assert email.subject == "Approval needed: shop / Production / Approve (#1)"
    body = email.body
    assert "Ship 5ca1ab1e to production?" in body
    assert "Revision: 5ca1ab1e Simulated revision" in body
    assert "Link: https://ci.example.com/1" in body
    assert f"Expires: {request.expires_at:%Y-%m-%d %H:%M} UTC" in body
    links = dict(LINK_RE.findall(body))
    assert set(links) == {"Approve", "Reject"} and links["Approve"] != links["Reject"]
    html = email.alternatives[0][0]
    assert links["Approve"] in html and "Ship 5ca1ab1e to production?" in html
    # One single-use link row per reviewer, shared by the Approve and Reject links.
    assert ApprovalLink.objects.filter(request=request).count() == 3
    other = next(m for m in mailoutbox if m.to == ["bob@example.com"])
    assert links["Approve"] not in other.body


def test_the_reviewers_setting_narrows_the_recipients_and_the_starter_is_left_out(
    release, mailoutbox, alice, bob, carol,
):
    release.to_approval(release_pipeline(Reviewers="alice,group:release-managers"), user=alice)
    assert [m.to[0] for m in mailoutbox] == ["carol@example.com"]


def test_a_second_delivery_of_the_notification_sends_nothing(release, mailoutbox, alice):
    request = release.to_approval(release_pipeline())
    assert len(mailoutbox) == 1
    assert tasks.approval_notify(str(request.pk)) == "nothing to do"
    assert len(mailoutbox) == 1


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        type(self).received.append((self.path, self.headers["Content-Type"],
                                    json.loads(self.rfile.read(length))))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_server():
    """A real HTTP server on localhost standing in for Slack: the edge of the world."""
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Receiver.received
    server.shutdown()
    server.server_close()


def test_the_notification_webhook_receives_a_slack_compatible_payload(
    release, alice, chat_server,
):
    server, received = chat_server
    url = f"http://127.0.0.1:{server.server_port}/hooks/release"
    request = release.to_approval(release_pipeline(NotificationWebhook=url), commit="5ca1ab1e")
    assert len(received) == 1
    path, content_type, payload = received[0]
    assert path == "/hooks/release" and content_type == "application/json"
    link = f"https://conveyor.example.com/approvals/#approval-{request.pk}"
    assert payload["pipeline"] == "shop"
    assert payload["stage"] == "Production"
    assert payload["action"] == "Approve"
    assert payload["message"] == "Ship 5ca1ab1e to production?"
    assert payload["link"] == link
    assert payload["expiry"] == request.expires_at.isoformat().replace("+00:00", "Z")
    assert payload["pipelineExecutionId"] == str(request.execution.execution_id)
    assert payload["text"].startswith("Approval needed: shop / Production / Approve (#1)")
    assert f"<{link}|Review it>" in payload["text"]


def test_an_unreachable_webhook_does_not_stop_the_emails_or_the_approval(
    release, mailoutbox, alice, chat_server,
):
    server, _ = chat_server
    dead = f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    request = release.to_approval(release_pipeline(NotificationWebhook=dead + "/gone"))
    assert len(mailoutbox) == 1 and request.status == "Pending"
    assert request.notified_at is not None
