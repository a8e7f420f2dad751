"""Artifacts for job workers: where they are, who may reach them (docs/job-workers.md).

A job's artifacts are S3 objects of one bucket (``CONVEYOR_JOB_BUCKET``, default
``conveyor-artifacts``) under ``jobs/<job id>/input/<name>.zip`` and
``jobs/<job id>/output/<name>.zip``. The S3-compatible endpoint (``awsapi.s3``)
asks ``credential_job`` who signed, then ``object_access`` whether that job may
do this to that key: a job's credentials reach its own inputs (read) and outputs
(write, and read back), nothing else, and only while the job is Dispatched or
InProgress.
"""

from __future__ import annotations

import hmac
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from executions import artifacts as stored_artifacts
from jobs import services
from jobs.choices import HELD
from jobs.models import Job
from pipelines import secrets as sealed

KEY_RE = re.compile(r"jobs/(?P<job>[0-9a-f-]{36})/(?P<side>input|output)/"
                    r"(?P<name>[A-Za-z0-9_-]{1,100})\.zip")


def bucket() -> str:
    return getattr(settings, "CONVEYOR_JOB_BUCKET", "conveyor-artifacts")


def max_upload_bytes() -> int:
    return int(getattr(settings, "CONVEYOR_JOB_ARTIFACT_MAX_BYTES", 1 << 30))


def object_key(job: Job, side: str, name: str) -> str:
    return f"jobs/{job.job_id}/{side}/{name}.zip"


def location(job: Job, side: str, name: str) -> dict:
    return {"type": "S3", "s3Location": {"bucketName": bucket(),
                                         "objectKey": object_key(job, side, name)}}


def credentials(job: Job) -> dict:
    """The job's artifact credentials, as AWSSessionCredentials."""
    return {"accessKeyId": job.credential_id,
            "secretAccessKey": sealed.unseal(job.credential_secret),
            "sessionToken": sealed.unseal(job.session_token)}


class Denied(Exception):
    """The signer may not do this (S3's AccessDenied); ``code`` says which S3 error."""

    def __init__(self, message: str, code: str = "AccessDenied", status: int = 403):
        self.message, self.code, self.status = message, code, status
        super().__init__(message)


def credential_job(*, access_key_id: str, session_token: str) -> tuple[Job, str]:
    """(the job, its secret) for a signer's access key id and session token.

    Refused unless the key is a job's, the token is that key's, and the job is held
    by a worker (Dispatched or InProgress): credentials expire with their job.
    """
    job = (Job.objects.select_related("action_execution").filter(credential_id=access_key_id)
           .first())
    if job is None:
        raise Denied("The AWS Access Key Id you provided does not exist in our records.",
                     "InvalidAccessKeyId")
    token = sealed.unseal(job.session_token)
    if not session_token or not hmac.compare_digest(token, session_token):
        raise Denied("The provided token is malformed or otherwise invalid.", "InvalidToken",
                     400)
    if job.status not in HELD:
        raise Denied("The provided token has expired.", "ExpiredToken", 400)
    return job, sealed.unseal(job.credential_secret)


@dataclass(frozen=True)
class Target:
    side: str
    name: str


def object_access(*, job: Job, bucket_name: str, key: str, write: bool) -> Target:
    """Whether ``job``'s credentials may read (or write) ``bucket_name/key``."""
    match = KEY_RE.fullmatch(key)
    if bucket_name != bucket() or match is None or match["job"] != str(job.job_id):
        raise Denied("Access Denied")
    side, name = match["side"], match["name"]
    if side == "input" and (write or name not in job.data.get("inputArtifacts", [])):
        raise Denied("Access Denied")
    if side == "output" and name not in job.data.get("outputArtifacts", []):
        raise Denied("Access Denied")
    return Target(side, name)


def open_object(*, job: Job, target: Target):
    """(file object, size, sha256) of a readable object; None if there is none (NoSuchKey)."""
    if target.side == "input":
        artifact = services.job_input_artifacts(job).get(target.name)
        if artifact is None:
            return None
        return (stored_artifacts.storage().open(artifact.storage_name, "rb"), artifact.size,
                artifact.sha256)
    upload = job.uploads.get(target.name)
    if upload is None:
        return None
    return (stored_artifacts.storage().open(upload["storage_name"], "rb"), upload["size"],
            upload["sha256"])


# --- multipart uploads (boto3's upload_file above its 8 MiB threshold) -----------------------

UPLOAD_ID_RE = re.compile(r"[0-9a-f]{32}")


def _parts_dir(job: Job, upload_id: str) -> Path:
    if not UPLOAD_ID_RE.fullmatch(upload_id or ""):
        raise Denied("The specified upload does not exist.", "NoSuchUpload", 404)
    return services.uploads_dir(job.job_id) / upload_id


def multipart_start(*, job: Job) -> str:
    import secrets

    upload_id = secrets.token_hex(16)
    _parts_dir(job, upload_id).mkdir(parents=True)
    return upload_id


def multipart_part(*, job: Job, upload_id: str, number: int, path: Path) -> None:
    folder = _parts_dir(job, upload_id)
    if not folder.is_dir():
        raise Denied("The specified upload does not exist.", "NoSuchUpload", 404)
    if not 1 <= number <= 10000:
        raise Denied("Part number must be an integer between 1 and 10000", "InvalidArgument",
                     400)
    size = sum(p.stat().st_size for p in folder.iterdir()) + path.stat().st_size
    if size > max_upload_bytes():
        raise Denied("Your proposed upload exceeds the maximum allowed size", "EntityTooLarge",
                     400)
    path.replace(folder / f"{number:05d}")


def multipart_complete(*, job: Job, target: Target, upload_id: str, numbers: list[int]) -> dict:
    """Join the listed parts in order and store the result as the output artifact."""
    import shutil

    folder = _parts_dir(job, upload_id)
    if not folder.is_dir():
        raise Denied("The specified upload does not exist.", "NoSuchUpload", 404)
    if not numbers or numbers != sorted(set(numbers)):
        raise Denied("The list of parts was not in ascending order.", "InvalidPartOrder", 400)
    with tempfile.NamedTemporaryFile(delete=False, suffix=".zip") as joined:
        for number in numbers:
            part = folder / f"{number:05d}"
            if not part.is_file():
                Path(joined.name).unlink(missing_ok=True)
                raise Denied("One or more of the specified parts could not be found.",
                             "InvalidPart", 400)
            with open(part, "rb") as f:
                shutil.copyfileobj(f, joined, 1 << 20)
    try:
        return store_upload(job=job, target=target, path=Path(joined.name))
    finally:
        Path(joined.name).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


def multipart_abort(*, job: Job, upload_id: str) -> None:
    import shutil

    shutil.rmtree(_parts_dir(job, upload_id), ignore_errors=True)


def store_upload(*, job: Job, target: Target, path: Path) -> dict:
    """Check an uploaded output (a zip whose every member is safe) and store it by hash."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            with tempfile.TemporaryDirectory() as scratch:
                for info in members:
                    problem = stored_artifacts.unsafe_member(
                        info.filename, info.external_attr >> 16, Path(scratch))
                    if problem:
                        raise Denied(f"Output artifact {target.name} refused: {problem}",
                                     "InvalidArgument", 400)
    except zipfile.BadZipFile:
        raise Denied(f"Output artifact {target.name} must be a zip archive, as on AWS",
                     "InvalidArgument", 400) from None
    sha, name = stored_artifacts.store_zip(path)
    stored = {"storage_name": name, "sha256": sha, "size": path.stat().st_size,
              "file_count": sum(1 for m in members if not m.is_dir())}
    services.job_upload(job=job, name=target.name, stored=stored)
    return stored
