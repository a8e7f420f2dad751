"""Signature Version 4, verified exactly as botocore (``botocore/auth.py``, SigV4Auth) signs.

Pure functions: no database, no Django request. ``verify`` rebuilds the
canonical request from what arrived, derives the signing key from the secret and
compares signatures in constant time. Every refusal is an ``AwsError`` in AWS's
words, so that a client sees what it would see from AWS.

The canonical request, as botocore builds it::

    METHOD
    /normalized/path            (dot segments and empty segments removed, quoted)
    canonical query string      (pairs sorted, as sent)
    name:value per signed header (lower-case names, sorted, whitespace squeezed)
    <blank line>
    signed;header;names
    hex SHA-256 of the body     (or the X-Amz-Content-SHA256 header's value)
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from awsapi import errors

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "codepipeline"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
# AWS refuses a signature whose date is more than 15 minutes from its clock.
MAX_SKEW = timedelta(minutes=15)
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

_PARAM_RE = re.compile(r"\s*(Credential|SignedHeaders|Signature)\s*=\s*([^,\s]*)\s*")


@dataclass(frozen=True)
class Authorization:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key_id: str
    date: str  # YYYYMMDD, from the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


def parse_authorization(value: str | None) -> Authorization:
    """Split the header; a missing header means the request is not signed at all."""
    if not value:
        raise errors.unrecognized_client(
            "Missing Authentication Token: requests to this endpoint must be signed "
            "with an access key (Signature Version 4)."
        )
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise errors.incomplete_signature(
            f"Unsupported authorization algorithm '{algorithm}': use {ALGORITHM}."
        )
    params = {}
    for part in rest.split(","):
        match = _PARAM_RE.fullmatch(part)
        if match:
            params[match.group(1)] = match.group(2)
    missing = [name for name in ("Credential", "SignedHeaders", "Signature")
               if not params.get(name)]
    if missing:
        raise errors.incomplete_signature(
            " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
            + f" Authorization={value}"
        )
    credential = params["Credential"].split("/")
    if len(credential) != 5 or credential[4] != "aws4_request" or not all(credential):
        raise errors.incomplete_signature(
            f"Credential should be of the form '<key id>/<YYYYMMDD>/<region>/"
            f"{SERVICE}/aws4_request', not '{params['Credential']}'."
        )
    key_id, date, region, service, _ = credential
    return Authorization(
        access_key_id=key_id, date=date, region=region, service=service,
        signed_headers=tuple(params["SignedHeaders"].split(";")),
        signature=params["Signature"].lower(),
    )


def request_time(headers: dict[str, str]) -> tuple[str, datetime, str]:
    """(SigV4 timestamp, the same as a datetime, the header it came from).

    botocore sends ``X-Amz-Date``; a client may use ``Date`` instead, as SigV4 allows.
    """
    if headers.get("x-amz-date"):
        raw = headers["x-amz-date"]
        try:
            when = datetime.strptime(raw, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            raise errors.incomplete_signature(
                f"X-Amz-Date '{raw}' is not a date of the form YYYYMMDD'T'HHMMSS'Z'."
            ) from None
        return raw, when, "x-amz-date"
    if headers.get("date"):
        try:
            when = parsedate_to_datetime(headers["date"]).astimezone(UTC)
        except (TypeError, ValueError):
            raise errors.incomplete_signature(
                f"Date header '{headers['date']}' is not an HTTP date."
            ) from None
        return when.strftime(TIMESTAMP_FORMAT), when, "date"
    raise errors.incomplete_signature(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def check_freshness(timestamp: str, when: datetime, now: datetime) -> None:
    """Refuse a signature made more than MAX_SKEW before or after ``now``."""
    fmt = TIMESTAMP_FORMAT
    if when < now - MAX_SKEW:
        raise errors.invalid_signature(
            f"Signature expired: {timestamp} is now earlier than "
            f"{(now - MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} - 15 min.)"
        )
    if when > now + MAX_SKEW:
        raise errors.invalid_signature(
            f"Signature not yet current: {timestamp} is still later than "
            f"{(now + MAX_SKEW).strftime(fmt)} ({now.strftime(fmt)} + 15 min.)"
        )


def normalize_path(path: str) -> str:
    """botocore's ``normalize_url_path`` (RFC 3986 dot segments, empty segments dropped), quoted."""
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if out:
                out.pop()
        elif segment and segment != ".":
            out.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and out else ""
    return quote(first + "/".join(out) + last, safe="/~")


def canonical_query(query: str) -> str:
    """The query string's pairs sorted, as sent (botocore's ``_canonical_query_string_url``)."""
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        pairs.append((key, value))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def canonical_request(*, method: str, path: str, query: str, headers: dict[str, str],
                      signed_headers: tuple[str, ...], payload_hash: str,
                      normalize: bool = True) -> str:
    lines = [method.upper(), normalize_path(path) if normalize else quote(path, safe="/~"),
             canonical_query(query)]
    names = sorted(set(signed_headers))
    canonical_headers = "\n".join(
        f"{name}:{' '.join(headers.get(name, '').split())}" for name in names
    )
    lines.append(canonical_headers + "\n")
    lines.append(";".join(names))
    lines.append(payload_hash)
    return "\n".join(lines)


def string_to_sign(*, timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join([ALGORITHM, timestamp, scope, digest])


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signature(*, secret: str, auth: Authorization, to_sign: str) -> str:
    """HMAC chain: "AWS4"+secret → date → region → service → "aws4_request" → string to sign."""
    key = _hmac(f"AWS4{secret}".encode(), auth.date)
    for part in (auth.region, auth.service, "aws4_request"):
        key = _hmac(key, part)
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def verify(*, auth: Authorization, secret: str, method: str, path: str, query: str,
           headers: dict[str, str], body: bytes | None, now: datetime,
           service: str = SERVICE, payload_hash: str | None = None,
           normalize: bool = True) -> None:
    """Check a parsed Authorization against the request; raise ``AwsError`` if it fails.

    1. The credential is scoped to this service, on the day of the request's
       timestamp, which is within MAX_SKEW of ``now``.
       Host and the timestamp header must be among the signed headers, so that
       neither can be changed without breaking the signature.
    2. The body is the one the client hashed (a declared X-Amz-Content-SHA256
       must match the real hash; an unsigned payload is refused).
    3. The signature matches, compared in constant time.

    As on AWS, a captured request can be replayed within the skew window; every
    operation that starts something takes a client token for that reason.

    ``headers`` has lower-case names. The S3 endpoint passes ``service="s3"``, the
    body's hash it computed while streaming it (``payload_hash``, ``body`` None) and
    ``normalize=False`` (S3 signs the path as sent).
    """
    if auth.service != service:
        raise errors.invalid_signature(
            f"Credential should be scoped to correct service: '{service}'."
        )
    timestamp, when, date_header = request_time(headers)
    if auth.date != timestamp[:8]:
        raise errors.invalid_signature(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
            f"date from HTTP: '{auth.date}' != '{timestamp[:8]}', from '{timestamp}'."
        )
    check_freshness(timestamp, when, now)
    for required in ("host", date_header):
        if required not in auth.signed_headers:
            raise errors.invalid_signature(
                f"'{required}' must be a 'SignedHeader' in the AWS Authorization."
            )
    if payload_hash is None:
        payload_hash = hashlib.sha256(body or b"").hexdigest()
    declared = headers.get("x-amz-content-sha256")
    if declared is not None and declared != payload_hash:
        raise errors.invalid_signature(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
            if declared != UNSIGNED_PAYLOAD
            else "Unsigned payloads are not accepted: sign the body."
        )
    canonical = canonical_request(
        method=method, path=path, query=query, headers=headers,
        signed_headers=auth.signed_headers, payload_hash=payload_hash, normalize=normalize,
    )
    expected = signature(
        secret=secret, auth=auth,
        to_sign=string_to_sign(timestamp=timestamp, scope=auth.scope, canonical=canonical),
    )
    if not hmac.compare_digest(expected.encode(), auth.signature.encode()):
        raise errors.invalid_signature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details."
        )
