"""Running one claimed action execution inside a worker process.

``run_action(pk)`` claims the action (a second delivery returns at once),
prepares a fresh workspace with the input artifacts extracted, starts a
heartbeat thread, calls the runner, stores the outputs by content hash and
reports the end to the engine. The heartbeat renews the lease, notices when
the action was ended elsewhere (abandoned, timed out by the sweeper) and
enforces the deadline; either way it kills the runner's process groups.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import traceback as tb
from pathlib import Path

from django.conf import settings
from django.db import connection

from executions import artifacts, engine, runners
from executions.choices import ActionExecutionStatus as A
from executions.runners.base import (
    ActionFailed,
    LogWriter,
    Result,
    RunContext,
    Runner,
    Waiting,
)

logger = logging.getLogger("conveyor.worker")



def record_process_after() -> float:
    """A process group is recorded in the database only if it still runs this long
    after it started (seconds): `true` never pays a write for it."""
    return float(getattr(settings, "CONVEYOR_RECORD_PROCESS_AFTER", 0.2))


def heartbeat_seconds() -> float:
    return min(engine.lease_seconds() / 3, float(getattr(
        settings, "CONVEYOR_HEARTBEAT_SECONDS", 2.0)))


class Heartbeat(threading.Thread):
    """Keeps a running action's lease and stops the runner when it must stop."""

    def __init__(self, pk: int, worker: str, ctx: RunContext, runner: Runner):
        super().__init__(name=f"heartbeat-{pk}", daemon=True)
        self.pk, self.worker, self.ctx, self.runner = pk, worker, ctx, runner
        self._done = threading.Event()
        self._wake = threading.Event()
        self._pending: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self.timed_out = False
        self.lost = False

    def process_started(self, pgid: int) -> None:
        with self._lock:
            self._pending.append((pgid, time.monotonic() + record_process_after()))
        self._wake.set()

    def stop(self) -> None:
        self._done.set()
        self._wake.set()

    def _stop_runner(self, reason: str) -> None:
        if self.ctx.should_stop():
            return
        self.ctx.request_stop(reason)
        try:
            self.runner.cancel(self.ctx)
        except Exception:
            logger.exception("cancel of action execution %s failed", self.pk)

    def run(self) -> None:
        interval = heartbeat_seconds()
        next_beat = time.monotonic() + interval
        deadline = self.ctx.deadline.timestamp() if self.ctx.deadline else None
        used_db = False
        try:
            while not self._done.is_set():
                now = time.monotonic()
                with self._lock:
                    due = min([at for _, at in self._pending], default=next_beat)
                if deadline is not None and not self.timed_out:
                    # Wake at the deadline itself, not at the next beat.
                    due = min(due, now + max(0.0, deadline - time.time()))
                self._wake.wait(max(0.0, min(next_beat, due) - now))
                self._wake.clear()
                if self._done.is_set():
                    break
                now = time.monotonic()
                with self._lock:
                    ready = [p for p in self._pending if p[1] <= now]
                    self._pending = [p for p in self._pending if p[1] > now]
                for pgid, _ in ready:
                    if pgid in self.ctx._process_groups:
                        used_db = True
                        engine.action_record_process(self.pk, worker=self.worker,
                                                     pid=pgid, pgid=pgid)
                if deadline is not None and not self.timed_out and time.time() >= deadline:
                    self.timed_out = True
                    self._stop_runner("timed out")
                if now >= next_beat:
                    next_beat = now + interval
                    used_db = True
                    if not engine.lease_renew(self.pk, worker=self.worker):
                        self.lost = True
                        self._stop_runner("the action was ended elsewhere")
        except Exception:
            logger.exception("heartbeat of action execution %s failed", self.pk)
        finally:
            if used_db:
                connection.close()


def run_action(pk: int, *, worker: str | None = None) -> str | None:
    """Claim and run one action execution; returns its final status (None: not claimed)."""
    worker = worker or engine.worker_name()
    claim = engine.action_claim(pk, worker=worker)
    if claim is None:
        return None
    ae, ex = claim.action_execution, claim.execution
    runner = runners.get(ae.category, ae.provider)
    base = Path(settings.WORKSPACE_ROOT) / str(ae.action_execution_id)
    log = LogWriter(Path(settings.LOG_ROOT) / ae.log_path)
    heartbeat = None
    try:
        workspace = base / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        input_dirs = {}
        for i, (name, storage_name) in enumerate(claim.inputs.items()):
            # The first input artifact is extracted into the workspace itself
            # (CodeBuild's primary source); the others beside it.
            target = workspace if i == 0 else base / "inputs" / name
            artifacts.extract(storage_name, target)
            input_dirs[name] = target
        output_dirs = {}
        for item in claim.action.get("outputArtifacts", []):
            output_dirs[item["name"]] = base / "outputs" / item["name"]
            output_dirs[item["name"]].mkdir(parents=True, exist_ok=True)
        ctx = RunContext(
            pipeline_name=ex.pipeline.name, pipeline_execution_id=str(ex.execution_id),
            execution_number=ex.number, pipeline_version=ex.pipeline_version.number,
            stage_name=ae.stage_name, action_name=ae.action_name,
            action_execution_id=str(ae.action_execution_id), attempt=ae.attempt,
            category=ae.category, provider=ae.provider, action=claim.action,
            variables=claim.variables, input_dirs=input_dirs, output_dirs=output_dirs,
            workspace=workspace, log=log, deadline=ae.deadline_at,
            source_override=claim.source_override,
        )
        heartbeat = Heartbeat(pk, worker, ctx, runner)
        ctx._on_process = heartbeat.process_started
        heartbeat.start()
        try:
            result = runner.run(ctx)
        except ActionFailed as failure:
            return _failed(pk, worker, heartbeat, ctx, log, failure.summary,
                           output_variables=failure.output_variables,
                           external_url=failure.external_url)
        except Exception as exc:
            log.line(f"Crashed: {type(exc).__name__}: {exc}")
            return _failed(pk, worker, heartbeat, ctx, log,
                           f"Crashed: {type(exc).__name__}: {exc}",
                           error=f"{type(exc).__name__}: {exc}", traceback=tb.format_exc())
        heartbeat.stop()
        if heartbeat.timed_out or ctx.should_stop():
            return _failed(pk, worker, heartbeat, ctx, log, "")
        if isinstance(result, Waiting):
            log.line(f"Waiting: {result.summary}")
            engine.action_wait(pk, worker=worker, summary=result.summary,
                               external_url=result.external_url,
                               external_id=result.external_id, token=result.token)
            return A.IN_PROGRESS
        if not isinstance(result, Result):
            return _failed(pk, worker, heartbeat, ctx, log,
                           f"Crashed: the runner returned {type(result).__name__}, not a Result",
                           error="runner returned no Result")
        produced = []
        for name, directory in output_dirs.items():
            stored = artifacts.store_directory(directory)
            produced.append(engine.ProducedArtifact(name, stored.sha256, stored.size,
                                                    stored.file_count, stored.storage_name))
            log.line(f"Output artifact {name}: {stored.file_count} file(s), "
                     f"sha256 {stored.sha256[:12]}")
        engine.action_finish(pk, worker=worker, status=A.SUCCEEDED, summary=result.summary,
                             output_variables=result.output_variables,
                             external_url=result.external_url,
                             external_id=result.external_id, artifacts=produced,
                             revision=result.revision, pipeline_id=ex.pipeline_id)
        return A.SUCCEEDED
    except Exception as exc:  # the worker's own machinery failed (storage, extract, ...)
        logger.exception("action execution %s crashed in the worker", pk)
        return _failed(pk, worker, heartbeat, None, log, f"Crashed: {type(exc).__name__}: {exc}",
                       error=f"{type(exc).__name__}: {exc}", traceback=tb.format_exc())
    finally:
        if heartbeat is not None:
            heartbeat.stop()
            heartbeat.join(timeout=5)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def _failed(pk: int, worker: str, heartbeat: Heartbeat | None, ctx: RunContext | None,
            log: LogWriter, summary: str, **fields) -> str:
    if heartbeat is not None:
        heartbeat.stop()
    if heartbeat is not None and heartbeat.timed_out:
        log.line("Timed out")
        engine.action_time_out(pk, worker=worker)
        return A.FAILED
    if ctx is not None and ctx.should_stop():
        # Ended elsewhere (abandoned, swept): the engine already has its status.
        log.line(f"Stopped: {ctx.stop_reason}")
        return ""
    log.line(f"Failed: {summary}")
    engine.action_finish(pk, worker=worker, status=A.FAILED, summary=summary, **fields)
    return A.FAILED
