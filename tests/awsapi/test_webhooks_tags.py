"""Tags and webhooks through real boto3 against a live server.

The forge that would send deliveries to a webhook's URL is stood in for by
plain HTTP requests from the test, signed as GitHub signs them.
"""

import hashlib
import hmac
import json
import urllib.error
import urllib.request

import pytest
from botocore.exceptions import ClientError

from executions import tasks
from executions.models import PipelineExecution
from pipelines.models import Pipeline, Webhook

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ARN = "arn:aws:codepipeline:us-east-1:000000000000:demo"
HOOK_ARN = "arn:aws:codepipeline:us-east-1:000000000000:webhook:demo-push"


@pytest.fixture
def client(aws, owner, aws_definition, settings, live_server, monkeypatch):
    """An owner's boto3 client and a pipeline "demo" whose Checkout builds branch main."""
    settings.CONVEYOR_BASE_URL = live_server.url
    # Started executions are only recorded: the engine's dispatch is not under test.
    monkeypatch.setattr(tasks, "enqueue", lambda pk: None)
    c = aws(owner)
    c.create_pipeline(pipeline=aws_definition("demo"),
                      tags=[{"key": "team", "value": "payments"}])
    return c


def error_code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.response["Error"]["Code"]


def test_tags_sent_with_create_pipeline_are_kept_and_listed(client):
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == [
        {"key": "team", "value": "payments"}]
    assert Pipeline.objects.get(name="demo").tags == {"team": "payments"}


def test_tag_resource_adds_and_overwrites_and_untag_removes(client):
    client.tag_resource(resourceArn=ARN, tags=[{"key": "team", "value": "billing"},
                                               {"key": "env", "value": "prod"}])
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == [
        {"key": "env", "value": "prod"}, {"key": "team", "value": "billing"}]
    client.untag_resource(resourceArn=ARN, tagKeys=["team", "never-set"])
    assert client.list_tags_for_resource(resourceArn=ARN)["tags"] == [
        {"key": "env", "value": "prod"}]


def test_tags_of_a_pipeline_that_does_not_exist_answer_resource_not_found(client):
    with pytest.raises(ClientError) as exc:
        client.list_tags_for_resource(
            resourceArn="arn:aws:codepipeline:us-east-1:000000000000:nope")
    assert error_code(exc) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as exc:
        client.tag_resource(resourceArn="arn:aws:codepipeline:us-east-1:999999999999:demo",
                            tags=[{"key": "a", "value": "b"}])
    assert error_code(exc) == "ResourceNotFoundException"


def test_reserved_tag_keys_are_refused_naming_the_tag(client):
    with pytest.raises(ClientError) as exc:
        client.tag_resource(resourceArn=ARN, tags=[{"key": "aws:owner", "value": "x"}])
    assert error_code(exc) == "InvalidTagsException"
    assert "tags[0].key" in str(exc.value)
    assert Pipeline.objects.get(name="demo").tags == {"team": "payments"}


def test_more_than_fifty_tags_are_refused_and_none_is_added(client):
    client.tag_resource(resourceArn=ARN, tags=[{"key": f"k{i}", "value": "v"}
                                               for i in range(40)])
    with pytest.raises(ClientError) as exc:
        client.tag_resource(resourceArn=ARN, tags=[{"key": f"x{i}", "value": "v"}
                                                   for i in range(20)])
    assert error_code(exc) == "TooManyTagsException"
    assert len(Pipeline.objects.get(name="demo").tags) == 41


def put(client, **definition):
    webhook = {
        "name": "demo-push", "targetPipeline": "demo", "targetAction": "Checkout",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
        "authentication": "GITHUB_HMAC",
        "authenticationConfiguration": {"SecretToken": "s3cret-token"},
    }
    webhook.update(definition)
    return client.put_webhook(webhook=webhook, tags=[{"key": "team", "value": "payments"}])


def deliver(url: str, payload: dict, *, secret: str | None = "s3cret-token",
            delivery: str = "d-1") -> tuple[int, dict]:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
               "X-GitHub-Delivery": delivery}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(
            secret.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def push(ref: str, after: str = "a" * 40) -> dict:
    return {"ref": ref, "after": after, "before": "0" * 40,
            "commits": [{"id": after, "message": "m", "modified": ["x"]}],
            "head_commit": {"id": after, "message": "Fix the login"},
            "repository": {"clone_url": "/tmp/repo"}}


def test_put_webhook_answers_its_url_arn_and_tags_and_list_webhooks_shows_it(client,
                                                                              live_server):
    item = put(client)["webhook"]
    assert item["url"].startswith(live_server.url + "/api/webhooks/")
    assert item["arn"] == HOOK_ARN
    assert item["definition"]["filters"] == [{"jsonPath": "$.ref",
                                              "matchEquals": "refs/heads/{Branch}"}]
    assert item["tags"] == [{"key": "team", "value": "payments"}]
    listed = client.list_webhooks()["webhooks"]
    assert [w["definition"]["name"] for w in listed] == ["demo-push"]
    assert listed[0]["url"] == item["url"]
    assert client.list_tags_for_resource(resourceArn=HOOK_ARN)["tags"] == [
        {"key": "team", "value": "payments"}]


def test_a_signed_push_matching_the_filters_starts_the_commit_and_others_start_nothing(
        client):
    url = put(client)["webhook"]["url"]
    status, answer = deliver(url, push("refs/heads/feature"), delivery="d-0")
    assert status == 200 and "refs/heads/feature" in answer["decisions"][0]["reason"]
    status, answer = deliver(url, push("refs/heads/main"), secret="wrong")
    assert status == 401
    assert not PipelineExecution.objects.exists()

    status, answer = deliver(url, push("refs/heads/main"))
    assert status == 202, answer
    execution = PipelineExecution.objects.get()
    assert execution.trigger_type == "Webhook"
    assert "demo-push" in execution.trigger_detail
    assert execution.source_revision_overrides[0]["revisionValue"] == "a" * 40
    assert client.list_webhooks()["webhooks"][0]["lastTriggered"]
    status, _ = deliver(url, push("refs/heads/main"))  # the same delivery id again
    assert status == 409


def test_ip_and_unauthenticated_webhooks_authenticate_by_address_or_not_at_all(client):
    url = put(client, authentication="IP",
              authenticationConfiguration={"AllowedIPRange": "10.0.0.0/8"})["webhook"]["url"]
    status, _ = deliver(url, push("refs/heads/main"), secret=None)
    assert status == 401  # the test's address, 127.0.0.1, is outside 10.0.0.0/8
    url = put(client, authentication="IP",
              authenticationConfiguration={"AllowedIPRange": "127.0.0.0/8"})["webhook"]["url"]
    assert deliver(url, push("refs/heads/main"), secret=None, delivery="d-2")[0] == 202
    url = put(client, authentication="UNAUTHENTICATED",
              authenticationConfiguration={})["webhook"]["url"]
    assert deliver(url, push("refs/heads/main", "b" * 40), secret=None,
                   delivery="d-3")[0] == 202


def test_bad_filters_and_authentication_are_refused_at_their_paths(client):
    with pytest.raises(ClientError) as exc:
        put(client, filters=[{"jsonPath": "$.commits[*].id", "matchEquals": "x"},
                             {"jsonPath": "$.ref", "matchEquals": "{Nope}"}])
    assert error_code(exc) == "InvalidWebhookFilterPatternException"
    assert "webhook.filters[0].jsonPath" in str(exc.value)
    assert "webhook.filters[1].matchEquals" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        put(client, authenticationConfiguration={})
    assert error_code(exc) == "InvalidWebhookAuthenticationParametersException"
    assert "SecretToken" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        put(client, targetPipeline="nope")
    assert error_code(exc) == "PipelineNotFoundException"
    with pytest.raises(ClientError) as exc:
        put(client, targetAction="Compile")
    assert error_code(exc) == "ValidationException"
    assert "webhook.targetAction" in str(exc.value)
    assert not Webhook.objects.exists()


def test_delete_webhook_makes_its_url_start_nothing(client):
    url = put(client)["webhook"]["url"]
    client.delete_webhook(name="demo-push")
    client.delete_webhook(name="demo-push")  # as on AWS, deleting twice is no error
    assert client.list_webhooks()["webhooks"] == []
    assert deliver(url, push("refs/heads/main"))[0] == 404


def test_registering_with_a_third_party_says_to_add_the_url_in_the_forge(client):
    url = put(client)["webhook"]["url"]
    with pytest.raises(ClientError) as exc:
        client.register_webhook_with_third_party(webhookName="demo-push")
    assert error_code(exc) == "ValidationException"
    assert url in str(exc.value) and "Settings > Webhooks" in str(exc.value)
    with pytest.raises(ClientError) as exc:
        client.deregister_webhook_with_third_party(webhookName="demo-push")
    assert url in str(exc.value) and "DeleteWebhook" in str(exc.value)
    with pytest.raises(client.exceptions.WebhookNotFoundException):
        client.register_webhook_with_third_party(webhookName="nope")


def test_a_viewer_can_list_but_not_put_webhooks(aws, viewer, client):
    put(client)
    look = aws(viewer)
    assert len(look.list_webhooks()["webhooks"]) == 1
    with pytest.raises(ClientError) as exc:
        look.put_webhook(webhook={"name": "x", "targetPipeline": "demo",
                                  "targetAction": "Checkout", "filters": [],
                                  "authentication": "UNAUTHENTICATED",
                                  "authenticationConfiguration": {}})
    assert error_code(exc) == "AccessDeniedException"
