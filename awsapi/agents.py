"""Conveyor's agents on ``/aws/``: the job-worker operations an agent key may call, and
Conveyor's extensions of them (docs/job-workers.md, Agents).

An agent authenticates with ``Authorization: Bearer <agent key>`` and names itself in
``X-Conveyor-Agent``; the key is checked on every request (a revoked key is refused
at once, a held long poll included). An agent key is not an access key: it reaches
only the operations of ``AGENT_OPERATIONS``, and through them only jobs routed to
agents and handed to that agent (``agents.work``) — no other operation, no REST API.

Extensions (AWS has no such members; botocore never sends them):

- ``PollForJobs``: ``actionTypeId`` may be left out (any type agents run);
  ``conveyorAgent`` {name, labels, version, hostname} registers the agent;
  ``conveyorWaitSeconds`` (≤ 30) holds the request until a job comes (the live doorbell)
  or the time passes (``{"jobs": []}``); ``conveyorAcknowledge`` acknowledges the job in
  the same call (it answers InProgress: no AcknowledgeJob round trip). Each job carries
  ``conveyorJob`` (what the runner needs beyond AWS's JobData); an input artifact of at
  most 64 KiB carries its zip in ``conveyorInline`` (base64; larger ones: the S3 endpoint).
- ``ConveyorRenewJobLease`` {jobId} → {"continue": bool}: the heartbeat; false: the
  action was ended elsewhere, kill the commands.
- ``ConveyorAppendJobLog`` {jobId, offset, data (base64)} → {"offset": size}: the live log.
- ``PutJobSuccessResult`` / ``PutJobFailureResult``: ``conveyorLog`` {offset, data}
  (the log's last bytes), ``conveyorExternalUrl``, ``conveyorError`` (failure only) and
  ``conveyorPollNext`` (the answer's ``conveyorJobs``: the agent's next job, if one waits).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import time

from asgiref.sync import sync_to_async

from agents import services as agent_services
from agents import work
from agents.models import Agent
from agents.services import AgentRefused
from awsapi import errors
from awsapi.operations.base import (
    account_id,
    field_bool,
    field_int,
    field_object,
    field_string,
)
from awsapi.operations.jobs import _failure, _job_id
from jobs.errors import JobError

MAX_WAIT = 30.0
# The doorbell wakes a held poll; this bounds how late a revoked key or a missed ring is seen.
RECHECK_SECONDS = 2.0
AGENT_HEADER = "X-Conveyor-Agent"


def is_agent_request(request) -> bool:
    return request.headers.get("Authorization", "").startswith("Bearer ")


def _key(request):
    key = agent_services.agent_key_authenticate(
        key=request.headers.get("Authorization", "").removeprefix("Bearer ").strip())
    if key is None:
        raise errors.unrecognized_client("Invalid or revoked agent key.")
    return key


def _agent(request) -> Agent:
    """The agent of this request (its key checked now; its name from the header)."""
    agent = agent_services.agent_authenticate(
        key=request.headers.get("Authorization", "").removeprefix("Bearer ").strip(),
        name=request.headers.get(AGENT_HEADER, ""))
    if agent is None:
        raise errors.unrecognized_client(
            "Invalid or revoked agent key, or an agent of another key (poll first).")
    return agent


def _refused(exc: AgentRefused) -> errors.AwsError:
    if exc.status == 401:
        return errors.unrecognized_client(exc.detail)
    return errors.validation(exc.detail)


# --- the operations ----------------------------------------------------------------------


def _register(request, body: dict) -> tuple[Agent, float, bool]:
    me = field_object(body, "conveyorAgent", required=True)
    try:
        agent = agent_services.agent_seen(
            key=_key(request), name=field_string(me, "name", required=True, max_length=100),
            labels=me.get("labels", []), version=str(me.get("version", "")),
            hostname=str(me.get("hostname", "")))
    except AgentRefused as exc:
        raise _refused(exc) from None
    wait = field_int(body, "conveyorWaitSeconds", minimum=0) or 0
    return agent, min(float(wait), MAX_WAIT), bool(field_bool(body, "conveyorAcknowledge"))


def _poll_once(agent_pk: int, acknowledge: bool) -> list[dict]:
    agent = Agent.objects.select_related("key").get(pk=agent_pk)
    if agent.key.revoked_at is not None:
        raise errors.unrecognized_client("Invalid or revoked agent key.")
    return [dict(job, accountId=account_id())
            for job in work.agent_poll(agent=agent, acknowledge=acknowledge)]


class _Waiter:
    """A live-hub subscriber (every pipeline) that only sets an event when rung."""

    key = ("all",)

    def __init__(self, last: int):
        self.last = last
        self.event = asyncio.Event()

    async def deliver(self, rows, *, resync=False, text=None) -> None:
        self.event.set()


async def poll_for_jobs(request, body: dict) -> dict:
    """PollForJobs for an agent: long-polled on the live doorbell (``dashboard.live``: an
    engine commit in this process at once, in another through channels-redis or the
    event-table tailer), the key re-checked at every look."""
    from dashboard import live

    work.ensure_watchdog()
    agent, wait, acknowledge = await sync_to_async(_register)(request, body)
    poll = sync_to_async(_poll_once)
    if wait <= 0:
        return {"jobs": await poll(agent.pk, acknowledge)}
    deadline = time.monotonic() + wait
    # Subscribe before the first look, so no action slips in between.
    waiter = _Waiter(await sync_to_async(live.last_sequence)(live.ALL))
    hub = live.hub()
    hub.subscribe(waiter)
    try:
        while True:
            waiter.event.clear()
            jobs = await poll(agent.pk, acknowledge)
            remaining = deadline - time.monotonic()
            if jobs or remaining <= 0:
                return {"jobs": jobs}
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter.event.wait(),
                                       timeout=min(remaining, RECHECK_SECONDS))
    finally:
        hub.unsubscribe(waiter)


def _bytes(member: dict, name: str) -> bytes:
    value = field_string(member, name, required=True)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise errors.validation(f"{name}: must be base64") from None


def _offset(member: dict) -> int:
    offset = field_int(member, "offset", minimum=0)
    if offset is None:
        raise errors.validation("offset: required (the byte offset of data in the log)")
    return offset


def _log(body: dict) -> tuple[int, bytes] | None:
    log = field_object(body, "conveyorLog")
    return (_offset(log), _bytes(log, "data")) if log else None


def _next(agent: Agent, body: dict) -> dict:
    """``conveyorPollNext``: the agent's next job (its key was checked by this request)."""
    poll_next = bool(field_bool(body, "conveyorPollNext"))
    jobs = work.after_result(agent=agent, job_id=body["jobId"], poll_next=poll_next)
    return {"conveyorJobs": [dict(job, accountId=account_id()) for job in jobs]} \
        if poll_next else {}


def renew_job_lease(agent: Agent, body: dict) -> dict:
    agent_services.agent_seen(key=agent.key, name=agent.name)
    return {"continue": work.lease_renew(agent=agent, job_id=_job_id(body))}


def append_job_log(agent: Agent, body: dict) -> dict:
    job_id = _job_id(body)
    return {"offset": work.log_append(
        agent=agent, job_id=job_id, data=_bytes(body, "data"),
        offset=_offset(body))}


def acknowledge_job(agent: Agent, body: dict) -> dict:
    from jobs import services

    job_id = _job_id(body)
    services.job_get(job_id=job_id, agent=agent.name)
    return {"status": services.job_acknowledge(
        job_id=job_id, nonce=field_string(body, "nonce", required=True, max_length=50))}


def get_job_details(agent: Agent, body: dict) -> dict:
    """The job's AWS JobData (no credentials, no ``conveyorJob``: those come once, with the
    poll's answer)."""
    from jobs import artifacts, services

    job = services.job_get(job_id=_job_id(body), agent=agent.name)
    data = job.data
    return {"jobDetails": {"id": str(job.job_id), "accountId": account_id(), "data": {
        "actionTypeId": job.type_id, "pipelineContext": data.get("pipelineContext", {}),
        "inputArtifacts": [{"name": n, "location": artifacts.location(job, "input", n)}
                           for n in data.get("inputArtifacts", [])],
        "outputArtifacts": [{"name": n, "location": artifacts.location(job, "output", n)}
                            for n in data.get("outputArtifacts", [])]}}}


def put_job_success_result(agent: Agent, body: dict) -> dict:
    job_id = _job_id(body)
    details = field_object(body, "executionDetails") or {}
    field_string(details, "summary", max_length=2048)
    variables = field_object(body, "outputVariables") or {}
    work.job_succeed(agent=agent, job_id=job_id, output_variables=variables,
                     execution_details=details, log=_log(body),
                     external_url=field_string(body, "conveyorExternalUrl",
                                               max_length=2000) or "")
    return _next(agent, body)


def put_job_failure_result(agent: Agent, body: dict) -> dict:
    job_id = _job_id(body)
    failure = _failure(body)
    work.job_fail(agent=agent, job_id=job_id, failure_type=failure["failure_type"],
                  message=failure["message"], log=_log(body),
                  error=field_string(body, "conveyorError", max_length=100000) or "",
                  external_url=field_string(body, "conveyorExternalUrl",
                                            max_length=2000) or "")
    return _next(agent, body)


# What an agent key may call ("PollForJobs" is answered asynchronously: poll_for_jobs).
AGENT_OPERATIONS = {
    "PollForJobs": None,
    "AcknowledgeJob": acknowledge_job,
    "GetJobDetails": get_job_details,
    "PutJobSuccessResult": put_job_success_result,
    "PutJobFailureResult": put_job_failure_result,
    "ConveyorRenewJobLease": renew_job_lease,
    "ConveyorAppendJobLog": append_job_log,
}


def call(request, name: str, body: dict) -> dict:
    """An agent's operation other than PollForJobs (synchronous: one database thread)."""
    handler = AGENT_OPERATIONS.get(name)
    if handler is None:
        raise errors.unknown_operation(f"Operation {name} is not open to agent keys.")
    agent = _agent(request)
    try:
        return handler(agent, body)
    except JobError as exc:
        raise errors.AwsError(exc.code, exc.detail) from None
    except AgentRefused as exc:
        raise _refused(exc) from None
