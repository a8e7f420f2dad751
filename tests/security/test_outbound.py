"""Finding 7 of the security review: outbound requests to URLs from definitions do not
reach the server's own network unless the operator allows it (CONVEYOR_OUTBOUND_ALLOW),
follow no redirect, and quote an answer's body only as a short excerpt.

The receivers are local HTTP servers on a thread (the edge of the world, standing in for a
team's service); everything else is the real runner and the real sockets."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import notifications
from config import outbound
from runners import ActionFailed
from runners.webhook import WebhookInvokeRunner
from tests.factories import action
from tests.runners.conftest import make_ctx
from tests.runners.receiver import start_receiver

runner = WebhookInvokeRunner()


@pytest.fixture
def receiver():
    receiver, server = start_receiver()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture
def default_rules(settings):
    """The shipped default: nothing allowed beyond public addresses."""
    settings.CONVEYOR_OUTBOUND_ALLOW = []


def run(tmp_path, url):
    doc = action("Notify", "Invoke", "Webhook", configuration={"Url": url})
    ctx = make_ctx(tmp_path, doc, deadline=timezone.now() + timedelta(minutes=5))
    return runner.run(ctx)


@pytest.mark.parametrize("host,kind", [
    ("127.0.0.1", "loopback"), ("[::1]", "loopback"), ("localhost", "loopback"),
    ("169.254.169.254", "link-local"), ("[fe80::1]", "link-local"),
    ("10.0.0.5", "private"), ("172.16.3.4", "private"), ("192.168.1.1", "private"),
    ("[fd00::1]", "private"), ("100.64.0.1", "not a public"),
    ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"),
    ("[::ffff:127.0.0.1]", "loopback"),
])
def test_the_default_refuses_each_non_public_range(default_rules, host, kind):
    with pytest.raises(outbound.OutboundRefused, match=kind):
        outbound.resolve(f"http://{host}:8080/hook")


def test_a_public_address_is_allowed(default_rules):
    assert outbound.resolve("https://93.184.215.14/x")[3] == "93.184.215.14"


def test_an_invoke_webhook_to_loopback_fails_without_calling_it(tmp_path, receiver,
                                                                 default_rules):
    with pytest.raises(ActionFailed, match="Refused to call .*127.0.0.1 is a loopback"):
        run(tmp_path, receiver.url)
    assert receiver.requests == []


def test_the_operator_allows_a_range_or_a_host(tmp_path, receiver, settings):
    receiver.answer = (200, {"status": "Succeeded", "summary": "done"}, {})
    settings.CONVEYOR_OUTBOUND_ALLOW = ["127.0.0.0/8"]
    assert run(tmp_path, receiver.url).summary == "done"
    settings.CONVEYOR_OUTBOUND_ALLOW = ["localhost"]
    assert run(tmp_path, receiver.url.replace("127.0.0.1", "localhost")).summary == "done"


def test_a_redirect_is_not_followed(tmp_path, receiver):
    receiver.answer = (302, "", {"Location": "http://169.254.169.254/latest/meta-data/"})
    with pytest.raises(ActionFailed, match="answered 302 Found \\(redirects are not followed"):
        run(tmp_path, receiver.url)
    assert len(receiver.requests) == 1


def test_an_answers_body_reaches_the_summary_only_as_a_short_excerpt(tmp_path, receiver):
    page = "<html>\n<title>Site administration</title>\x1b[31m" + "secret row\n" * 500
    receiver.answer = (500, page, {})
    with pytest.raises(ActionFailed) as failed:
        run(tmp_path, receiver.url)
    summary = failed.value.summary
    assert len(summary) < len(receiver.url) + 260
    assert "\n" not in summary and "\x1b" not in summary and summary.endswith("…")


def test_a_notification_webhook_to_a_private_address_is_refused_and_logged(
        default_rules, receiver, caplog, monkeypatch):
    monkeypatch.setattr(notifications, "webhook_payload", lambda request: {"text": "hi"})

    class Request:
        notification_webhook = receiver.url

    caplog.set_level(logging.WARNING, "conveyor.approvals")
    assert notifications.post_webhook(Request()) is None
    assert receiver.requests == []
    assert "is a loopback address" in caplog.text


def test_a_notification_webhook_redirect_is_not_followed(receiver, monkeypatch):
    receiver.answer = (301, "", {"Location": receiver.url + "/elsewhere"})
    monkeypatch.setattr(notifications, "webhook_payload", lambda request: {"text": "hi"})

    class Request:
        notification_webhook = receiver.url + "/hook"

    assert notifications.post_webhook(Request()) == 301
    assert [r.path for r in receiver.requests] == ["/conveyor/hook"]
