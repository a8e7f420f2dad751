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
import os
import queue
import shutil
import threading
import time
import traceback as tb
from pathlib import Path

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

import runners
from executions import artifacts, engine
from executions.choices import ActionExecutionStatus as A
from observability.logs import log_context
from runners.base import (
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


class Watch:
    """One running action the heartbeat service looks after."""

    def __init__(self, service: HeartbeatService, pk: int, worker: str, ctx: RunContext,
                 runner: Runner):
        self.service, self.pk, self.worker, self.ctx, self.runner = (
            service, pk, worker, ctx, runner)
        self.active = True
        self.timed_out = False
        self.lost = False
        self.next_beat = time.monotonic() + heartbeat_seconds()
        self.deadline = ctx.deadline.timestamp() if ctx.deadline else None
        self.pending: list[tuple[int, float]] = []

    def process_started(self, pgid: int) -> None:
        self.service.process_started(self, pgid)

    def stop(self) -> None:
        self.service.unwatch(self)

    def due(self, now: float) -> float:
        due = min([at for _, at in self.pending], default=self.next_beat)
        if self.deadline is not None and not self.timed_out:
            # Wake at the deadline itself, not at the next beat.
            due = min(due, now + max(0.0, self.deadline - time.time()))
        return min(due, self.next_beat)

    def stop_runner(self, reason: str) -> None:
        if self.ctx.should_stop():
            return
        self.ctx.request_stop(reason)
        try:
            self.runner.cancel(self.ctx)
        except Exception:
            logger.exception("cancel of action execution %s failed", self.pk)


class HeartbeatService:
    """One thread per worker process keeps the leases of its running actions.

    For each watched action it renews the lease every ``heartbeat_seconds``
    (a renewal refused means the action was ended elsewhere: abandoned,
    timed out by the sweeper — the runner is stopped and its process groups
    killed), stops the runner at the deadline, and records a process group
    that is still running ``record_process_after`` seconds after it started.
    One long-lived thread instead of one per action: starting and joining a
    thread for every `true` would cost more than the command.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, pk: int, worker: str, ctx: RunContext, runner: Runner) -> Watch:
        watch = Watch(self, pk, worker, ctx, runner)
        with self._cond:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # A forked worker inherits no threads: start its own.
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._loop, name="conveyor-heartbeat",
                                                daemon=True)
                self._thread.start()
            self._watches.add(watch)
            self._cond.notify()
        return watch

    def unwatch(self, watch: Watch) -> None:
        with self._cond:
            watch.active = False
            self._watches.discard(watch)

    def process_started(self, watch: Watch, pgid: int) -> None:
        with self._cond:
            watch.pending.append((pgid, time.monotonic() + record_process_after()))
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = min((w.due(now) for w in self._watches), default=now + 60)
                if due > now:
                    self._cond.wait(due - now)
                watches = list(self._watches)
            for watch in watches:
                try:
                    self._tend(watch)
                except Exception:
                    logger.exception("heartbeat of action execution %s failed", watch.pk)
                    connection.close()

    def _tend(self, watch: Watch) -> None:
        now = time.monotonic()
        with self._cond:
            if not watch.active:
                return
            ready = [p for p in watch.pending if p[1] <= now]
            watch.pending = [p for p in watch.pending if p[1] > now]
        for pgid, _ in ready:
            if pgid in watch.ctx._process_groups:
                engine.action_record_process(watch.pk, worker=watch.worker, pid=pgid, pgid=pgid)
        if watch.deadline is not None and not watch.timed_out and time.time() >= watch.deadline:
            watch.timed_out = True
            watch.stop_runner("timed out")
        if now >= watch.next_beat and watch.active:
            watch.next_beat = now + heartbeat_seconds()
            if not engine.lease_renew(watch.pk, worker=watch.worker):
                watch.lost = True
                watch.stop_runner("the action was ended elsewhere")


heartbeats = HeartbeatService()


def _riding_out(call, *args, **kwargs):
    """Call an engine entry point, riding out a database restart or a dropped connection.

    An OperationalError or InterfaceError (the server restarted under us: "terminating
    connection due to administrator command", then "connection refused" until it is
    back) closes this thread's connection and tries again, with backoff, for up to half
    a lease. Safe because every entry point is one transaction and a compare-and-set:
    a failed try wrote nothing, and a report whose commit did land changes nothing the
    second time (docs/semantics.md §11). Without this, one PostgreSQL restart failed every action
    that reported its end during it ("Worker lost" one lease later) and left every
    claim it interrupted to the dispatch lease (5 minutes by default): see the
    postgres drill in docs/reliability.md. Past half a lease the error propagates and
    the sweeper ends the action as before.
    """
    deadline = time.monotonic() + engine.lease_seconds() / 2
    delay = 0.1
    while True:
        try:
            return call(*args, **kwargs)
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
            logger.warning("database unavailable in %s (%s): retrying in %.1f s",
                           getattr(call, "__name__", call), exc, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


class Janitor:
    """Removes finished actions' workspaces on a background thread.

    Deleting a workspace is slow on some disks (rmdir on ext4 mounted with
    ``discard`` measured 3–4 ms per directory here) and nothing waits for it:
    each action has its own directory, named by its UUID. A workspace left by a
    worker that died first is removed by the next ``sweep_workspaces``.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def discard(self, path: Path) -> None:
        with self._cond:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # A forked worker inherits no threads (nor the parent's queue's items).
                self._pid, self._pending = os.getpid(), 0
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._loop, name="conveyor-janitor",
                                                daemon=True)
                self._thread.start()
            self._pending += 1
            self._queue.put(path)

    def _loop(self) -> None:
        work = self._queue
        while True:
            shutil.rmtree(work.get(), ignore_errors=True)
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every discarded workspace is gone; False if time ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending <= 0, timeout)


janitor = Janitor()


def run_action(pk: int, *, worker: str | None = None) -> str | None:
    """Claim and run one action execution; returns its final status (None: not claimed)."""
    worker = worker or engine.worker_name()
    claim = _riding_out(engine.action_claim, pk, worker=worker)
    if claim is None:
        return None
    return run_claimed(claim, worker)


def run_claimed(claim: engine.Claim, worker: str) -> str:
    """Run an action execution ``worker`` has claimed; returns its final status.

    Every log record made while it runs carries the action's ids (``LOG_FORMAT=json``).
    """
    ae, ex = claim.action_execution, claim.execution
    with log_context(pipeline=ex.pipeline.name, execution_id=str(ex.execution_id),
                     execution_number=ex.number, stage=ae.stage_name,
                     stage_execution_id=ae.stage_execution_id, action=ae.action_name,
                     action_execution_id=str(ae.action_execution_id), attempt=ae.attempt):
        return _run_claimed(claim, worker)


def _run_claimed(claim: engine.Claim, worker: str) -> str:
    pk = claim.action_execution.pk
    ae, ex = claim.action_execution, claim.execution
    runner = runners.for_action(claim.action)
    base = Path(settings.WORKSPACE_ROOT) / str(ae.action_execution_id)
    log = LogWriter(Path(settings.LOG_ROOT) / ae.log_path)
    heartbeat = None
    try:
        workspace = base / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        input_dirs = {}
        # A remote runner hands the action to a job worker: no files here.
        local_inputs = {} if getattr(runner, "remote", False) else claim.inputs
        for i, (name, storage_name) in enumerate(local_inputs.items()):
            # The first input artifact is extracted into the workspace itself
            # (CodeBuild's primary source); the others beside it.
            target = workspace if i == 0 else base / "inputs" / name
            artifacts.extract(storage_name, target)
            input_dirs[name] = target
        output_dirs = {}
        for item in ([] if getattr(runner, "remote", False)
                     else claim.action.get("outputArtifacts", [])):
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
        heartbeat = heartbeats.watch(pk, worker, ctx, runner)
        ctx._on_process = heartbeat.process_started
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
            _riding_out(engine.action_wait, pk, worker=worker, summary=result.summary,
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
        _riding_out(engine.action_finish, pk, worker=worker, status=A.SUCCEEDED,
                    summary=result.summary, output_variables=result.output_variables,
                    external_url=result.external_url, external_id=result.external_id,
                    artifacts=produced, revision=result.revision, pipeline_id=ex.pipeline_id)
        return A.SUCCEEDED
    except Exception as exc:  # the worker's own machinery failed (storage, extract, ...)
        logger.exception("action execution %s crashed in the worker", pk)
        return _failed(pk, worker, heartbeat, None, log, f"Crashed: {type(exc).__name__}: {exc}",
                       error=f"{type(exc).__name__}: {exc}", traceback=tb.format_exc())
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        log.close()
        janitor.discard(base)


def _failed(pk: int, worker: str, heartbeat: Watch | None, ctx: RunContext | None,
            log: LogWriter, summary: str, **fields) -> str:
    if heartbeat is not None:
        heartbeat.stop()
    if heartbeat is not None and heartbeat.timed_out:
        log.line("Timed out")
        _riding_out(engine.action_time_out, pk, worker=worker)
        return A.FAILED
    if ctx is not None and ctx.should_stop():
        # Ended elsewhere (abandoned, swept): the engine already has its status.
        log.line(f"Stopped: {ctx.stop_reason}")
        return ""
    log.line(f"Failed: {summary}")
    _riding_out(engine.action_finish, pk, worker=worker, status=A.FAILED, summary=summary,
                **fields)
    return A.FAILED
