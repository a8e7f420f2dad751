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
  ``conveyorWaitSeconds`` (≤ 30) holds the request until a job comes (the agents'
  doorbell, ``agents.doorbell``), the key is revoked (refused at once) or the time
  passes (``{"jobs": []}``); ``conveyorAcknowledge`` acknowledges the job in
  the same call (it answers InProgress: no AcknowledgeJob round trip). Each job carries
  ``conveyorJob`` (what the runner needs beyond AWS's JobData); an input artifact of at
  most 64 KiB carries its zip in ``conveyorInline`` (base64; larger ones: the S3 endpoint).
- ``ConveyorRenewJobLease`` {jobId} → {"continue": bool}: the heartbeat; false: the
  action was ended elsewhere, kill the commands. With ``conveyorWaitSeconds`` (≤ 30) it
  is held (renewed at both ends) and refused the moment the key is revoked.
- ``ConveyorAppendJobLog`` {jobId, offset, data (base64)} → {"offset": size}: the live log.
- ``PutJobSuccessResult`` / ``PutJobFailureResult``: ``conveyorLog`` {offset, data}
  (the log's last bytes), ``conveyorExternalUrl``, ``conveyorError`` (failure only) and
  ``conveyorPollNext`` (the answer's ``conveyorJobs``: the agent's next job, if one waits).
"""

from __future__ import annotations

import base64
import binascii
import time

from asgiref.sync import sync_to_async

from agents import doorbell, work
from agents import services as agent_services
from agents.models import Agent, AgentKey
from agents.services import AgentRefused
from awsapi import errors
from awsapi.operations.base import (
    TARGET_PREFIX,
    account_id,
    field_bool,
    field_int,
    field_object,
    field_string,
)
from awsapi.operations.jobs import _failure, _job_id
from jobs.errors import JobError

MAX_WAIT = 30.0
AGENT_HEADER = "X-Conveyor-Agent"


def is_agent_request(request) -> bool:
    return request.headers.get("Authorization", "").startswith("Bearer ")


def held(request):
    """The coroutine answering an agent's request that may be held open (a long poll, a
    held lease renewal), or None: every other request is answered synchronously."""
    if not is_agent_request(request) or request.method != "POST":
        return None
    target = request.headers.get("X-Amz-Target", "")
    return (HELD_OPERATIONS.get(target.removeprefix(TARGET_PREFIX))
            if target.startswith(TARGET_PREFIX) else None)


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
    agent = Agent.objects.select_related("key").filter(pk=agent_pk).first()
    if agent is None or agent.key.revoked_at is not None:   # revoked, or deleted with it
        raise _key_refused()
    return [dict(job, accountId=account_id())
            for job in work.agent_poll(agent=agent, acknowledge=acknowledge)]


def _key_refused() -> errors.AwsError:
    return errors.unrecognized_client("Invalid or revoked agent key.")


def _key_live(key_id: int) -> bool:
    return AgentKey.objects.filter(pk=key_id, revoked_at__isnull=True).exists()


async def poll_for_jobs(request, body: dict) -> dict:
    """PollForJobs for an agent: held on the agents' doorbell (``agents.doorbell``) until a
    job is offered, its key is revoked (refused at once) or the wait passes."""
    work.ensure_watchdog()
    agent, wait, acknowledge = await sync_to_async(_register)(request, body)
    poll = sync_to_async(_poll_once)
    if wait <= 0:
        return {"jobs": await poll(agent.pk, acknowledge)}
    deadline = time.monotonic() + wait
    # Held before the first look, so no offer slips in between.
    with doorbell.bell().hold(agent.key_id) as waiter:
        while True:
            jobs = await poll(agent.pk, acknowledge)   # refuses a revoked key
            remaining = deadline - time.monotonic()
            if jobs or remaining <= 0 or waiter.closing:   # closing: the server stops
                return {"jobs": jobs}
            await waiter.wait(remaining)


async def renew_job_lease_held(request, body: dict) -> dict:
    """``ConveyorRenewJobLease`` with ``conveyorWaitSeconds``: the lease is renewed, the
    request held until the wait passes (renewed again) or the key is revoked (refused
    at once: the agent kills the job's commands)."""
    agent = await sync_to_async(_agent)(request)
    wait = min(float(field_int(body, "conveyorWaitSeconds", minimum=0) or 0), MAX_WAIT)
    renew = sync_to_async(_call_op)
    if wait <= 0:
        return await renew(renew_job_lease, agent, body)
    deadline = time.monotonic() + wait
    with doorbell.bell().hold(agent.key_id, offers=False) as waiter:
        answer = await renew(renew_job_lease, agent, body)
        if not answer["continue"]:
            return answer
        while (remaining := deadline - time.monotonic()) > 0 and not waiter.closing:
            if await waiter.wait(remaining) and not await sync_to_async(_key_live)(
                    agent.key_id):
                raise _key_refused()
    return await renew(renew_job_lease, agent, body)


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


# What an agent key may call; the held ones are answered asynchronously (``held``).
HELD_OPERATIONS = {"PollForJobs": poll_for_jobs, "ConveyorRenewJobLease": renew_job_lease_held}
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
    return _call_op(handler, _agent(request), body)


def _call_op(handler, agent: Agent, body: dict) -> dict:
    try:
        return handler(agent, body)
    except JobError as exc:
        raise errors.AwsError(exc.code, exc.detail) from None
    except AgentRefused as exc:
        raise _refused(exc) from None
