"""``/s3/<bucket>/<key>``: the S3 calls a job worker makes for its artifacts.

Path-style S3 (GetObject, HeadObject, PutObject, and the multipart upload that boto3's
``upload_file`` uses for large files) signed with SigV4 for service
``s3`` by a job's artifact credentials (``X-Amz-Security-Token``), so an unmodified
boto3 ``s3`` client with ``endpoint_url`` fetches inputs and uploads outputs. Who
may reach which object is ``jobs.artifacts`` (docs/job-workers.md); the answers
and errors are S3's (XML error bodies with the error code).

CSRF-exempt, as ``/aws/``: the only credential accepted is the signature in the
request itself, never a session cookie. The body is streamed to a temporary file
(hashing it for the signature as it arrives) instead of ``request.body``, so
Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not apply here; this endpoint's own
limit is ``CONVEYOR_JOB_ARTIFACT_MAX_BYTES`` (1 GiB).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import uuid
from pathlib import Path
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from django.http import FileResponse, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from awsapi import errors, sigv4
from jobs import artifacts

logger = logging.getLogger("conveyor.awsapi")


def _error(code: str, message: str, status: int, request_id: str, head: bool = False
           ) -> HttpResponse:
    body = ("" if head else
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{request_id}</RequestId></Error>")
    response = HttpResponse(body, status=status, content_type="application/xml")
    response["x-amz-request-id"] = request_id
    return response


def _receive(request: HttpRequest) -> tuple[Path | None, str]:
    """Stream the body to a temporary file; (path or None, its SHA-256)."""
    length = int(request.headers.get("Content-Length") or 0)
    if length > artifacts.max_upload_bytes():
        raise artifacts.Denied(f"Your proposed upload exceeds the maximum allowed size "
                               f"({artifacts.max_upload_bytes()} bytes)", "EntityTooLarge", 400)
    digest = hashlib.sha256()
    if request.method not in ("PUT", "POST"):
        return None, digest.hexdigest()
    with tempfile.NamedTemporaryFile(delete=False, suffix=".zip") as tmp:
        received = 0
        while True:
            chunk = request.read(1 << 20)
            if not chunk:
                break
            received += len(chunk)
            if received > artifacts.max_upload_bytes():
                Path(tmp.name).unlink(missing_ok=True)
                raise artifacts.Denied("Your proposed upload exceeds the maximum allowed size",
                                       "EntityTooLarge", 400)
            digest.update(chunk)
            tmp.write(chunk)
    return Path(tmp.name), digest.hexdigest()


def _authenticate(request: HttpRequest, payload_hash: str):
    """The job whose credentials signed this request (or ``Denied``)."""
    try:
        auth = sigv4.parse_authorization(request.headers.get("Authorization"))
    except errors.AwsError as exc:
        raise artifacts.Denied(exc.message) from None
    job, secret = artifacts.credential_job(
        access_key_id=auth.access_key_id,
        session_token=request.headers.get("X-Amz-Security-Token", ""))
    headers = {name.lower(): value for name, value in request.headers.items()}
    if "x-amz-security-token" not in auth.signed_headers:
        raise artifacts.Denied("The session token must be signed.")
    try:
        sigv4.verify(auth=auth, secret=secret, method=request.method, path=request.path,
                     query=request.META.get("QUERY_STRING", ""), headers=headers, body=None,
                     now=timezone.now(), service="s3", payload_hash=payload_hash,
                     normalize=False)
    except errors.AwsError as exc:
        raise artifacts.Denied(exc.message, "SignatureDoesNotMatch") from None
    return job


def _xml(body: str, request_id: str) -> HttpResponse:
    response = HttpResponse('<?xml version="1.0" encoding="UTF-8"?>\n' + body,
                            content_type="application/xml")
    response["x-amz-request-id"] = request_id
    return response


def _multipart(request: HttpRequest, job, target, path: Path | None, payload_hash: str,
               bucket: str, key: str, request_id: str) -> HttpResponse:
    """CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload."""
    upload_id = request.GET.get("uploadId", "")
    if request.method == "POST" and "uploads" in request.GET:
        upload_id = artifacts.multipart_start(job=job)
        return _xml(f"<InitiateMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
                    f"<Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId>"
                    "</InitiateMultipartUploadResult>", request_id)
    if request.method == "PUT":
        try:
            number = int(request.GET.get("partNumber", ""))
        except ValueError:
            raise artifacts.Denied("partNumber must be an integer", "InvalidArgument",
                                   400) from None
        artifacts.multipart_part(job=job, upload_id=upload_id, number=number, path=path)
        response = HttpResponse(status=200)
        response["ETag"] = f'"{payload_hash[:32]}"'
        response["x-amz-request-id"] = request_id
        return response
    if request.method == "DELETE":
        artifacts.multipart_abort(job=job, upload_id=upload_id)
        return HttpResponse(status=204)
    if request.method == "POST" and upload_id:
        if path.stat().st_size > (1 << 20):
            raise artifacts.Denied("The XML you provided was too large.", "MalformedXML", 400)
        try:
            root = ElementTree.fromstring(path.read_bytes())
            numbers = [int(node.text or "") for node in root.iter()
                       if node.tag.rsplit("}", 1)[-1] == "PartNumber"]
        except (ElementTree.ParseError, ValueError):
            raise artifacts.Denied("The XML you provided was not well-formed.", "MalformedXML",
                                   400) from None
        stored = artifacts.multipart_complete(job=job, target=target, upload_id=upload_id,
                                              numbers=numbers)
        return _xml(f"<CompleteMultipartUploadResult><Bucket>{escape(bucket)}</Bucket>"
                    f"<Key>{escape(key)}</Key><ETag>&quot;{stored['sha256'][:32]}-"
                    f"{len(numbers)}&quot;</ETag></CompleteMultipartUploadResult>",
                    request_id)
    raise artifacts.Denied("The specified method is not allowed against this resource.",
                           "MethodNotAllowed", 405)


@csrf_exempt
def endpoint(request: HttpRequest, bucket: str, key: str) -> HttpResponse:
    request_id = uuid.uuid4().hex[:16].upper()
    head = request.method == "HEAD"
    if request.method not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        return _error("MethodNotAllowed", "The specified method is not allowed against this "
                      "resource.", 405, request_id)
    path = None
    try:
        path, payload_hash = _receive(request)
        job = _authenticate(request, payload_hash)
        target = artifacts.object_access(job=job, bucket_name=bucket, key=key,
                                         write=request.method != "GET" and not head)
        if request.method in ("POST", "DELETE") or "uploadId" in request.GET:
            return _multipart(request, job, target, path, payload_hash, bucket, key,
                              request_id)
        if request.method == "PUT":
            stored = artifacts.store_upload(job=job, target=target, path=path)
            response = HttpResponse(status=200)
            response["ETag"] = f'"{stored["sha256"][:32]}"'
            response["x-amz-request-id"] = request_id
            return response
        found = artifacts.open_object(job=job, target=target)
        if found is None:
            return _error("NoSuchKey", "The specified key does not exist.", 404, request_id,
                          head)
        handle, size, sha = found
        if head:
            handle.close()
            response = HttpResponse(status=200, content_type="application/zip")
        else:
            response = FileResponse(handle, content_type="application/zip")
        response["Content-Length"] = str(size)
        response["ETag"] = f'"{sha[:32]}"'
        response["x-amz-request-id"] = request_id
        return response
    except artifacts.Denied as exc:
        return _error(exc.code, exc.message, exc.status, request_id, head)
    except Exception:
        logger.exception("s3 request %s failed", request_id)
        return _error("InternalError", "We encountered an internal error. Please try again.",
                      500, request_id, head)
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
