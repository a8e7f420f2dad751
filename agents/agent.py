"""``conveyor-agent``: run Conveyor's command actions on this machine (docs/deploy.md).

    conveyor-agent --url https://conveyor.example.com --key-file /etc/conveyor/agent.key \\
                   --labels linux,arm64 --work-dir /var/lib/conveyor-agent

The agent needs the URL and an agent key, nothing of the server's: no database, no
Redis, no SECRET_KEY. It configures a Django of its own (no apps, no database) only
because the runners it shares with the workers read a few settings (the sandbox's,
the folders they write in). It:

It speaks the job-worker protocol of the AWS endpoint ``/aws/`` with its agent key as
a bearer credential, and Conveyor's documented extensions (docs/job-workers.md, Agents):

1. ``PollForJobs`` with its name and labels, long-polled (the server holds the request
   until a job routed to these labels is handed to it, or ~25 s) and acknowledged in
   the same call;
2. downloads the job's input artifacts from the S3 endpoint with the job's
   ``artifactCredentials`` (SigV4) and runs the action with the very runner a worker
   would use (Shell, Commands, CodeBuild), in its own sandbox (bubblewrap), in a fresh
   folder of ``--work-dir``;
3. meanwhile ships its log in batches (``ConveyorAppendJobLog``, every
   ``--log-interval`` s) and renews the job's lease (``ConveyorRenewJobLease``, held by
   the server for a heartbeat and answered at once if the key is revoked); a refused
   renewal (the action was abandoned or timed out, the key revoked) kills the commands;
4. uploads the output artifacts (deterministic zips) to the S3 endpoint, then reports
   ``PutJobSuccessResult`` with its output variables (test reports' counts among them)
   or ``PutJobFailureResult``.

Every call to the server is retried with backoff while the server is unreachable
(restarting): the job goes on, the log is re-sent from where the server has it, and
the result is reported once the server is back (within the lease, or the action has
been failed meanwhile and the late report changes nothing). A refused key (revoked)
kills the running job's commands at once (the held lease renewal is answered the
moment the key is revoked; the server has failed the action, naming the key) and ends
the agent with exit status 3. SIGTERM or SIGINT ends an idle agent at once (its held
poll abandoned); mid-job, the job's commands are killed and the action is reported
failed ("Stopped: the agent was stopped") before the agent exits (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
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
from datetime import UTC, datetime
from pathlib import Path

VERSION = "1"
POLL_WAIT = 25.0
STOPPED = "the agent was stopped"
logger = logging.getLogger("conveyor.agent")


class KeyRefused(Exception):
    """The server refused the agent's key (revoked or wrong): the agent stops."""


class Stopped(BaseException):
    """SIGTERM or SIGINT while the agent was idle (its held poll is abandoned at once),
    or a second one while it stopped a job. A BaseException: no retry loop catches it."""


class Refused(Exception):
    """An AWS error answer (``code``: its ``__type``)."""

    def __init__(self, code: str, message: str, status: int):
        self.code, self.message, self.status = code, message, status
        super().__init__(f"{code}: {message}")


TARGET = "CodePipeline_20150709."


class Client:
    """The job-worker protocol over HTTP (``/aws/``, the S3 endpoint), with retries while
    the server is unreachable."""

    def __init__(self, url: str, key: str, name: str, *, retry_for: float = 600.0):
        self.url = url.rstrip("/")
        self.key, self.name, self.retry_for = key, name, retry_for

    def request(self, method: str, url: str, *, data: bytes | None = None,
                headers: dict | None = None, timeout: float = 30.0,
                retry: bool = True) -> tuple[int, bytes]:
        """One HTTP call; connection failures and 5xx answers are retried with backoff.
        ``headers`` may be a function (re-signed for each try)."""
        delay, deadline = 0.2, time.monotonic() + self.retry_for
        while True:
            sent = headers() if callable(headers) else dict(headers or {})
            sent["User-Agent"] = f"conveyor-agent/{VERSION}"
            req = urllib.request.Request(url, data=data, method=method, headers=sent)
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(req, timeout=timeout) as answer:
                    body = answer.read()
                    logger.debug("%s %s: %s in %.1f ms", method, url, answer.status,
                                 (time.perf_counter() - started) * 1000)
                    return answer.status, body
            except urllib.error.HTTPError as exc:
                body = exc.read()
                if exc.code < 500 or not retry or time.monotonic() > deadline:
                    return exc.code, body
                problem = f"HTTP {exc.code}"
            except (OSError, urllib.error.URLError) as exc:  # refused, reset, timed out
                if not retry or time.monotonic() > deadline:
                    raise
                problem = str(exc)
            logger.warning("server unreachable (%s): retrying %s %s in %.1f s", problem,
                           method, url, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)

    def call(self, operation: str, body: dict, **kwargs) -> dict:
        """One operation on ``/aws/``; an error answer raises ``Refused`` (``KeyRefused``
        for a refused key)."""
        status, raw = self.request("POST", self.url + "/aws/", data=json.dumps(body).encode(),
                                   headers={"Authorization": f"Bearer {self.key}",
                                            "X-Conveyor-Agent": self.name,
                                            "X-Amz-Target": TARGET + operation,
                                            "Content-Type": "application/x-amz-json-1.1"},
                                   **kwargs)
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {"__type": f"HTTP {status}", "message": raw[:200].decode(errors="replace")}
        if status == 200:
            return answer
        code = str(answer.get("__type", f"HTTP {status}"))
        if code == "UnrecognizedClientException":
            raise KeyRefused(answer.get("message", ""))
        raise Refused(code, str(answer.get("message", "")), status)

    def s3(self, method: str, location: dict, credentials: dict, *, data: bytes = b"",
           timeout: float = 300.0) -> tuple[int, bytes]:
        """A path-style S3 call for an artifact, signed (SigV4) with the job's credentials."""
        where = location["s3Location"]
        path = "/s3/{}/{}".format(urllib.parse.quote(where["bucketName"]),
                                  urllib.parse.quote(where["objectKey"]))
        host = urllib.parse.urlsplit(self.url).netloc
        return self.request(method, self.url + path, data=data if method == "PUT" else None,
                            headers=lambda: sign_s3(method, host, path, credentials, data),
                            timeout=timeout)


def sign_s3(method: str, host: str, path: str, creds: dict, payload: bytes) -> dict:
    """The headers of an S3 request signed with Signature Version 4 (as botocore signs)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload_hash = hashlib.sha256(payload).hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": stamp,
               "x-amz-security-token": creds["sessionToken"]}
    signed = sorted(headers)
    canonical = "\n".join([method, urllib.parse.quote(path, safe="/~"), "",
                           *(f"{name}:{headers[name]}" for name in signed), "",
                           ";".join(signed), payload_hash])
    scope = f"{stamp[:8]}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"AWS4{creds['secretAccessKey']}".encode()
    for part in (stamp[:8], "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={creds['accessKeyId']}/{scope}, "
                                f"SignedHeaders={';'.join(signed)}, Signature={signature}")
    headers.pop("host")   # urllib sends it, as signed
    return headers


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

    def __init__(self, client: Client, job_id: str, path: Path, interval: float,
                 on_refused=lambda reason: None):
        super().__init__(name="conveyor-agent-log", daemon=True)
        self.client, self.job_id, self.path, self.interval = client, job_id, path, interval
        self.on_refused = on_refused
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
            try:
                offset = self.client.call("ConveyorAppendJobLog", {
                    "jobId": self.job_id, "offset": self.sent,
                    "data": base64.b64encode(data).decode()})["offset"]
            except Refused:
                self.gone = True    # the job ended elsewhere; the heartbeat says why
                return
            gap = offset < self.sent + len(data)
            self.sent = offset
            if gap:   # the server has less than we thought: resend from there
                return self.ship()
            return

    def run(self) -> None:
        while not self.done.wait(self.interval):
            try:
                self.ship()
            except KeyRefused as exc:
                self.on_refused(str(exc))
                return
            except Exception:
                logger.exception("shipping the log failed")

    def finish(self, *, keep: int = 256 << 10) -> dict:
        """Stop shipping; send what is left but its last ``keep`` bytes, which are returned
        (``conveyorLog``) to travel with the result (one request less per action)."""
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
        return {"conveyorLog": {"offset": self.sent, "data": base64.b64encode(tail).decode()}}


class Heartbeat(threading.Thread):
    """Renews the job's lease by held calls (``ConveyorRenewJobLease`` with
    ``conveyorWaitSeconds``: the server answers at once if the key is revoked); stops
    the runner when the key is refused, the action ended elsewhere or the deadline
    passes. Jobs shorter than ``FIRST_BEAT`` make no call (the claim set the lease)."""

    FIRST_BEAT = 0.5

    def __init__(self, client: Client, job_id: str, job: dict):
        super().__init__(name="conveyor-agent-heartbeat", daemon=True)
        self.client, self.job, self.job_id = client, job, job_id
        self.ctx = self.runner = None
        self.done = threading.Event()
        self.timed_out = False
        self.ended_elsewhere = False
        self.key_refused = ""
        self.stopped = ""

    def attach(self, ctx, runner) -> None:
        """The job's runner is about to run: beat (and stop it when told to)."""
        self.ctx, self.runner = ctx, runner
        if self.key_refused:   # refused (the log shipper's call) while setting up
            self.stop_runner("the agent's key was revoked")
        elif self.stopped:     # the agent was told to stop while setting up
            self.stop_runner(self.stopped)
        self.start()

    def stop(self, reason: str) -> None:
        """The agent is stopping: the job's commands are killed, the action reported
        failed with ``reason``."""
        self.stopped = reason
        self.stop_runner(reason)

    def stop_runner(self, reason: str) -> None:
        if self.ctx is not None and not self.ctx.should_stop():
            self.ctx.request_stop(reason)
            try:
                self.runner.cancel(self.ctx)
            except Exception:
                logger.exception("cancelling the job failed")

    def refuse(self, reason: str) -> None:
        """The server refused the key (revoked): the job's commands are killed now."""
        self.key_refused = reason or "the agent's key was refused"
        self.stop_runner("the agent's key was revoked")

    def run(self) -> None:
        every = float(self.job.get("heartbeatSeconds") or 5.0)
        deadline = self.job.get("deadline")
        deadline_ts = datetime.fromisoformat(deadline).timestamp() if deadline else None
        if self.done.wait(min(self.FIRST_BEAT, every)):
            return
        while not self.done.is_set():
            hold = every
            if deadline_ts is not None:
                left = deadline_ts - time.time()
                if left <= 0:
                    self.timed_out = True
                    self.stop_runner("timed out")
                    return
                hold = min(hold, left)
            if hold < 1:   # the deadline is near: wait for it here
                self.done.wait(hold)
                continue
            try:
                alive = self.client.call(
                    "ConveyorRenewJobLease", {"jobId": self.job_id,
                                              "conveyorWaitSeconds": int(hold)},
                    timeout=hold + 15, retry=False).get("continue")
            except KeyRefused as exc:
                self.refuse(str(exc))
                return
            except (Refused, OSError) as exc:
                if isinstance(exc, Refused) and exc.status < 500:
                    alive = False
                else:   # the server restarting: try again shortly
                    logger.warning("heartbeat failed: %s", exc)
                    self.done.wait(1.0)
                    continue
            if self.done.is_set():
                return
            if not alive:
                self.ended_elsewhere = True
                self.stop_runner("the action was ended elsewhere")
                return


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
        self.stop_event = threading.Event()
        self.idle = False          # in a poll (or its backoff): a stop abandons it
        self.heartbeat: Heartbeat | None = None   # of the running job
        self.signals = 0

    def on_signal(self, signum, frame) -> None:
        """SIGTERM/SIGINT (docs/deploy.md, stopping an agent): idle, the agent ends now
        (the held poll is abandoned); running a job, its commands are killed and the
        action is reported failed ("Stopped: the agent was stopped"), then the agent
        ends; a second signal ends it at once."""
        self.signals += 1
        self.stop_event.set()
        name = signal.Signals(signum).name
        if self.idle or self.signals > 1:
            raise Stopped(name)
        logger.warning("%s: stopping the running job, reporting it failed, then exiting "
                       "(signal again to exit at once)", name)
        if self.heartbeat is not None:
            # Not in the handler itself: it interrupted the main thread, which may hold
            # the locks the runner's cancel takes.
            threading.Thread(target=self.heartbeat.stop, args=(STOPPED,), daemon=True,
                             name="conveyor-agent-stop").start()

    # the loop ----------------------------------------------------------------
    def poll(self, wait: float = POLL_WAIT) -> dict | None:
        try:
            answer = self.client.call("PollForJobs", {
                "maxBatchSize": 1, "conveyorAcknowledge": True,
                "conveyorWaitSeconds": int(wait),
                "conveyorAgent": {"name": self.client.name, "labels": self.labels,
                                  "version": VERSION, "hostname": platform.node()}},
                timeout=wait + 15)
        except Refused as exc:
            logger.warning("poll refused: %s", exc)
            time.sleep(1.0)
            return None
        return next(iter(answer.get("jobs") or []), None)

    def serve(self, *, once: bool = False) -> None:
        stop = self.stop_event
        while not stop.is_set():
            self.idle = True
            try:
                if stop.is_set():   # a signal came before the agent was idle
                    return
                job = self.poll()
            except OSError as exc:   # retries exhausted: keep trying, slower
                logger.warning("poll failed: %s", exc)
                time.sleep(5)
                continue
            finally:
                self.idle = False
            while job is not None:
                try:
                    job = self.run_job(job)
                except OSError as exc:   # the server stayed away longer than the retries:
                    # its sweeper fails the action when the lease lapses; poll again.
                    logger.warning("reporting the job failed: %s", exc)
                    job = None
                if once or stop.is_set():
                    return

    # one job -----------------------------------------------------------------
    def run_job(self, handed: dict) -> dict | None:
        """Run one job (a PollForJobs answer's, acknowledged) and report it; returns the next
        job the server handed back with the result's answer, if any."""
        from django.conf import settings

        import runners
        from runners.base import ActionFailed, LogWriter, Result, RunContext

        job_id, job, data = handed["id"], handed["conveyorJob"], handed["data"]
        credentials = data["artifactCredentials"]
        base = self.work_dir / "jobs" / job_id
        log_path = self.work_dir / "logs" / f"{job_id}.log"
        # Stamped line by line in the file itself: shipped to the server byte for byte,
        # it is read there without an index (runners.logfile).
        log = LogWriter(log_path, inline=True)
        heartbeat = self.heartbeat = Heartbeat(self.client, job_id, job)
        if self.stop_event.is_set():   # stopped between the poll's answer and here
            heartbeat.stopped = STOPPED
        shipper = LogShipper(self.client, job_id, log_path, self.log_interval,
                             on_refused=heartbeat.refuse)
        shipper.start()
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
            for i, item in enumerate(data.get("inputArtifacts", [])):
                target = workspace if i == 0 else base / "inputs" / item["name"]
                self._download(item, credentials, base, target)
                input_dirs[item["name"]] = target
            output_dirs = {}
            outputs = {item["name"]: item for item in data.get("outputArtifacts", [])}
            for name in outputs:
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
            if heartbeat.key_refused:
                raise KeyRefused(heartbeat.key_refused)
            if heartbeat.stopped:
                raise ActionFailed(f"Stopped: {heartbeat.stopped}")
            heartbeat.attach(ctx, runner)
            try:
                result = runner.run(ctx)
            except ActionFailed as failure:
                outcome = {"status": "Failed", "summary": failure.summary,
                           "outputVariables": failure.output_variables,
                           "externalUrl": failure.external_url}
            else:
                if heartbeat.key_refused:
                    pass   # reported below: the agent stops
                elif heartbeat.timed_out:
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
                        self._upload(outputs[name], credentials, directory, base, log)
                    outcome = {"status": "Succeeded", "summary": result.summary,
                               "outputVariables": result.output_variables,
                               "externalUrl": result.external_url}
        except ActionFailed as failure:
            outcome = {"status": "Failed", "summary": failure.summary}
        except KeyRefused as exc:
            heartbeat.key_refused = heartbeat.key_refused or str(exc) or "refused"
        except Exception as exc:
            log.line(f"Crashed: {type(exc).__name__}: {exc}")
            outcome = {"status": "Failed", "summary": f"Crashed: {type(exc).__name__}: {exc}",
                       "error": traceback.format_exc()}
        finally:
            # Not joined: it may be in a held renewal, which ends on its own (daemon).
            heartbeat.done.set()
            self.heartbeat = None
        if heartbeat.key_refused:
            # The server failed the action when it revoked the key: nothing to report.
            log.line(f"Stopped: the server refused this agent's key ({heartbeat.key_refused})")
            log.close()
            shipper.done.set()
            shutil.rmtree(base, ignore_errors=True)
            raise KeyRefused(f"{heartbeat.key_refused}; job {job_id} ({job['pipelineName']} "
                             f"{job['stageName']}/{job['actionName']}) was stopped")
        if heartbeat.ended_elsewhere:
            log.line("Stopped: the action was ended elsewhere")
        else:
            log.line(f"{outcome['status']}: {outcome.get('summary', '')}".rstrip(": "))
        log.close()
        tail = shipper.finish()
        shutil.rmtree(base, ignore_errors=True)
        if heartbeat.ended_elsewhere:
            return None
        # The rest of the log travels with the result, and the answer may carry this
        # agent's next job (handed out in the same request): one round trip per action.
        report = {"jobId": job_id, **tail, "conveyorPollNext": not self.stop_event.is_set()}
        if outcome.get("externalUrl"):
            report["conveyorExternalUrl"] = outcome["externalUrl"]
        if outcome["status"] == "Succeeded":
            operation = "PutJobSuccessResult"
            report["outputVariables"] = {str(k): str(v) for k, v in
                                         (outcome.get("outputVariables") or {}).items()}
            report["executionDetails"] = {"summary": str(outcome.get("summary") or "")[:2048]}
        else:
            operation = "PutJobFailureResult"
            report["failureDetails"] = {"type": "JobFailed",
                                        "message": str(outcome.get("summary") or "Failed")[:5000]}
            if outcome.get("error"):
                report["conveyorError"] = outcome["error"]
        try:
            answer = self.client.call(operation, report)
        except Refused as exc:   # the action had ended meanwhile: the report changes nothing
            logger.warning("%s for %s refused: %s", operation, job_id, exc)
            return None
        return next(iter(answer.get("conveyorJobs") or []), None)

    def _download(self, item: dict, credentials: dict, base: Path, target: Path) -> None:
        if "conveyorInline" in item:   # a small artifact came with the poll's answer
            data = base64.b64decode(item["conveyorInline"])
        else:
            status, data = self.client.s3("GET", item["location"], credentials)
            if status != 200:
                raise RuntimeError(f'input artifact {item["name"]}: HTTP {status} '
                                   f'{data[:200]!r}')
        with tempfile.NamedTemporaryFile(dir=base, suffix=".zip", delete=False) as tmp:
            tmp.write(data)
        try:
            _extract(Path(tmp.name), target)
        finally:
            os.unlink(tmp.name)

    def _upload(self, item: dict, credentials: dict, directory: Path, base: Path,
                log) -> None:
        from executions.artifacts import pack

        name = item["name"]
        archive = base / f"{name}.zip"
        count = pack(directory, archive)
        body = archive.read_bytes()
        status, raw = self.client.s3("PUT", item["location"], credentials, data=body)
        if status != 200:
            raise RuntimeError(f"output artifact {name}: HTTP {status} {raw[:200]!r}")
        log.line(f"Output artifact {name}: {count} file(s), sha256 "
                 f"{hashlib.sha256(body).hexdigest()[:12]}")


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
    signal.signal(signal.SIGTERM, agent.on_signal)
    signal.signal(signal.SIGINT, agent.on_signal)
    logger.info("agent %s polling %s with labels %s", args.name, args.url, labels)
    try:
        agent.serve(once=args.once)
    except KeyRefused as exc:
        logger.error("the server refused this agent's key (revoked, or not a key): %s; "
                     "the agent stops", exc)
        return 3
    except Stopped as exc:
        logger.info("agent %s stopped (%s)", args.name, exc)
        return 0
    if agent.stop_event.is_set():
        logger.info("agent %s stopped", args.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
