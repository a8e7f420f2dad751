"""The server side of Conveyor's agents: their jobs, on the job-worker protocol.

An action routed to agents (``configuration.RunOn``) is a ``Job`` carrying its labels,
made in the engine's transaction (``jobs.routing.agent_route``). An agent calls the AWS
endpoint with its agent key (``awsapi.agents``; docs/job-workers.md, Agents):

1. ``PollForJobs`` (``agent_poll``): the oldest Queued agents' job whose labels its own
   include is handed to it (``jobs.services.job_hand``: nonce, fresh artifact
   credentials, acknowledged at once with ``conveyorAcknowledge``) and its action is
   claimed through the engine for the worker name ``agent:<name>``; the answer is AWS's
   Job with Conveyor's extension ``conveyorJob`` (``_extension``);
2. ``ConveyorRenewJobLease`` (``lease_renew``) while it runs: False means the action
   was ended elsewhere (abandoned, timed out) and the agent kills its commands;
3. ``ConveyorAppendJobLog`` (``log_append``), the outputs through the S3 endpoint with
   the job's credentials, then ``PutJobSuccessResult`` / ``PutJobFailureResult``
   (``job_succeed`` / ``job_fail``).

Every call reaches only a job handed to that agent (``jobs.services.job_get(agent=)``).
A lease that lapses (the agent died) fails the action within the lease (the watchdog
here, and the sweeper): docs/deploy.md, Build farm.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
import time
import zipfile
from pathlib import Path, PurePosixPath

from django import db
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent
from executions import artifacts as stored_artifacts
from executions import engine
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution
from jobs import artifacts, errors, services
from jobs.choices import HELD, JobStatus
from jobs.models import Job
from pipelines import secrets as sealed
from runners.codebuild import environment_entries
from runners.shell import secret_raw

logger = logging.getLogger("conveyor.agents")

# How many waiting jobs one poll looks at (their labels are matched in Python).
POLL_WINDOW = 50


def agent_poll(*, agent: Agent, acknowledge: bool = True) -> list[dict]:
    """Hand this agent the oldest waiting job its labels allow: ``[job]`` or ``[]``.

    The job is the poll's answer (AWS's Job with ``conveyorJob``); its action is claimed
    for ``agent:<name>`` (the lease starts). An action that can no longer be claimed
    (ended meanwhile, or an unresolvable reference: the engine fails it, naming it) is
    skipped; its job ends with it.
    """
    labels = set(agent.labels or [])
    waiting = (Job.objects.filter(status=JobStatus.QUEUED, action_type__isnull=True,
                                  available_at__lte=timezone.now())
               .order_by("id")[:POLL_WINDOW])
    for job in waiting:
        if not job.labels or not set(job.labels) <= labels:
            continue
        if not services.job_hand(job, worker=agent.name, acknowledge=acknowledge):
            continue
        claim = engine.action_claim(job.action_execution_id, worker=agent.worker_name)
        if claim is None:
            services.job_move(job, JobStatus.FAILED, failure={
                "type": "JobFailed", "message": "its action could not be claimed"})
            continue
        Agent.objects.filter(pk=agent.pk).update(action_execution_id=job.action_execution_id)
        return [job_answer(job, claim)]
    return []


def job_answer(job: Job, claim: engine.Claim) -> dict:
    """The poll's answer for one job: AWS's Job (id, nonce, data with the resolved
    configuration, S3 locations and artifact credentials) and ``conveyorJob``."""
    extension = _extension(claim)
    config = extension["action"].get("configuration") or {}
    creds = job.issued
    return {
        "id": str(job.job_id), "nonce": job.nonce,
        "data": {
            "actionTypeId": job.type_id,
            "actionConfiguration": {"configuration": {k: str(v) for k, v in config.items()}},
            "pipelineContext": job.data.get("pipelineContext", {}),
            "inputArtifacts": [_input(job, name, storage_name)
                               for name, storage_name in claim.inputs.items()],
            "outputArtifacts": [{"name": name,
                                 "location": artifacts.location(job, "output", name)}
                                for name in job.data.get("outputArtifacts", [])],
            "artifactCredentials": {"accessKeyId": creds["credential_id"],
                                    "secretAccessKey": creds["secret"],
                                    "sessionToken": creds["session_token"]},
        },
        "conveyorJob": extension,
    }


# An input artifact this small also travels inside the poll's answer (``conveyorInline``,
# the S3 object's bytes): one round trip less per action.
INLINE_INPUT_BYTES = 64 << 10


def _input(job: Job, name: str, storage_name: str) -> dict:
    item = {"name": name, "location": artifacts.location(job, "input", name)}
    store = stored_artifacts.storage()
    try:
        if store.size(storage_name) <= INLINE_INPUT_BYTES:
            with store.open(storage_name, "rb") as f:
                item["conveyorInline"] = base64.b64encode(f.read()).decode()
    except (OSError, NotImplementedError):
        pass   # the agent downloads it
    return item


def _secret_names(action: dict, project) -> set[str]:
    """The secrets an action references: its SECRETS_MANAGER / PARAMETER_STORE entries."""
    entries = list(action.get("environmentVariables") or [])
    with contextlib.suppress(ValueError):   # the runner reports it
        entries += environment_entries((action.get("configuration") or {}).get(
            "EnvironmentVariables", ""))
    if project is not None:
        entries += list(project.environment_variables or [])
    names = set()
    for item in entries:
        kind = isinstance(item, dict) and item.get("type")
        if kind == "SECRETS_MANAGER":
            names.add(str(item.get("value", "")).partition(":")[0])
        elif kind == "PARAMETER_STORE":
            names.add(str(item.get("value", "")).lstrip("/"))
    return {n for n in names if n}


def _buildspec_text(action: dict, project, claim: engine.Claim) -> str:
    """The buildspec the CodeBuild runner will read: inline (override, project) or a file
    of the primary source artifact ("" when there is none to read)."""
    from runners.codebuild import DEFAULT_BUILDSPEC

    chosen = ((action.get("configuration") or {}).get("BuildspecOverride", "")
              or (project.buildspec if project else "") or DEFAULT_BUILDSPEC)
    if "\n" in chosen.strip():
        return chosen
    primary = next(iter(claim.inputs.values()), None)
    if primary is None:
        return ""
    try:
        with stored_artifacts.storage().open(primary, "rb") as f, zipfile.ZipFile(f) as archive:
            return archive.read(str(PurePosixPath(chosen))).decode(errors="replace")
    except (OSError, KeyError, zipfile.BadZipFile, NotImplementedError):
        return ""   # the runner reports a missing or unreadable buildspec, naming it


def _buildspec_secret_names(action: dict, project, claim: engine.Claim) -> set[str]:
    """The secrets a buildspec's own ``env.secrets-manager`` names (``id[:json-key…]``)."""
    from pipelines.buildspec import buildspec_parse

    text = _buildspec_text(action, project, claim)
    spec = buildspec_parse(text)[0] if text else None
    if spec is None:
        return set()
    return {str(v).partition(":")[0] for v in spec.secrets_manager.values()} - {""}


def _extension(claim: engine.Claim) -> dict:
    """``conveyorJob``: what a runner reads that AWS's JobData does not carry (the resolved
    action, variables, the secrets it references, what the runner would otherwise read
    from the database) and the lease to renew."""
    from executions.selectors import artifact_revisions
    from pipelines import selectors, services

    ae, ex = claim.action_execution, claim.execution
    action = dict(claim.action)
    config = dict(action.get("configuration") or {})
    if any(sealed.is_sealed(v) for v in config.values()):
        action["configuration"] = {k: sealed.unseal(v) for k, v in config.items()}
    prepared: dict = {"sourceVersions": artifact_revisions(str(ex.execution_id))}
    project = None
    if ae.provider == "CodeBuild":
        project = selectors.build_project_get(config.get("ProjectName", ""))
        if project is not None:
            prepared["buildProject"] = {
                "name": project.name, "buildspec": project.buildspec,
                "environment_variables": project.environment_variables,
                "compute_type": project.compute_type, "cache_paths": project.cache_paths,
                "timeout_in_minutes": project.timeout_in_minutes}
            prepared["buildNumber"] = services.build_project_next_number(name=project.name)
        from runners.build import clone_source

        prepared["cloneSources"] = {
            name: found for name in claim.inputs
            if (found := clone_source(str(ex.execution_id), name)) is not None}
    names = _secret_names(action, project)
    if ae.provider == "CodeBuild":
        names |= _buildspec_secret_names(action, project, claim)
    job_secrets = {}
    for name in sorted(names):
        try:
            job_secrets[name] = secret_raw(name)
        except Exception:  # not set here: the agent's runner says so, naming it
            continue
    return {
        "actionExecutionId": str(ae.action_execution_id),
        "pipelineName": ex.pipeline.name, "pipelineExecutionId": str(ex.execution_id),
        "executionNumber": ex.number, "pipelineVersion": ex.pipeline_version.number,
        "stageName": ae.stage_name, "actionName": ae.action_name, "attempt": ae.attempt,
        "category": ae.category, "provider": ae.provider, "action": action,
        "variables": claim.variables,
        "deadline": ae.deadline_at.isoformat() if ae.deadline_at else None,
        "leaseSeconds": engine.lease_seconds(), "heartbeatSeconds": heartbeat_seconds(),
        "secrets": job_secrets, "prepared": prepared,
    }


def heartbeat_seconds() -> float:
    """How often an agent renews its job's lease: a third of the lease, at most 5 s."""
    return min(engine.lease_seconds() / 3, 5.0)


def _job(agent: Agent, job_id: str) -> Job:
    return services.job_get(job_id=job_id, agent=agent.name)


def lease_renew(*, agent: Agent, job_id: str) -> bool:
    """Renew the lease of the agent's running job; False: it ended elsewhere, stop it."""
    job = _job(agent, job_id)
    if job.status not in HELD:
        return False
    return engine.lease_renew(job.action_execution_id, worker=agent.worker_name)


def log_append(*, agent: Agent, job_id: str, offset: int, data: bytes) -> int:
    """Append the bytes of the agent's log that start at ``offset``; returns the new size.

    The agent's log file is the source: a retried batch overlaps what arrived already
    and only its new part is written; a gap (a batch lost) writes nothing and answers
    the size the server has, from which the agent sends again.
    """
    return _append(_job(agent, job_id), offset, data)


def _append(job: Job, offset: int, data: bytes) -> int:
    ae = job.action_execution
    if job.status not in HELD or ae.status != A.IN_PROGRESS or not ae.log_path:
        raise errors.InvalidJobState(f"Job {job.job_id} is {job.status}: its log is closed.")
    path = Path(settings.LOG_ROOT) / ae.log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        size = f.tell()
        if offset > size or offset < 0:
            return size
        new = data[size - offset:]
        if new:
            f.write(new)
        return size + len(new)


def _finish(agent: Agent, job: Job, *, succeeded: bool, summary: str, job_fields: dict,
            **finish) -> None:
    """End the agent's job and its action (the job first: the action's end ends live jobs)."""
    services.held_check(job)
    produced = []
    if succeeded:
        missing = [n for n in job.data.get("outputArtifacts", []) if n not in job.uploads]
        if missing:
            succeeded = False
            summary = f'The agent uploaded no output artifact "{missing[0]}"'
            job_fields = {"failure": {"type": "JobFailed", "message": summary}}
        produced = [engine.ProducedArtifact(name, up["sha256"], up["size"], up["file_count"],
                                            up["storage_name"])
                    for name, up in job.uploads.items()]
    if not succeeded:
        finish.pop("output_variables", None)
    to = JobStatus.SUCCEEDED if succeeded else JobStatus.FAILED
    if not services.job_move(job, to, **job_fields):
        raise errors.InvalidJobState(f"Job {job.job_id} changed meanwhile.")
    done = engine.action_finish(
        job.action_execution_id, worker=agent.worker_name,
        status=A.SUCCEEDED if succeeded else A.FAILED, summary=summary[:2000],
        artifacts=produced if succeeded else (), pipeline_id=job.action_execution.pipeline_id,
        **finish)
    if not done:
        _idle(agent, job.action_execution_id)
        raise errors.InvalidJobState(f"Job {job.job_id}'s action had already ended.")


def _idle(agent: Agent, action_execution_id: int) -> None:
    Agent.objects.filter(pk=agent.pk, action_execution_id=action_execution_id).update(
        action_execution=None, last_seen_at=timezone.now())


def key_actions_stop(*, key_id: int, summary: str) -> int:
    """Fail the actions the agents of key ``key_id`` run, with ``summary`` (the key was
    revoked or deleted: they will report nothing); their jobs end Failed. The count."""
    names = list(Agent.objects.filter(key_id=key_id).values_list("name", flat=True))
    if not names:
        return 0
    stopped = 0
    running = ActionExecution.objects.filter(
        status=A.IN_PROGRESS, worker__in=[f"{engine.AGENT_PREFIX}{n}" for n in names])
    for ae_id, worker in running.values_list("pk", "worker"):
        for job in Job.objects.filter(action_execution_id=ae_id, status__in=HELD):
            services.job_move(job, JobStatus.FAILED,
                              failure={"type": "JobFailed", "message": summary[:5000]})
        if engine.action_finish(ae_id, worker=worker, status=A.FAILED, summary=summary[:2000]):
            stopped += 1
    Agent.objects.filter(key_id=key_id).update(action_execution=None)
    return stopped


def after_result(*, agent: Agent, job_id: str, poll_next: bool) -> list[dict]:
    """After a result: the agent's next job (``conveyorPollNext``), else the agent is shown
    idle. (Handing out a job records the agent's new action: one write, not two.)"""
    jobs = agent_poll(agent=agent, acknowledge=True) if poll_next else []
    if not jobs:
        ae_id = Job.objects.filter(job_id=job_id).values_list("action_execution_id",
                                                              flat=True).first()
        _idle(agent, ae_id)
    return jobs


def job_succeed(*, agent: Agent, job_id: str, output_variables: dict | None = None,
                execution_details: dict | None = None, external_url: str = "",
                log: tuple[int, bytes] | None = None) -> None:
    """The agent's PutJobSuccessResult: the action Succeeds with its variables and the
    outputs it uploaded (one missing fails it instead, naming it). ``log``: (offset,
    bytes) of the log's end."""
    job = _job(agent, job_id)
    _tail(agent, job, log)
    details = dict(execution_details or {})
    variables = {str(k): str(v) for k, v in (output_variables or {}).items()}
    _finish(agent, job, succeeded=True, summary=str(details.get("summary") or ""),
            job_fields={"execution_details": details, "output_variables": variables},
            output_variables=variables, external_url=external_url,
            external_id=str(details.get("externalExecutionId") or ""))


def job_fail(*, agent: Agent, job_id: str, failure_type: str, message: str,
             error: str = "", external_url: str = "",
             log: tuple[int, bytes] | None = None) -> None:
    """The agent's PutJobFailureResult: the action Fails with ``message`` as its summary."""
    job = _job(agent, job_id)
    _tail(agent, job, log)
    _finish(agent, job, succeeded=False, summary=message,
            job_fields={"failure": {"type": failure_type, "message": message[:5000]}},
            error=error, external_url=external_url)


def _tail(agent: Agent, job: Job, log: tuple[int, bytes] | None) -> None:
    """The end of the log that travels with the result (``conveyorLog``), appended first."""
    if log is None:
        return
    offset, data = log
    with contextlib.suppress(errors.JobError):
        if _append(job, offset, data) < offset:
            logger.warning("agent %s: the log of job %s has a gap", agent.name, job.job_id)


def agent_leases_sweep() -> int:
    """Fail agents' actions whose lease lapsed (the agent died or lost the network).

    The web process runs it every quarter lease while agents talk to it (``watchdog``),
    so a vanished agent's action fails within lease + lease/4, not at the next minute's
    sweep; it is the engine's sweep, which the scheduled sweeper also runs.
    """
    lapsed = ActionExecution.objects.filter(
        Q(status=A.IN_PROGRESS, lease_expires_at__lt=timezone.now())
        & ~Q(run_on="") & ~Q(worker="")).exists()
    if not lapsed:
        return 0
    return engine.sweep().lost


_watchdog_lock = threading.Lock()
_watchdog_pid = 0


def _watchdog() -> None:
    """Every quarter lease, ``agent_leases_sweep``. The first check waits a whole lease: a
    web process that has just (re)started gives the agents that could not reach it
    meanwhile one lease to renew (docs/deploy.md)."""
    time.sleep(engine.lease_seconds())
    while True:
        time.sleep(max(0.25, engine.lease_seconds() / 4))
        try:
            agent_leases_sweep()
        except Exception:
            logger.exception("the agents' lease sweep failed")
        finally:
            db.connection.close()


def ensure_watchdog() -> None:
    """One watchdog thread per web process, started by the first agent that polls."""
    global _watchdog_pid
    with _watchdog_lock:
        if _watchdog_pid != os.getpid():
            _watchdog_pid = os.getpid()
            threading.Thread(target=_watchdog, name="conveyor-agents-watchdog",
                             daemon=True).start()
