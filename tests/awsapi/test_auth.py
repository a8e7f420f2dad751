"""Requests to /aws/ must be signed (SigV4) with an active access key; refusals change nothing."""

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from unittest import mock

import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from awsapi.models import AccessKey
from awsapi.services import access_key_create, access_key_deactivate
from pipelines.models import Pipeline

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _raw(live_server, key_id: str, secret: str, *, target: str = "ListPipelines",
         body: bytes = b"{}", sent_body: bytes | None = None, service: str = "codepipeline",
         method: str = "POST", content_type: str = "application/x-amz-json-1.1"):
    """Sign a request as botocore does, send it with urllib (optionally another body)."""
    url = live_server.url + "/aws/"
    request = AWSRequest(method=method, url=url, data=body, headers={
        "X-Amz-Target": f"CodePipeline_20150709.{target}", "Content-Type": content_type})
    SigV4Auth(Credentials(key_id, secret), service, "us-east-1").add_auth(request)
    sent = urllib.request.Request(url, data=body if sent_body is None else sent_body,
                                  headers=dict(request.headers.items()), method=method)
    try:
        with urllib.request.urlopen(sent) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def _code(caught) -> str:
    return caught.value.response["Error"]["Code"]


def test_a_signed_request_is_served_and_marks_the_key_used(aws, owner, live_server):
    key, secret = access_key_create(user=owner)
    status, headers, body = _raw(live_server, key.access_key_id, secret)
    assert status == 200 and body == {"pipelines": []}
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert headers["x-amzn-RequestId"]
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_an_unsigned_request_is_refused_as_unrecognized_client(live_server, owner,
                                                                aws_definition):
    client = boto3.session.Session().client(
        "codepipeline", endpoint_url=live_server.url + "/aws/", region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}))
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.create_pipeline(pipeline=aws_definition("demo"))
    client.close()
    assert _code(caught) == "UnrecognizedClientException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert not Pipeline.objects.exists()


def test_a_wrong_secret_is_refused_as_invalid_signature(aws, owner, aws_definition):
    key, _secret = access_key_create(user=owner)
    client = aws(key_id=key.access_key_id, secret="x" * 40)
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.create_pipeline(pipeline=aws_definition("demo"))
    assert _code(caught) == "InvalidSignatureException"
    assert "does not match" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert not Pipeline.objects.exists()
    key.refresh_from_db()
    assert key.last_used_at is None


def test_an_unknown_key_is_refused_as_unrecognized_client(aws, owner, aws_definition):
    access_key_create(user=owner)
    client = aws(key_id="AKIA" + "Z" * 16, secret="x" * 40)
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.create_pipeline(pipeline=aws_definition("demo"))
    assert _code(caught) == "UnrecognizedClientException"
    assert not Pipeline.objects.exists()


def test_a_deactivated_key_is_refused(aws, owner):
    key, secret = access_key_create(user=owner)
    client = aws(key_id=key.access_key_id, secret=secret)
    assert client.list_pipelines()["pipelines"] == []
    access_key_deactivate(access_key=key)
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.list_pipelines()
    assert _code(caught) == "UnrecognizedClientException"


def test_the_key_of_a_deactivated_user_is_refused(aws, owner):
    client = aws(owner)
    owner.is_active = False
    owner.save()
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.list_pipelines()
    assert _code(caught) == "UnrecognizedClientException"


@pytest.mark.parametrize(("skew", "words"), [(-16, "Signature expired"),
                                             (16, "Signature not yet current")])
def test_a_signature_dated_more_than_15_minutes_away_is_refused(aws, owner, aws_definition,
                                                                skew, words):
    client = aws(owner)
    # The client's clock is the edge of the world here: botocore dates its
    # signature with botocore.auth.get_current_datetime, moved by `skew` minutes.
    clock = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=skew)
    with mock.patch("botocore.auth.get_current_datetime", return_value=clock), \
            pytest.raises(client.exceptions.ClientError) as caught:
        client.create_pipeline(pipeline=aws_definition("demo"))
    assert _code(caught) == "InvalidSignatureException"
    assert caught.value.response["Error"]["Message"].startswith(words)
    assert not Pipeline.objects.exists()


def test_a_signature_dated_within_the_window_is_accepted(aws, owner):
    client = aws(owner)
    clock = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=14)
    with mock.patch("botocore.auth.get_current_datetime", return_value=clock):
        assert client.list_pipelines()["pipelines"] == []


def test_a_body_changed_after_signing_is_refused(live_server, owner, aws_definition,
                                                 runnable_providers):
    key, secret = access_key_create(user=owner)
    signed = json.dumps({"pipeline": aws_definition("demo")}).encode()
    tampered = json.dumps({"pipeline": aws_definition("evil")}).encode()
    status, headers, body = _raw(live_server, key.access_key_id, secret,
                                 target="CreatePipeline", body=signed, sent_body=tampered)
    assert status == 403
    assert body["__type"] == "InvalidSignatureException"
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert not Pipeline.objects.exists()
    # The same signature on the body it was made for is good.
    status, _, body = _raw(live_server, key.access_key_id, secret,
                           target="CreatePipeline", body=signed)
    assert status == 200 and body["pipeline"]["name"] == "demo"


def test_a_signature_for_another_service_is_refused(live_server, owner):
    key, secret = access_key_create(user=owner)
    status, _, body = _raw(live_server, key.access_key_id, secret, service="codebuild")
    assert status == 403
    assert body == {"__type": "InvalidSignatureException",
                    "message": "Credential should be scoped to correct service: "
                               "'codepipeline'."}


def test_an_operation_conveyor_does_not_serve_is_unknown(live_server, owner):
    key, secret = access_key_create(user=owner)
    status, _, body = _raw(live_server, key.access_key_id, secret, target="PutActionRevision")
    assert status == 400 and body["__type"] == "UnknownOperationException"


def test_a_body_that_is_not_json_is_a_serialization_error(live_server, owner):
    key, secret = access_key_create(user=owner)
    status, _, body = _raw(live_server, key.access_key_id, secret, body=b"{nope")
    assert status == 400 and body["__type"] == "SerializationException"


def test_a_malformed_authorization_header_is_an_incomplete_signature(live_server, owner):
    request = urllib.request.Request(
        live_server.url + "/aws/", data=b"{}", method="POST",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/x",
                 "X-Amz-Target": "CodePipeline_20150709.ListPipelines",
                 "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 400
    assert json.loads(caught.value.read())["__type"] == "IncompleteSignatureException"
    assert not AccessKey.objects.filter(last_used_at__isnull=False).exists()


def test_validation_errors_use_aws_wording(live_server, owner):
    key, secret = access_key_create(user=owner)
    status, _, body = _raw(live_server, key.access_key_id, secret, target="GetPipeline",
                           body=b"{}")
    assert status == 400
    assert body == {"__type": "ValidationException",
                    "message": "1 validation error detected: Value 'null' at 'name' failed to "
                               "satisfy constraint: Member must not be null"}


def test_a_body_over_the_upload_limit_is_refused_before_anything_runs(live_server, owner,
                                                                      settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    key, secret = access_key_create(user=owner)
    big = json.dumps({"name": "x" * 2000}).encode()
    status, _, body = _raw(live_server, key.access_key_id, secret, target="GetPipeline",
                           body=big)
    assert status == 413 and body["__type"] == "ValidationException"


def test_only_post_is_served(live_server):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(live_server.url + "/aws/")
    assert caught.value.code == 405
    assert json.loads(caught.value.read())["__type"] == "UnknownOperationException"
