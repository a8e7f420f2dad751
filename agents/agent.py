"""``conveyor-agent``: run Conveyor's command actions on this machine (docs/deploy.md).

    conveyor-agent --url https://conveyor.example.com --key-file /etc/conveyor/agent.key \\
                   --labels linux,arm64 --work-dir /var/lib/conveyor-agent

The agent needs the URL and an agent key, nothing of the server's: no database, no
Redis, no SECRET_KEY. It configures a Django of its own (no apps, no database) only
because the runners it shares with the workers read a few settings (the sandbox's,
the folders they write in). It:

1. long-polls ``/api/agent/poll`` with its name and labels (the server holds the
   request until an action routed to these labels is claimed for it, or ~25 s);
2. downloads the job's input artifacts and runs the action with the very runner a
   worker would use (Shell, Commands, CodeBuild), in its own sandbox (bubblewrap), in
   a fresh folder of ``--work-dir``;
3. meanwhile ships its log in batches (every ``--log-interval`` s) and renews the job's
   lease; a refused renewal (the action was abandoned or timed out) kills the commands;
4. uploads the output artifacts (deterministic zips), then reports the result with its
   output variables (test reports' counts among them).

Every call to the server is retried with backoff while the server is unreachable
(restarting): the job goes on, the log is re-sent from where the server has it, and
the result is reported once the server is back (within the lease, or the action has
been failed meanwhile and the late report changes nothing). A refused key (revoked)
ends the agent with exit status 3.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import platform
import secrets as random
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from datetime import datetime
from pathlib import Path

VERSION = "1"
POLL_WAIT = 25.0
logger = logging.getLogger("conveyor.agent")


class KeyRefused(Exception):
    """The server refused the agent's key (revoked or wrong): the agent stops."""


class Gone(Exception):
    """The job is no longer this agent's to report on (ended, or not found)."""


class Client:
    """The agent protocol over HTTP, with retries while the server is unreachable."""

    def __init__(self, url: str, key: str, name: str, *, retry_for: float = 600.0):
        self.base = url.rstrip("/") + "/api/agent/"
        self.key, self.name, self.retry_for = key, name, retry_for

    def request(self, method: str, path: str, *, data: bytes | None = None,
                content_type: str = "application/json", timeout: float = 30.0,
                retry: bool = True) -> tuple[int, bytes]:
        """One call; connection failures and 5xx answers are retried with backoff."""
        delay, deadline = 0.2, time.monotonic() + self.retry_for
        while True:
            req = urllib.request.Request(self.base + path, data=data, method=method, headers={
                "Authorization": f"Bearer {self.key}", "X-Conveyor-Agent": self.name,
                "Content-Type": content_type, "User-Agent": f"conveyor-agent/{VERSION}"})
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=timeout) as answer:
                    body = answer.read()
                    logger.debug("%s %s: %s in %.1f ms", method, path, answer.status,
                                 (time.perf_counter() - started) * 1000)
                    return answer.status, body
            except urllib.error.HTTPError as exc:
                body = exc.read()
                if exc.code == 401:
                    raise KeyRefused(body.decode(errors="replace")) from None
                if exc.code < 500 or not retry or time.monotonic() > deadline:
                    return exc.code, body
                problem = f"HTTP {exc.code}"
            except (OSError, urllib.error.URLError) as exc:  # refused, reset, timed out
                if not retry or time.monotonic() > deadline:
                    raise
                problem = str(exc)
            logger.warning("server unreachable (%s): retrying %s %s in %.1f s", problem,
                           method, path, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def post_json(self, path: str, body: dict, **kwargs) -> tuple[int, dict]:
        status, raw = self.request("POST", path, data=json.dumps(body).encode(), **kwargs)
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:
            return status, {"detail": raw[:200].decode(errors="replace")}


# --- Django, configured for the runners only ----------------------------------------


def configure(work_dir: Path, *, sandbox: str) -> None:
    """A Django with no apps and no database: the runners' settings, under ``work_dir``."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        DEBUG=False, USE_TZ=True, TIME_ZONE="UTC", INSTALLED_APPS=[], DATABASES={},
        SECRET_KEY=random.token_urlsafe(32), LOGGING_CONFIG=None,
        VAR_DIR=work_dir, LOG_ROOT=work_dir / "logs", WORKSPACE_ROOT=work_dir / "jobs",
        ARTIFACT_ROOT=work_dir / "artifacts", STATIC_ROOT=work_dir / "static",
        BASE_DIR=Path(__file__).resolve().parents[1],
        CONVEYOR_SECRETS_DIR=work_dir / "secrets",
        CONVEYOR_BUILD_CACHE_ROOT=work_dir / "build-cache",
        CONVEYOR_GIT_CACHE_ROOT=work_dir / "git-cache",
        CONVEYOR_SANDBOX=sandbox, CONVEYOR_SANDBOX_BWRAP=os.environ.get(
            "CONVEYOR_SANDBOX_BWRAP", ""),
        CONVEYOR_SANDBOX_UID=int(os.environ.get("CONVEYOR_SANDBOX_UID", "65534")),
        CONVEYOR_SANDBOX_SYSTEM_PATHS=[p for p in os.environ.get(
            "CONVEYOR_SANDBOX_SYSTEM_PATHS", "").split(",") if p],
        CONVEYOR_SANDBOX_LIMITS={"memory_mib": 4096, "processes": 1024,
                                 "file_size_mib": 16384, "open_files": 4096,
                                 "cpu_seconds": 3600},
        CONVEYOR_SANDBOX_MAX_LIMITS={"memory_mib": 148480, "processes": 32768,
                                     "file_size_mib": 843776, "open_files": 65536,
                                     "cpu_seconds": 86400},
        CONVEYOR_DEPLOY_ROOTS=[], CONVEYOR_INVOKE_MODULES=[], CONVEYOR_BASE_URL="",
    )
    django.setup()
    import runners

    runners.load_builtin()


# --- one job -------------------------------------------------------------------------


class LogShipper(threading.Thread):
    """Sends the new bytes of the job's log file to the server every ``interval`` s."""

    def __init__(self, client: Client, job_id: str, path: Path, interval: float):
        super().__init__(name="conveyor-agent-log", daemon=True)
        self.client, self.job_id, self.path, self.interval = client, job_id, path, interval
        self.sent = 0
        self.done = threading.Event()
        self.gone = False

    def ship(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.sent)
                data = f.read(4 << 20)
        except FileNotFoundError:
            return
        while data and not self.gone:
            status, raw = self.client.request(
                "POST", f"jobs/{self.job_id}/log?offset={self.sent}", data=data,
                content_type="application/octet-stream")
            if status == 200:
                self.sent = json.loads(raw)["offset"]
                return
            if status == 416:  # the server has less than we thought: resend from there
                self.sent = json.loads(raw)["offset"]
                return self.ship()
            self.gone = True    # 404/409: the job ended elsewhere; the heartbeat says why

    def run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                self.ship()
            except KeyRefused:
                return
            except Exception:
                logger.exception("shipping the log failed")

    def finish(self, *, keep: int = 256 << 10) -> dict:
        """Stop shipping; send what is left but its last ``keep`` bytes, which are returned
        ({"logOffset", "logTail"}) to travel with the result (one request less per action)."""
        self.done.set()
        self.join()
        for _ in range(50):   # everything, in batches, before the result
            size = self.path.stat().st_size if self.path.exists() else 0
            if size - self.sent <= keep or self.gone:
                break
            before = self.sent
            self.ship()
            if self.sent == before:
                break
        if self.gone or not self.path.exists():
            return {}
        with open(self.path, "rb") as f:
            f.seek(self.sent)
            tail = f.read()
        return {"logOffset": self.sent, "logTail": tail.decode("utf-8", errors="replace")}


class Heartbeat(threading.Thread):
    """Renews the job's lease; stops the runner when the server says the action ended or
    the deadline passes."""

    def __init__(self, client: Client, job: dict, ctx, runner):
        super().__init__(name="conveyor-agent-heartbeat", daemon=True)
        self.client, self.job, self.ctx, self.runner = client, job, ctx, runner
        self.done = threading.Event()
        self.timed_out = False
        self.ended_elsewhere = False

    def _stop_runner(self, reason: str) -> None:
        if not self.ctx.should_stop():
            self.ctx.request_stop(reason)
            try:
                self.runner.cancel(self.ctx)
            except Exception:
                logger.exception("cancelling the job failed")

    def run(self) -> None:
        every = float(self.job.get("heartbeatSeconds") or 5.0)
        deadline = self.job.get("deadline")
        deadline_ts = datetime.fromisoformat(deadline).timestamp() if deadline else None
        next_beat = time.monotonic() + every
        while not self.done.is_set():
            wait = next_beat - time.monotonic()
            if deadline_ts is not None:
                wait = min(wait, deadline_ts - time.time())
            if self.done.wait(max(0.0, wait)):
                return
            if deadline_ts is not None and time.time() >= deadline_ts and not self.timed_out:
                self.timed_out = True
                self._stop_runner("timed out")
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + every
                try:
                    status, body = self.client.post_json(
                        f"jobs/{self.job['jobId']}/heartbeat", {},
                        timeout=every, retry=False)
                except KeyRefused:
                    self.ended_elsewhere = True
                    self._stop_runner("the agent's key was revoked")
                    return
                except OSError as exc:   # the server restarting: the next beat tries again
                    logger.warning("heartbeat failed: %s", exc)
                    continue
                if status in (404, 409) or (status == 200 and not body.get("continue")):
                    self.ended_elsewhere = True
                    self._stop_runner("the action was ended elsewhere")


def _extract(zip_path: Path, target: Path) -> None:
    from executions.artifacts import unsafe_member

    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        members = archive.infolist()
        for info in members:
            problem = unsafe_member(info.filename, info.external_attr >> 16, target)
            if problem:
                raise ValueError(problem)
        for info in members:
            archive.extract(info, target)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target / info.filename, mode)


class Agent:
    def __init__(self, client: Client, labels: list[str], work_dir: Path, *,
                 log_interval: float = 0.25):
        self.client, self.labels, self.work_dir = client, labels, work_dir
        self.log_interval = log_interval

    # the loop ----------------------------------------------------------------
    def poll(self, wait: float = POLL_WAIT) -> dict | None:
        status, body = self.client.post_json("poll", {
            "name": self.client.name, "labels": self.labels, "version": VERSION,
            "hostname": platform.node(), "wait": wait}, timeout=wait + 15)
        if status == 200:
            return body
        if status != 204:
            logger.warning("poll answered %s: %s", status, body)
            time.sleep(1.0)
        return None

    def serve(self, *, once: bool = False, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            try:
                job = self.poll()
            except OSError as exc:   # retries exhausted: keep trying, slower
                logger.warning("poll failed: %s", exc)
                time.sleep(5)
                continue
            while job is not None:
                try:
                    job = self.run_job(job)
                except OSError as exc:   # the server stayed away longer than the retries:
                    # its sweeper fails the action when the lease lapses; poll again.
                    logger.warning("reporting the job failed: %s", exc)
                    job = None
                if once:
                    return

    # one job -----------------------------------------------------------------
    def run_job(self, job: dict) -> dict | None:
        """Run one job and report it; returns the next job the server handed back, if any."""
        from django.conf import settings

        import runners
        from runners.base import ActionFailed, LogWriter, Result, RunContext

        job_id = job["jobId"]
        base = self.work_dir / "jobs" / job_id
        log_path = self.work_dir / "logs" / f"{job_id}.log"
        # Stamped line by line in the file itself: shipped to the server byte for byte,
        # it is read there without an index (runners.logfile).
        log = LogWriter(log_path, inline=True)
        shipper = LogShipper(self.client, job_id, log_path, self.log_interval)
        shipper.start()
        heartbeat = None
        outcome: dict = {"status": "Failed", "summary": ""}
        try:
            log.line(f"Agent {self.client.name} ({platform.node()}, labels "
                     f"{','.join(self.labels) or 'none'}) runs this action")
            runner = runners.get(job["category"], job["provider"])
            if runner is None or not getattr(runner, "runs_on_agents", False):
                raise ActionFailed(f'This agent does not run {job["provider"]} actions')
            workspace = base / "workspace"
            workspace.mkdir(parents=True, exist_ok=True)
            input_dirs = {}
            for i, item in enumerate(job.get("inputArtifacts", [])):
                target = workspace if i == 0 else base / "inputs" / item["name"]
                self._download(item, base, target)
                input_dirs[item["name"]] = target
            output_dirs = {}
            for name in job.get("outputArtifacts", []):
                output_dirs[name] = base / "outputs" / name
                output_dirs[name].mkdir(parents=True, exist_ok=True)
            # Only the secrets this action references, in a folder of this job only.
            secrets_dir = base / "secrets"
            for name, value in (job.get("secrets") or {}).items():
                path = secrets_dir / name
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                path.write_text(value)
                path.chmod(0o600)
            settings.CONVEYOR_SECRETS_DIR = secrets_dir
            deadline = datetime.fromisoformat(job["deadline"]) if job.get("deadline") else None
            ctx = RunContext(
                pipeline_name=job["pipelineName"],
                pipeline_execution_id=job["pipelineExecutionId"],
                execution_number=job["executionNumber"], pipeline_version=job["pipelineVersion"],
                stage_name=job["stageName"], action_name=job["actionName"],
                action_execution_id=job["actionExecutionId"], attempt=job["attempt"],
                category=job["category"], provider=job["provider"], action=job["action"],
                variables=job.get("variables") or {}, input_dirs=input_dirs,
                output_dirs=output_dirs, workspace=workspace, log=log, deadline=deadline,
                prepared=job.get("prepared") or {})
            heartbeat = Heartbeat(self.client, job, ctx, runner)
            heartbeat.start()
            try:
                result = runner.run(ctx)
            except ActionFailed as failure:
                outcome = {"status": "Failed", "summary": failure.summary,
                           "outputVariables": failure.output_variables,
                           "externalUrl": failure.external_url}
            else:
                if heartbeat.timed_out:
                    minutes = job["action"].get("timeoutInMinutes") or "?"
                    outcome = {"status": "Failed",
                               "summary": f"Action timed out after {minutes} min"}
                elif ctx.should_stop():
                    outcome = {"status": "Failed", "summary": f"Stopped: {ctx.stop_reason}"}
                elif not isinstance(result, Result):
                    outcome = {"status": "Failed", "summary": "Crashed: the runner returned "
                               f"{type(result).__name__}, not a Result"}
                else:
                    for name, directory in output_dirs.items():
                        self._upload(job_id, name, directory, base, log)
                    outcome = {"status": "Succeeded", "summary": result.summary,
                               "outputVariables": result.output_variables,
                               "externalUrl": result.external_url}
        except ActionFailed as failure:
            outcome = {"status": "Failed", "summary": failure.summary}
        except KeyRefused:
            raise
        except Exception as exc:
            log.line(f"Crashed: {type(exc).__name__}: {exc}")
            outcome = {"status": "Failed", "summary": f"Crashed: {type(exc).__name__}: {exc}",
                       "error": traceback.format_exc()}
        finally:
            if heartbeat is not None:
                heartbeat.done.set()
                heartbeat.join()
        if heartbeat is not None and heartbeat.ended_elsewhere:
            log.line("Stopped: the action was ended elsewhere")
        else:
            log.line(f"{outcome['status']}: {outcome.get('summary', '')}".rstrip(": "))
        log.close()
        tail = shipper.finish()
        shutil.rmtree(base, ignore_errors=True)
        if heartbeat is not None and heartbeat.ended_elsewhere:
            return None
        # The rest of the log travels with the result, and the answer may carry this
        # agent's next job (claimed in the same request): one round trip per action.
        status, body = self.client.post_json(f"jobs/{job_id}/result",
                                             {**outcome, **tail, "next": True})
        if status not in (200, 409):
            logger.warning("result of %s answered %s: %s", job_id, status, body)
        return body.get("nextJob") if status == 200 else None

    def _download(self, item: dict, base: Path, target: Path) -> None:
        if "inline" in item:   # a small artifact came with the job data
            data = base64.b64decode(item["inline"])
        else:
            status, data = self.client.request("GET", item["path"].removeprefix("/"),
                                               timeout=300)
            if status != 200:
                raise RuntimeError(f'input artifact {item["name"]}: HTTP {status}')
        with tempfile.NamedTemporaryFile(dir=base, suffix=".zip", delete=False) as tmp:
            tmp.write(data)
        try:
            _extract(Path(tmp.name), target)
        finally:
            os.unlink(tmp.name)

    def _upload(self, job_id: str, name: str, directory: Path, base: Path, log) -> None:
        from executions.artifacts import pack

        archive = base / f"{name}.zip"
        count = pack(directory, archive)
        status, raw = self.client.request(
            "PUT", f"jobs/{job_id}/outputs/{urllib.parse.quote(name)}",
            data=archive.read_bytes(), content_type="application/zip", timeout=300)
        if status != 201:
            raise RuntimeError(f"output artifact {name}: HTTP {status} {raw[:200]!r}")
        record = json.loads(raw)
        log.line(f"Output artifact {name}: {count} file(s), sha256 {record['sha256'][:12]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conveyor-agent", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the Conveyor server's base URL")
    parser.add_argument("--key-file", required=True, type=Path,
                        help="a file holding the agent key (made in the admin)")
    parser.add_argument("--labels", default="", help='labels, e.g. "linux,arm64"')
    parser.add_argument("--work-dir", required=True, type=Path,
                        help="this agent's own folder (jobs, logs, build caches)")
    parser.add_argument("--name", default=platform.node(), help="unique agent name")
    parser.add_argument("--sandbox", default=os.environ.get("CONVEYOR_SANDBOX", "auto"),
                        choices=("auto", "required", "none"))
    parser.add_argument("--log-interval", type=float, default=0.25,
                        help="seconds between log batches (default 0.25)")
    parser.add_argument("--once", action="store_true", help="exit after one job")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key = args.key_file.read_text().strip()
    work_dir = args.work_dir.resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    configure(work_dir, sandbox=args.sandbox)
    labels = sorted({label.strip() for label in args.labels.split(",") if label.strip()})
    agent = Agent(Client(args.url, key, args.name), labels, work_dir,
                  log_interval=args.log_interval)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    logger.info("agent %s polling %s with labels %s", args.name, args.url, labels)
    try:
        agent.serve(once=args.once, stop=stop)
    except KeyRefused as exc:
        logger.error("the server refused this agent's key: %s", exc)
        return 3
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
