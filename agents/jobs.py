"""The server side of the agent protocol: an agent's jobs are action executions it claimed.

An action whose configuration names ``RunOn`` labels waits, InProgress and unclaimed,
for an agent (the engine never queues it for a worker). An agent:

1. polls (``job_claim_next``): the oldest waiting action whose labels its own include
   is claimed through the engine for the worker name ``agent:<name>``; the answer is
   the job data (``job_data``): the resolved action, variables, input artifacts to
   download, output names, the secrets the action references and what a runner would
   otherwise read from the database;
2. renews the lease while it runs (``job_heartbeat``): a refusal means the action was
   ended elsewhere (abandoned, timed out), and the agent kills its commands;
3. appends its log as it runs (``job_log_append``), uploads each output artifact
   (``job_output_store``) and reports the end (``job_finish``).

Each call checks that the action is this agent's (its worker name): an agent reaches
only its own jobs. A lease that lapses (the agent died) fails the action at the next
sweep (docs/deploy.md, Build farm: the lease policy).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent
from agents.services import AgentRefused
from executions import artifacts, engine
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution, Artifact
from pipelines import secrets as sealed
from runners.codebuild import environment_entries
from runners.shell import secret_raw

# How many waiting actions one poll looks at (their labels are matched in Python).
POLL_WINDOW = 50


def job_claim_next(*, agent: Agent) -> engine.Claim | None:
    """Claim the oldest waiting action this agent's labels allow, or None."""
    labels = set(agent.labels or [])
    waiting = (ActionExecution.objects.filter(status=A.IN_PROGRESS, worker="")
               .exclude(run_on="").order_by("id").values_list("pk", "run_on")[:POLL_WINDOW])
    for pk, run_on in waiting:
        if not set(run_on.split(",")) <= labels:
            continue
        claim = engine.action_claim(pk, worker=agent.worker_name)
        if claim is not None:
            Agent.objects.filter(pk=agent.pk).update(action_execution_id=pk)
            return claim
    return None


def _own(agent: Agent, action_execution_id) -> ActionExecution:
    """The action execution if it is this agent's and still running, else refused."""
    ae = (ActionExecution.objects.select_related("execution")
          .filter(action_execution_id=action_execution_id).first())
    if ae is None or ae.worker != agent.worker_name:
        raise AgentRefused("no such job of this agent", status=404)
    if ae.status != A.IN_PROGRESS:
        raise AgentRefused(f"the action ended: {ae.status}", status=409)
    return ae


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


def job_data(claim: engine.Claim, *, base_url: str = "") -> dict:
    """What the agent needs to run a claimed action (the poll's answer)."""
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
    job_secrets = {}
    for name in sorted(_secret_names(action, project)):
        try:
            job_secrets[name] = secret_raw(name)
        except Exception:  # not set here: the agent's runner says so, naming it
            continue
    job = str(ae.action_execution_id)
    return {
        "jobId": job, "actionExecutionId": job,
        "pipelineName": ex.pipeline.name, "pipelineExecutionId": str(ex.execution_id),
        "executionNumber": ex.number, "pipelineVersion": ex.pipeline_version.number,
        "stageName": ae.stage_name, "actionName": ae.action_name, "attempt": ae.attempt,
        "category": ae.category, "provider": ae.provider, "action": action,
        "variables": claim.variables,
        "inputArtifacts": [_input(job, name, storage_name)
                           for name, storage_name in claim.inputs.items()],
        "outputArtifacts": [item["name"] for item in action.get("outputArtifacts", [])],
        "deadline": ae.deadline_at.isoformat() if ae.deadline_at else None,
        "leaseSeconds": engine.lease_seconds(), "heartbeatSeconds": heartbeat_seconds(),
        "secrets": job_secrets, "prepared": prepared,
    }


# An input artifact this small travels inside the job data (a request less per action).
INLINE_INPUT_BYTES = 64 << 10


def _input(job: str, name: str, storage_name: str) -> dict:
    item = {"name": name, "path": f"jobs/{job}/inputs/{name}"}
    store = artifacts.storage()
    try:
        if store.size(storage_name) <= INLINE_INPUT_BYTES:
            with store.open(storage_name, "rb") as f:
                item["inline"] = base64.b64encode(f.read()).decode()
    except (OSError, NotImplementedError):
        pass   # the agent downloads it
    return item


def heartbeat_seconds() -> float:
    """How often an agent renews its job's lease: a third of the lease, at most 5 s."""
    return min(engine.lease_seconds() / 3, 5.0)


def job_heartbeat(*, agent: Agent, action_execution_id) -> bool:
    """Renew the lease of the agent's running job; False: it ended elsewhere, stop it."""
    ae = (ActionExecution.objects.filter(action_execution_id=action_execution_id)
          .only("pk", "worker").first())
    if ae is None or ae.worker != agent.worker_name:
        raise AgentRefused("no such job of this agent", status=404)
    return engine.lease_renew(ae.pk, worker=agent.worker_name)


def job_log_append(*, agent: Agent, action_execution_id, offset: int, data: bytes) -> int:
    """Append the bytes of the agent's log that start at ``offset``; returns the new size.

    The agent's log file is the source: a retried batch overlaps what arrived already
    and only its new part is written; a gap (a batch lost) answers the size the server
    has, from which the agent sends again.
    """
    ae = _own(agent, action_execution_id)
    path = Path(settings.LOG_ROOT) / ae.log_path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        size = f.tell()
        if offset > size:
            raise AgentRefused(json.dumps({"offset": size}), status=416)
        new = data[size - offset:]
        if new:
            f.write(new)
        return size + len(new)


def _scratch(ae: ActionExecution) -> Path:
    return Path(settings.WORKSPACE_ROOT) / "agent-uploads" / str(ae.action_execution_id)


def job_output_store(*, agent: Agent, action_execution_id, name: str, body) -> dict:
    """Store an uploaded output artifact (a zip) by its content hash, for ``job_finish``.

    Refused unless ``name`` is an output artifact of the job and every member of the
    zip is a plain relative path (the check every extraction makes).
    """
    ae = _own(agent, action_execution_id)
    outputs = [item["name"] for item in (ae.configuration or {}).get("outputArtifacts", [])]
    if name not in outputs:
        raise AgentRefused(f'"{name}" is not an output artifact of this action', status=404)
    scratch = _scratch(ae)
    scratch.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=scratch, suffix=".zip", delete=False) as tmp:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
            tmp.write(chunk)
    tmp_path = Path(tmp.name)
    try:
        try:
            with zipfile.ZipFile(tmp_path) as archive:
                members = archive.infolist()
                for info in members:
                    problem = artifacts.unsafe_member(info.filename, info.external_attr >> 16,
                                                      scratch / "check")
                    if problem:
                        raise AgentRefused(f"outputArtifacts {name}: {problem}")
        except zipfile.BadZipFile:
            raise AgentRefused(f"outputArtifacts {name}: not a zip archive") from None
        sha = digest.hexdigest()
        storage_name = f"sha256/{sha[:2]}/{sha}.zip"
        store = artifacts.storage()
        if not store.exists(storage_name):
            with open(tmp_path, "rb") as f:
                storage_name = store.save(storage_name, File(f))
        record = {"sha256": sha, "size": tmp_path.stat().st_size,
                  "fileCount": sum(1 for m in members if not m.is_dir()),
                  "storageName": storage_name}
        (scratch / f"{name}.json").write_text(json.dumps(record))
        return record
    finally:
        tmp_path.unlink(missing_ok=True)


def job_input_path(*, agent: Agent, action_execution_id, name: str) -> str:
    """The storage name of an input artifact of the agent's job (for the download)."""
    ae = _own(agent, action_execution_id)
    inputs = [item["name"] for item in (ae.configuration or {}).get("inputArtifacts", [])]
    if name not in inputs:
        raise AgentRefused(f'"{name}" is not an input artifact of this action', status=404)
    ex = ae.execution
    for source in ([ex.pk, ex.rollback_target_id] if ex.rollback_target_id else [ex.pk]):
        artifact = (Artifact.objects.filter(execution_id=source, name=name)
                    .order_by("-id").first())
        if artifact is not None:
            return artifact.storage_name
    raise AgentRefused(f'input artifact "{name}" was not produced', status=404)


def job_finish(*, agent: Agent, action_execution_id, succeeded: bool, summary: str = "",
               output_variables: dict | None = None, external_url: str = "",
               error: str = "") -> bool:
    """The agent reports the end of its job; on success its uploaded outputs are attached.

    False when the action had ended meanwhile (a late or repeated report changes
    nothing). A success missing an uploaded output artifact is failed instead.
    """
    ae = (ActionExecution.objects.filter(action_execution_id=action_execution_id)
          .select_related("execution").first())
    if ae is None or ae.worker != agent.worker_name:
        raise AgentRefused("no such job of this agent", status=404)
    if not isinstance(output_variables or {}, dict):
        raise AgentRefused("outputVariables: must be an object of strings")
    produced = []
    scratch = _scratch(ae)
    status = A.SUCCEEDED if succeeded else A.FAILED
    if succeeded:
        for item in (ae.configuration or {}).get("outputArtifacts", []):
            record_path = scratch / f"{item['name']}.json"
            if not record_path.exists():
                status = A.FAILED
                summary = f'The agent uploaded no output artifact "{item["name"]}"'
                produced = []
                break
            rec = json.loads(record_path.read_text())
            produced.append(engine.ProducedArtifact(item["name"], rec["sha256"], rec["size"],
                                                    rec["fileCount"], rec["storageName"]))
    done = engine.action_finish(
        ae.pk, worker=agent.worker_name, status=status, summary=str(summary)[:2000],
        output_variables=output_variables if status == A.SUCCEEDED else None,
        external_url=str(external_url or ""), error=str(error or ""), artifacts=produced,
        pipeline_id=ae.pipeline_id)
    Agent.objects.filter(pk=agent.pk, action_execution_id=ae.pk).update(
        action_execution=None, last_seen_at=timezone.now())
    for path in scratch.glob("*.json") if scratch.exists() else ():
        path.unlink(missing_ok=True)
    if scratch.exists():
        os.rmdir(scratch) if not any(scratch.iterdir()) else None
    return done


def agent_leases_sweep() -> int:
    """Fail agents' actions whose lease lapsed (the agent died or lost the network).

    The web process runs it every quarter lease while agents talk to it, so a
    vanished agent's action fails within lease + lease/4, not at the next minute's
    sweep; it is the engine's sweep, which the scheduled sweeper also runs.
    """
    lapsed = ActionExecution.objects.filter(
        Q(status=A.IN_PROGRESS, lease_expires_at__lt=timezone.now())
        & ~Q(run_on="") & ~Q(worker="")).exists()
    if not lapsed:
        return 0
    return engine.sweep().lost
