"""Notification rules: events from a real engine run, to local stand-in targets.

The webhook and Slack targets are a local HTTP server (``receiver``) standing
in for the team's service and Slack's incoming webhook; email goes to Django's
locmem outbox. The django-q2 queue is the ``notify`` fixture, run by hand.
"""

import hashlib
import hmac
import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications import events, services
from notifications.choices import DeliveryStatus
from notifications.models import NotificationDelivery, NotificationRule
from tests.executions.conftest import sim, simple_pipeline


def rule(name="ops", pipeline=None, events_=("execution.failed",), **target):
    r = NotificationRule(name=name, pipeline=pipeline, events=list(events_), **target)
    return services.rule_save(rule=r)


def failing_pipeline(name="shop"):
    return simple_pipeline(name, stages=[("Build", [sim("Compile")]),
                                         ("Deploy", [sim("Release", Outcome="Failed")])])


@pytest.mark.parametrize("kind, previous, status, extra, keys", [
    ("PipelineExecution", "", "InProgress", {}, ["execution.started"]),
    ("PipelineExecution", "", "InProgress", {"execution_type": "ROLLBACK"},
     ["rollback.started", "execution.started"]),
    ("PipelineExecution", "Failed", "InProgress", {}, ["execution.resumed"]),
    ("PipelineExecution", "InProgress", "Superseded", {}, ["execution.superseded"]),
    ("PipelineExecution", "Stopping", "Stopped", {}, ["execution.stopped"]),
    ("StageExecution", "InProgress", "Failed", {}, ["stage.failed"]),
    ("ActionExecution", "", "InProgress", {"action_category": "Approval"},
     ["approval.needed"]),
    ("ActionExecution", "", "InProgress", {"action_category": "Build"}, []),
    ("ActionExecution", "InProgress", "Failed", {}, ["action.failed"]),
])
def test_engine_events_map_to_the_rule_events_a_person_chooses(kind, previous, status,
                                                                extra, keys):
    assert events.event_keys(kind=kind, previous=previous, status=status, **extra) == keys


def test_a_failed_execution_posts_a_signed_eventbridge_shaped_event(db, driver, notify,
                                                                     receiver):
    pipeline = failing_pipeline()
    rule(pipeline=pipeline, events_=["execution.failed", "stage.failed"],
         target_kind="webhook", target_url=receiver.url, secret="hook-secret")
    execution = driver.start(pipeline)
    driver.run()
    notify.run()

    assert len(receiver.requests) == 2
    by_type = {r.json["detail-type"]: r for r in receiver.requests}
    sent = by_type["CodePipeline Pipeline Execution State Change"]
    body = sent.json
    assert body["source"] == "aws.codepipeline"
    assert body["resources"] == ["arn:aws:codepipeline:us-east-1:000000000000:shop"]
    assert body["detail"]["pipeline"] == "shop"
    assert body["detail"]["state"] == "FAILED"
    assert body["detail"]["execution-id"] == str(execution.execution_id)
    assert body["conveyor"]["link"] == \
        "https://conveyor.example.com/pipelines/shop/executions/1/"
    assert sent.headers["X-Conveyor-Signature-256"] == "sha256=" + hmac.new(
        b"hook-secret", sent.body, hashlib.sha256).hexdigest()
    stage = by_type["CodePipeline Stage Execution State Change"].json
    assert stage["detail"]["stage"] == "Deploy" and stage["detail"]["state"] == "FAILED"
    assert set(NotificationDelivery.objects.values_list("status", flat=True)) == {"Delivered"}


def test_a_rule_for_every_pipeline_sends_slack_a_readable_message_with_a_link(
        db, driver, notify, receiver):
    rule(events_=["execution.started", "execution.succeeded"], target_kind="slack",
         target_url=receiver.url)
    pipeline = simple_pipeline("web")
    driver.start(pipeline)
    driver.run()
    notify.run()
    texts = [r.json["text"] for r in receiver.requests]
    assert len(texts) == 2
    assert texts[1].startswith(":white_check_mark: Execution succeeded: web (#1)")
    assert "<https://conveyor.example.com/pipelines/web/executions/1/|Open the execution>" \
        in texts[1]


def test_an_email_rule_writes_to_its_addresses(db, driver, notify):
    pipeline = failing_pipeline()
    rule(pipeline=pipeline, target_kind="email", email_to="ops@example.com, dev@example.com")
    driver.start(pipeline)
    driver.run()
    notify.run()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Execution failed: shop (#1)"
    assert mail.outbox[0].to == ["ops@example.com", "dev@example.com"]
    assert "https://conveyor.example.com/pipelines/shop/executions/1/" in mail.outbox[0].body


def test_a_rule_of_another_pipeline_or_another_event_sends_nothing(db, driver, notify,
                                                                    receiver):
    other = simple_pipeline("other")
    rule(pipeline=other, target_kind="webhook", target_url=receiver.url)
    rule(name="success-only", events_=["execution.succeeded"], target_kind="webhook",
         target_url=receiver.url)
    driver.start(failing_pipeline())
    driver.run()
    notify.run()
    assert receiver.requests == []
    assert not NotificationDelivery.objects.exists()


def test_scanning_the_same_events_twice_sends_once(db, driver, notify, receiver):
    pipeline = failing_pipeline()
    rule(pipeline=pipeline, target_kind="webhook", target_url=receiver.url)
    driver.start(pipeline)
    driver.run()
    scans = [args for name, args in notify.queued if name == "events_scan"]
    notify.run()
    from notifications.models import NotificationCursor

    NotificationCursor.objects.update(last_event_id=0)  # as if a second cluster scanned
    for args in scans:
        services.events_scan(pipeline_id=args[0], up_to=args[1])
    notify.run()
    assert len(receiver.requests) == 1


def test_a_dead_target_is_retried_with_backoff_then_given_up_with_its_answer_kept(
        db, driver, notify, settings):
    settings.CONVEYOR_NOTIFY_ATTEMPTS = 3
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/hook"
    pipeline = failing_pipeline()
    rule(pipeline=pipeline, target_kind="webhook", target_url=dead)
    driver.start(pipeline)
    driver.run()
    notify.run()
    delivery = NotificationDelivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert "no answer" in delivery.last_answer and "refused" in delivery.last_answer
    (pk, when), = notify.retries
    assert timedelta(seconds=29) < when - timezone.now() <= timedelta(seconds=30)
    # Not due yet: a second task for it changes nothing.
    assert services.delivery_send(delivery_id=pk) == "nothing to do"
    for _attempt in (2, 3):
        NotificationDelivery.objects.filter(pk=pk).update(next_attempt_at=timezone.now())
        services.delivery_send(delivery_id=pk)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3
    assert len(notify.retries) == 2
    assert notify.retries[1][1] - timezone.now() > timedelta(seconds=100)  # 2 min: backoff


def test_a_target_answering_an_error_is_recorded_with_its_answer(db, driver, notify,
                                                                  receiver):
    receiver.answer = (500, {"error": "down for maintenance"}, {})
    pipeline = failing_pipeline()
    rule(pipeline=pipeline, target_kind="webhook", target_url=receiver.url)
    driver.start(pipeline)
    driver.run()
    notify.run()
    delivery = NotificationDelivery.objects.get()
    assert delivery.last_answer == 'HTTP 500: {"error": "down for maintenance"}'
    assert delivery.status == DeliveryStatus.PENDING


def test_without_any_rule_the_engine_queues_no_scan(db, driver, notify):
    driver.start(simple_pipeline("quiet"))
    driver.run()
    assert notify.queued == []


def test_rules_are_managed_in_the_rest_api_and_refused_naming_the_field(db, api, owner,
                                                                         viewer):
    simple_pipeline("shop")
    client = api(owner)
    answer = client.post("/api/notification-rules/", {
        "name": "ops", "pipelineName": "shop", "events": ["execution.failed", "nope"],
        "targetKind": "webhook", "targetUrl": "ftp://x"}, format="json")
    assert answer.status_code == 400
    assert "events" in str(answer.json())
    answer = client.post("/api/notification-rules/", {
        "name": "ops", "pipelineName": "shop", "events": ["execution.failed"],
        "targetKind": "webhook", "targetUrl": "ftp://x"}, format="json")
    assert answer.status_code == 400 and "targetUrl" in str(answer.json())
    answer = client.post("/api/notification-rules/", {
        "name": "ops", "pipelineName": "shop", "events": ["execution.failed"],
        "targetKind": "webhook", "targetUrl": "https://hooks.example.com/x",
        "secret": "s"}, format="json")
    assert answer.status_code == 201, answer.json()
    assert "secret" not in answer.json()
    assert NotificationRule.objects.get().secret == "s"
    assert api(viewer).get("/api/notification-rules/").json()["results"][0]["name"] == "ops"
    assert api(viewer).post("/api/notification-rules/", {}, format="json").status_code == 403


def test_the_admin_shows_a_rules_last_deliveries_with_their_answer(db, driver, notify,
                                                                   receiver, admin_client):
    pipeline = failing_pipeline()
    r = rule(pipeline=pipeline, target_kind="webhook", target_url=receiver.url)
    driver.start(pipeline)
    driver.run()
    notify.run()
    page = admin_client.get(f"/admin/notifications/notificationrule/{r.pk}/change/")
    assert page.status_code == 200
    assert b"HTTP 200: {&quot;ok&quot;: true}" in page.content


def test_while_one_delivery_is_sending_another_is_postponed_not_attempted(db, driver, notify,
                                                                          receiver):
    pipeline = failing_pipeline()
    rule(pipeline=pipeline, target_kind="webhook", target_url=receiver.url)
    driver.start(pipeline)
    driver.run()
    notify.run()
    # As if a worker were still waiting on a target that hangs with this one.
    NotificationDelivery.objects.update(status=DeliveryStatus.SENDING,
                                        claimed_at=timezone.now())
    driver.start(pipeline)
    driver.run()
    notify.run()
    second = NotificationDelivery.objects.order_by("id").last()
    assert second.status == DeliveryStatus.PENDING
    assert second.attempts == 0 and second.next_attempt_at > timezone.now()
    assert [pk for pk, _ in notify.retries] == [second.pk]
    assert len(receiver.requests) == 1


def test_the_admin_lists_notification_deliveries_in_english(admin_client):
    index = admin_client.get("/admin/").content.decode()
    assert "Notification deliveries" in index and "deliverys" not in index
