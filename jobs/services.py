"""Jobs for job workers: every operation that changes one (docs/job-workers.md).

The AWS endpoint (``awsapi.operations.jobs``), the S3 endpoint and Conveyor's own
agent call these functions; they hold no rules of their own. A job's status
changes by compare-and-set (``_move``); the action it stands for changes only
through ``executions.engine`` (``action_complete``, ``action_progress``).

Timeouts (settings, docs/job-workers.md): a Dispatched job not acknowledged within
``CONVEYOR_JOB_ACK_SECONDS`` (60) and an InProgress job without a result within
``CONVEYOR_JOB_RESULT_SECONDS`` (3600, AWS's one-hour action quota) end TimedOut
and fail their action; the action's own timeout still applies. The sweeper
enforces both (``jobs_sweep``, on ``executions.signals.sweeping``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import shutil
import string
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from executions import engine
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution, Artifact
from jobs import errors
from jobs.choices import HELD, TERMINAL, TRANSITIONS, FailureType, JobStatus
from jobs.models import Job
from jobs.routing import Route, job_route
from pipelines import secrets as sealed
from teams.access import pipeline_allows
from teams.choices import Act

_ALNUM = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"
# AWS: outputVariables may be at most 122880 bytes as a whole (ours: the same bound).
OUTPUT_VARIABLES_MAX = 122880


def ack_seconds() -> float:
    return float(getattr(settings, "CONVEYOR_JOB_ACK_SECONDS", 60))


def result_seconds() -> float:
    return float(getattr(settings, "CONVEYOR_JOB_RESULT_SECONDS", 3600))


def continuation_delay() -> float:
    return float(getattr(settings, "CONVEYOR_JOB_CONTINUATION_SECONDS", 0))


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def uploads_dir(job_id) -> Path:
    """Where the parts of a job's unfinished multipart uploads wait (removed when it ends)."""
    return Path(settings.WORKSPACE_ROOT) / ".job-uploads" / str(job_id)


def _move(job: Job, to: str, **fields) -> bool:
    """Compare-and-set ``job`` from its observed status to ``to``; False: someone else won."""
    if to not in TRANSITIONS.get(job.status, ()):
        return False
    now = timezone.now()
    if to in TERMINAL:
        fields.setdefault("ended_at", now)
    changed = Job.objects.filter(pk=job.pk, status=job.status).update(
        status=to, updated_at=now, **fields)
    if changed and to in TERMINAL:
        shutil.rmtree(uploads_dir(job.job_id), ignore_errors=True)
    if changed:
        job.status = to
        for key, value in fields.items():
            setattr(job, key, value)
    return bool(changed)


def job_move(job: Job, to: str, **fields) -> bool:
    """``_move`` for the agents' side (agents.work), which ends its jobs itself."""
    return _move(job, to, **fields)


# --- making jobs ---------------------------------------------------------------------


def _draw(alphabet: str, count: int) -> str:
    """``count`` random characters of ``alphabet`` (one read of the OS's randomness; the
    64-letter alphabet of secrets is drawn without bias, the 36 of key ids nearly so)."""
    return "".join(alphabet[b % len(alphabet)] for b in secrets.token_bytes(count))


def _credentials() -> dict:
    return {
        "credential_id": "ASIA" + _draw(_ALNUM, 16),
        "secret": _draw(_SECRET_ALPHABET, 40),
        "session_token": secrets.token_urlsafe(48),
    }


def job_create(*, action_execution_id: str, action_doc: dict, route: Route | None = None,
               attempt: int = 1, continuation_token: str = "",
               available_at: datetime | None = None,
               action_execution: ActionExecution | None = None) -> Job:
    """Queue a job for an InProgress action execution (first offer, or a continuation).

    ``action_doc`` is the action's document with references resolved (secret values
    sealed: they are opened only for the worker, in ``job_data``). ``action_execution``:
    the row itself, just made in the engine's transaction (an agents' job): no second
    delivery is possible, so no savepoint guards the insert.
    """
    route = route or job_route(action_doc)
    if route is None:
        raise errors.JobInvalid("this action is not run by job workers")
    ae = action_execution or ActionExecution.objects.select_related(
        "execution", "execution__pipeline").get(action_execution_id=action_execution_id)
    data = {
        "actionConfiguration": {"configuration": dict(action_doc.get("configuration") or {})},
        "pipelineContext": {
            "pipelineName": ae.execution.pipeline.name,
            "stage": {"name": ae.stage_name},
            "action": {"name": ae.action_name,
                       "actionExecutionId": str(ae.action_execution_id)},
            "pipelineExecutionId": str(ae.execution.execution_id),
        },
        "inputArtifacts": [item["name"] for item in action_doc.get("inputArtifacts", [])],
        "outputArtifacts": [item["name"] for item in action_doc.get("outputArtifacts", [])],
    }
    creds = _credentials()
    for _ in range(5):
        try:
            with transaction.atomic() if action_execution is None else nullcontext():
                return Job.objects.create(
                    action_execution=ae, action_type_id=route.action_type_id,
                    category=route.category, owner=route.owner, provider=route.provider,
                    version=route.version, attempt=attempt, query_value=route.query_value,
                    labels=list(route.labels), continuation_token=continuation_token,
                    data=data, available_at=available_at or timezone.now(),
                    client_id=_client_id(route),
                    credential_id=creds["credential_id"],
                    credential_secret=sealed.seal(creds["secret"]),
                    session_token=sealed.seal(creds["session_token"]),
                )
        except IntegrityError:
            existing = Job.objects.filter(action_execution=ae, attempt=attempt).first()
            if existing is not None:
                return existing     # a second delivery of the same runner call
            creds = _credentials()  # a credential id collision: draw again
    raise RuntimeError("could not find an unused credential id")


def _client_id(route: Route):
    if route.owner != "ThirdParty" or route.action_type_id is None:
        return None
    from jobs.models import CustomActionType

    return CustomActionType.objects.filter(pk=route.action_type_id).values_list(
        "client_id", flat=True).first()


# --- the worker's side ---------------------------------------------------------------


def job_poll(*, action_type: dict, query: dict | None = None, max_batch_size: int = 1,
             user=None, worker: str = "", labels: Iterable[str] | None = None) -> list[Job]:
    """Hand out up to ``max_batch_size`` Queued jobs of ``action_type`` (Dispatched).

    ``action_type`` is an actionTypeId {category, owner, provider, version};
    ``query`` is PollForJobs' queryParam ({property: value}), matched against the
    value of the type's queryable property in each action. ``user``: only jobs of
    pipelines that user may operate (``may_work``). Each job handed out gets a new
    nonce, fresh credentials and its acknowledge deadline. Oldest first.
    """
    now = timezone.now()
    qs = Job.objects.filter(
        status=JobStatus.QUEUED, category=action_type.get("category"),
        owner=action_type.get("owner"), provider=action_type.get("provider"),
        version=action_type.get("version"), available_at__lte=now,
        action_type__isnull=False,     # agents' jobs are polled by agents only
    ).select_related("action_execution__pipeline").order_by("available_at", "id")
    if query:
        (_, value), = query.items()
        qs = qs.filter(query_value=value)
    handed: list[Job] = []
    for job in qs[: max(1, max_batch_size) * 4]:
        if len(handed) >= max_batch_size:
            break
        if user is not None and not may_work(user, job.action_execution.pipeline):
            continue
        if labels is not None and not set(job.labels) <= set(labels):
            continue
        if job_hand(job, worker=worker):
            handed.append(job)
    return handed


def job_hand(job: Job, *, worker: str, acknowledge: bool = False) -> bool:
    """Hand a Queued job to a poller: a new nonce, fresh credentials (``job.issued``, shown
    once, in the poll's answer), Dispatched with its acknowledge deadline — or, with
    ``acknowledge`` (Conveyor's agents: docs/job-workers.md), InProgress at once with no
    deadline of its own (the action's lease and timeout bound it). False: another poll won.
    """
    now = timezone.now()
    creds = _credentials()
    fields = {"nonce": secrets.token_hex(16), "dispatched_at": now, "worker": worker[:200],
              "credential_id": creds["credential_id"],
              "credential_secret": sealed.seal(creds["secret"]),
              "session_token": sealed.seal(creds["session_token"])}
    if acknowledge:
        moved = _move(job, JobStatus.IN_PROGRESS, acknowledged_at=now, expires_at=None, **fields)
    else:
        moved = _move(job, JobStatus.DISPATCHED,
                      expires_at=now + timedelta(seconds=ack_seconds()), **fields)
    if moved:
        job.issued = creds
    return moved


def may_work(user, pipeline) -> bool:
    """Whether ``user`` may work the jobs of ``pipeline``: the operator role on its group
    (``teams.access``, the one permission function)."""
    return pipeline_allows(user, pipeline, Act.OPERATE)


def job_get(*, job_id: str, user=None, agent: str | None = None) -> Job:
    """The job with this id (JobNotFound if none, or not one ``user`` may work).

    A job routed to agents (it has labels) is reached only by the agent named ``agent``
    that was handed it, and never with a user's key; a job worker's job never by an agent.
    """
    job = (Job.objects.select_related("action_execution", "action_execution__pipeline",
                                      "action_type")
           .filter(job_id=job_id).first())
    if agent is not None:
        refused = job is None or not job.labels or job.worker != agent
    else:
        refused = job is None or (user is not None and (
            bool(job.labels) or not may_work(user, job.action_execution.pipeline)))
    if refused:
        raise errors.JobNotFound(f"The job was specified in an invalid format or cannot be "
                                 f"found: {job_id}")
    return job


def job_acknowledge(*, job_id: str, nonce: str, user=None) -> str:
    """The worker confirms it has the job: Dispatched → InProgress; returns the status.

    A wrong nonce (another worker has the job, or an older poll's) is refused with
    InvalidNonce. Acknowledging again with the right nonce answers the status as it is.
    """
    job = job_get(job_id=job_id, user=user)
    if not job.nonce or not hmac.compare_digest(job.nonce, nonce):
        raise errors.InvalidNonce(f"The nonce was specified in an invalid format: {nonce}")
    if job.status == JobStatus.DISPATCHED:
        now = timezone.now()
        _move(job, JobStatus.IN_PROGRESS, acknowledged_at=now,
              expires_at=now + timedelta(seconds=result_seconds()))
        job.refresh_from_db(fields=["status"])
    return job.status


def held_check(job: Job) -> None:
    """Refuse a result for a job that is not the worker's to finish (InvalidJobState)."""
    if job.status != JobStatus.IN_PROGRESS:
        raise errors.InvalidJobState(
            f"Job {job.job_id} is {job.status}: a result is accepted only for an "
            "acknowledged (InProgress) job.")
    if job.action_execution.status != A.IN_PROGRESS:
        raise errors.InvalidJobState(
            f"Job {job.job_id}'s action has ended ({job.action_execution.status}).")


def _url(template: str, config: dict, external_id: str = "") -> str:
    """AWS's URL templates: ``{Config:Name}`` from the configuration, ``{ExternalExecutionId}``."""
    if not template:
        return ""
    out = template.replace("{ExternalExecutionId}", external_id)
    for key, value in config.items():
        if not sealed.is_sealed(value):
            out = out.replace("{Config:" + key + "}", str(value))
    return out if out.startswith(("http://", "https://")) else ""


def execution_url(job: Job, external_id: str) -> str:
    if job.action_type is None or not external_id:
        return ""
    config = job.data.get("actionConfiguration", {}).get("configuration", {})
    return _url(job.action_type.execution_url_template, config, external_id)


def job_succeed(*, job_id: str, output_variables: dict | None = None,
                current_revision: dict | None = None, execution_details: dict | None = None,
                continuation_token: str | None = None, user=None) -> Job:
    """The worker's success (PutJobSuccessResult).

    1. Only an InProgress job whose action is still InProgress (else InvalidJobState).
    2. With ``continuation_token``: the job ends Succeeded, the next job (attempt + 1)
       is queued carrying the token, the action stays InProgress showing
       ``execution_details`` (outputVariables are refused with a token, as on AWS).
    3. Without: the action Succeeds with the output variables, the uploaded output
       artifacts and the revision; an output artifact the worker did not upload fails
       the action instead, naming it.
    """
    job = job_get(job_id=job_id, user=user)
    held_check(job)
    details = dict(execution_details or {})
    if continuation_token and output_variables:
        raise errors.JobInvalid("outputVariables can only be given without a "
                                "continuationToken.")
    variables = {str(k): str(v) for k, v in (output_variables or {}).items()}
    if sum(len(k) + len(v) for k, v in variables.items()) > OUTPUT_VARIABLES_MAX:
        raise errors.OutputVariablesTooLarge(
            f"outputVariables exceed {OUTPUT_VARIABLES_MAX} bytes.")
    external_id = str(details.get("externalExecutionId") or "")
    link = execution_url(job, external_id)
    summary = str(details.get("summary") or "")
    if continuation_token:
        if not _move(job, JobStatus.SUCCEEDED, execution_details=details,
                     current_revision=current_revision or {}):
            raise errors.InvalidJobState(f"Job {job.job_id} changed meanwhile.")
        engine.action_progress(job.action_execution_id, summary=summary or
                               "Continuing on a job worker", external_id=external_id,
                               external_url=link, percent=details.get("percentComplete"))
        _continue(job, continuation_token)
        return job
    missing = [name for name in job.data.get("outputArtifacts", []) if name not in job.uploads]
    if missing:
        message = ("the job worker did not upload output artifact "
                   + ", ".join(f'"{m}"' for m in missing))
        _move(job, JobStatus.FAILED, failure={"type": "JobFailed", "message": message})
        engine.action_complete(job.action_execution_id, succeeded=False,
                               summary=f"Failed: {message}")
        return job
    if not _move(job, JobStatus.SUCCEEDED, execution_details=details,
                 current_revision=current_revision or {}, output_variables=variables):
        raise errors.InvalidJobState(f"Job {job.job_id} changed meanwhile.")
    produced = [engine.ProducedArtifact(name, up["sha256"], up["size"], up["file_count"],
                                        up["storage_name"])
                for name, up in job.uploads.items()]
    revision = None
    if current_revision and job.category == "Source":
        from runners.base import Revision

        revision = Revision(revision_id=str(current_revision.get("revision", "")),
                            summary=str(current_revision.get("revisionSummary", "")),
                            change_identifier=str(current_revision.get("changeIdentifier", "")),
                            artifact_name=next(iter(job.data.get("outputArtifacts", [])), ""))
    engine.action_complete(job.action_execution_id, succeeded=True,
                           summary=summary or "Succeeded on a job worker",
                           output_variables=variables, external_url=link,
                           external_id=external_id, artifacts=produced, revision=revision)
    return job


def _continue(job: Job, token: str) -> Job:
    ae = job.action_execution
    doc = dict(ae.configuration or {})
    return job_create(
        action_execution_id=str(ae.action_execution_id), action_doc=doc,
        route=Route(job.category, job.owner, job.provider, job.version, job.action_type_id,
                    job.query_value, tuple(job.labels)),
        attempt=job.attempt + 1, continuation_token=token,
        available_at=timezone.now() + timedelta(seconds=continuation_delay()))


def job_fail(*, job_id: str, failure_type: str, message: str,
             external_execution_id: str | None = None, user=None) -> Job:
    """The worker's failure (PutJobFailureResult): the job and its action Failed, the
    action's summary "<type>: <message>"."""
    if failure_type not in FailureType.values:
        raise errors.JobInvalid(f"failureDetails.type must be one of "
                                f"{', '.join(FailureType.values)}, not {failure_type!r}")
    job = job_get(job_id=job_id, user=user)
    held_check(job)
    failure = {"type": failure_type, "message": message[:5000]}
    if external_execution_id:
        failure["externalExecutionId"] = external_execution_id
    if not _move(job, JobStatus.FAILED, failure=failure):
        raise errors.InvalidJobState(f"Job {job.job_id} changed meanwhile.")
    engine.action_complete(job.action_execution_id, succeeded=False,
                           summary=f"{failure_type}: {message}"[:2000],
                           external_url=execution_url(job, external_execution_id or ""))
    return job


# --- third-party jobs: the same jobs, reached with the type's client token ----------------


def client_token_check(*, job: Job, client_token: str) -> None:
    """Refuse a third-party call whose clientToken is not the job's type's."""
    action_type = job.action_type
    if (job.owner != "ThirdParty" or action_type is None or not action_type.client_token_hash
            or not hmac.compare_digest(action_type.client_token_hash, _hash(client_token))):
        raise errors.InvalidClientToken("The client token was specified in an invalid format")


# --- timeouts and the end of actions -----------------------------------------------------


def jobs_sweep(*, now: datetime | None = None) -> int:
    """End jobs past a deadline (TimedOut); the count. An unacknowledged or unanswered
    job fails its action; a job whose action ran past its timeout leaves the action to
    the engine's sweep.

    Called by the sweeper (``executions.signals.sweeping``).
    """
    now = now or timezone.now()
    count = 0
    # The action's own deadline passed: its job times out here, the action right after
    # in the same sweep (engine.sweep, "Action timed out after N min").
    for job in Job.objects.filter(status__in=[JobStatus.QUEUED, *HELD],
                                  action_execution__deadline_at__lt=now,
                                  action_execution__status=A.IN_PROGRESS):
        if _move(job, JobStatus.TIMED_OUT, failure={
                "type": "JobFailed", "message": "the action ran past its timeout"}):
            count += 1
    for job in Job.objects.filter(status__in=HELD, expires_at__lt=now):
        unacknowledged = job.status == JobStatus.DISPATCHED
        if not _move(job, JobStatus.TIMED_OUT):
            continue
        count += 1
        summary = (f"Job timed out: not acknowledged within {ack_seconds():g} s"
                   if unacknowledged else
                   f"Job timed out: no result within {result_seconds():g} s")
        engine.action_complete(job.action_execution_id, succeeded=False, summary=summary)
    return count


def jobs_end_for_action(*, action_execution: ActionExecution, status: str, summary: str,
                        timed_out: bool = False) -> int:
    """The action ended elsewhere (stopped, abandoned, timed out): its live jobs end too, so
    a later result is refused (InvalidJobState). TimedOut when the action timed out."""
    count = 0
    to = JobStatus.TIMED_OUT if timed_out else JobStatus.FAILED
    for job in Job.objects.filter(action_execution=action_execution,
                                  status__in=[JobStatus.QUEUED, *HELD]):
        if _move(job, to, failure={"type": "JobFailed", "message": f"the action ended "
                                   f"{status}: {summary}"[:5000]}):
            count += 1
    return count


# --- artifacts -----------------------------------------------------------------------------


def job_input_artifacts(job: Job) -> dict[str, Artifact]:
    """The stored input artifacts of the job's action, by name."""
    found = {}
    ex = job.action_execution.execution
    sources = [ex.pk, ex.rollback_target_id] if ex.rollback_target_id else [ex.pk]
    for name in job.data.get("inputArtifacts", []):
        for source in sources:     # a rollback reuses its target's artifacts
            artifact = (Artifact.objects.filter(execution_id=source, name=name)
                        .order_by("-id").first())
            if artifact is not None:
                found[name] = artifact
                break
    return found


def job_upload(*, job: Job, name: str, stored: dict) -> None:
    """Record an output artifact the worker uploaded (the S3 endpoint's PutObject)."""
    uploads = dict(job.uploads)
    uploads[name] = stored
    Job.objects.filter(pk=job.pk, status__in=HELD).update(uploads=uploads)
    job.uploads = uploads
