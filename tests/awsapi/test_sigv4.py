"""SigV4 verification agrees with botocore's signer, byte for byte (no server, no database)."""

from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from awsapi import sigv4
from awsapi.errors import AwsError

KEY_ID, SECRET = "AKIAABCDEFGHIJKLMNOP", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _signed(url: str = "http://127.0.0.1:8000/aws/", body: bytes = b'{"name": "demo"}',
            headers: dict | None = None, when: datetime = NOW, region: str = "us-east-1",
            secret: str = SECRET) -> tuple[AWSRequest, dict]:
    request = AWSRequest(method="POST", url=url, data=body, headers={
        "X-Amz-Target": "CodePipeline_20150709.GetPipeline",
        "Content-Type": "application/x-amz-json-1.1", **(headers or {})})
    # botocore reads the time from this function: pinned so the test is exact.
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=when.replace(tzinfo=None)):
        SigV4Auth(Credentials(KEY_ID, secret), "codepipeline", region).add_auth(request)
    # What the server sees: lower-case names, and the Host the HTTP client adds.
    seen = {k.lower(): v for k, v in request.headers.items()}
    seen["host"] = urlsplit(url).netloc
    return request, seen


def _verify(request: AWSRequest, seen: dict, *, body: bytes | None = None,
            now: datetime = NOW, path: str | None = None, secret: str = SECRET) -> None:
    parts = urlsplit(request.url)
    sigv4.verify(auth=sigv4.parse_authorization(seen.get("authorization")), secret=secret,
                 method=request.method, path=path or parts.path, query=parts.query,
                 headers=seen, body=request.body if body is None else body, now=now)


def _refusal(callable_) -> AwsError:
    with pytest.raises(AwsError) as caught:
        callable_()
    return caught.value


def test_a_request_signed_by_botocore_verifies():
    _verify(*_signed())


def test_query_strings_paths_and_spaced_header_values_are_canonicalized_as_botocore_does():
    request, seen = _signed(url="http://localhost:8000/aws/./x/..//?b=2&a=1&a=0",
                            headers={"X-Custom": "  two   spaces  "})
    _verify(request, seen, path="/aws/./x/..//")


def test_a_default_port_is_not_part_of_the_signed_host():
    request, seen = _signed(url="http://conveyor.example/aws/")
    assert "host" in seen["authorization"]
    _verify(request, seen)


def test_any_region_in_the_credential_scope_is_accepted():
    _verify(*_signed(region="eu-west-3"))


def test_the_wrong_secret_does_not_verify():
    error = _refusal(lambda: _verify(*_signed(secret="not-the-secret")))
    assert error.code == "InvalidSignatureException" and error.status == 403


def test_a_changed_signed_header_does_not_verify():
    request, seen = _signed()
    seen["x-amz-target"] = "CodePipeline_20150709.DeletePipeline"
    assert _refusal(lambda: _verify(request, seen)).code == "InvalidSignatureException"


def test_a_changed_body_does_not_verify():
    request, seen = _signed()
    error = _refusal(lambda: _verify(request, seen, body=b'{"name": "other"}'))
    assert error.code == "InvalidSignatureException"


def test_a_declared_payload_hash_must_be_the_bodys():
    request, seen = _signed(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    error = _refusal(lambda: _verify(request, seen))
    assert "Unsigned payloads" in error.message


@pytest.mark.parametrize("minutes", [-15, 15])
def test_fifteen_minutes_of_clock_skew_are_tolerated(minutes):
    _verify(*_signed(), now=NOW + timedelta(minutes=minutes))


@pytest.mark.parametrize(("seconds", "words"), [(15 * 60 + 1, "Signature expired"),
                                                (-15 * 60 - 1, "Signature not yet current")])
def test_beyond_fifteen_minutes_the_signature_is_refused(seconds, words):
    error = _refusal(lambda: _verify(*_signed(), now=NOW + timedelta(seconds=seconds)))
    assert error.code == "InvalidSignatureException"
    assert error.message.startswith(words)


def test_a_date_header_may_stand_in_for_x_amz_date():
    request, seen = _signed(headers={"Date": "Sun, 01 Mar 2026 12:00:00 GMT"})
    assert "x-amz-date" not in seen
    _verify(request, seen)


def test_the_date_header_must_be_signed():
    request, seen = _signed()
    auth = seen["authorization"].replace("x-amz-date;", "")
    error = _refusal(lambda: _verify(request, {**seen, "authorization": auth}))
    assert "'x-amz-date' must be a 'SignedHeader'" in error.message


@pytest.mark.parametrize(("header", "code"), [
    (None, "UnrecognizedClientException"),
    ("", "UnrecognizedClientException"),
    ("AWS AKIA:sig", "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP/20260301/us-east-1/codepipeline/"
     "aws4_request, SignedHeaders=host", "IncompleteSignatureException"),
    ("AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP/20260301/codepipeline/aws4_request, "
     "SignedHeaders=host, Signature=ab", "IncompleteSignatureException"),
])
def test_a_missing_or_malformed_authorization_header_is_refused(header, code):
    assert _refusal(lambda: sigv4.parse_authorization(header)).code == code


def test_the_credential_date_must_be_the_requests_day():
    request, seen = _signed()
    auth = seen["authorization"].replace("/20260301/", "/20260302/")
    error = _refusal(lambda: _verify(request, {**seen, "authorization": auth}))
    assert "Date in Credential scope does not match" in error.message
