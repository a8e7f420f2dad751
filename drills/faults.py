"""Fault drills: kill, restart and cut what Conveyor runs on, then check what it recorded.

Each drill starts real processes (``manage.py qcluster``, daphne) in their own
process groups on a database of its own, causes one fault, and prints what
happened, the figures, and the checks (``PASS``/``FAIL``); the exit status is 1
if a check failed. Run one drill, or all of them one after the other:

    .venv/bin/python drills/faults.py kill-workers [--executions 50] [--workers 50]
    .venv/bin/python drills/faults.py restart
    .venv/bin/python drills/faults.py postgres
    .venv/bin/python drills/faults.py redis
    .venv/bin/python drills/faults.py all

- ``kill-workers``: SIGKILL the whole qcluster process group while every
  execution has a Shell action running, restart the cluster, wait until every
  execution has ended, retry the failed stages, and count from a ledger file
  the actions append to that no action execution ran twice or ran on after
  the sweeper declared its worker lost.
- ``restart``: SIGTERM daphne and the qcluster while a manual approval is
  pending and an action's log is followed over a websocket, start them again,
  approve through the API, and compare the log (the websocket's copy and the
  API's) with every line the command printed.
- ``postgres``: a PostgreSQL of the drill's own (initdb under /tmp, port 5441;
  the shared server on 5432 is never touched) restarted with ``pg_ctl restart
  -m fast`` while executions are started through the API every few hundred ms.
- ``redis``: a redis-server of the drill's own (port 6391) shut down while a
  dashboard websocket is connected and an execution runs, started again later.

Every drill ends with the history check: each execution's, stage execution's
and action execution's ExecutionEvents form a chain of allowed status changes
(``executions.choices``) ending at the row's status, a terminal status is final
(but for a retried execution), and no stage of a locking pipeline was ever held
by two executions at once.

Environment: ``DRILL_PG`` (default postgres://postgres@127.0.0.1:5432; drill
databases are named ``conveyor_drill_*``), ``DRILL_REDIS`` (default
redis://127.0.0.1:6379/12) for the drills that use the shared Redis.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.engine_latency import machine  # noqa: E402

PYTHON = sys.executable
SHARED_PG = os.environ.get("DRILL_PG", "postgres://postgres@127.0.0.1:5432")
SHARED_REDIS = os.environ.get("DRILL_REDIS", "redis://127.0.0.1:6379/12")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "drill-password-1"

failures: list[str] = []
stacks: list[Stack] = []


def say(text: str = "") -> None:
    print(text, flush=True)


def check(ok: bool, what: str) -> bool:
    say(f"  {'PASS' if ok else 'FAIL'}  {what}")
    if not ok:
        failures.append(what)
    return ok


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


# --- processes ------------------------------------------------------------------------


class Proc:
    """A child in its own process group (so one killpg reaches all of it), logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict, logs: Path):
        self.name, self.cmd, self.env, self.logs = name, cmd, env, logs
        self.p: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.logs / f"{self.name}.log", "ab")  # noqa: SIM115
        self.p = subprocess.Popen(self.cmd, cwd=ROOT, env=self.env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group at once (the sentinel, pusher, monitor, workers)."""
        os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def stop(self, timeout: float = 60) -> float:
        """SIGTERM the main process, SIGKILL the group after ``timeout``; returns the seconds.

        Only the main process: a SIGTERM to the whole qcluster group (as systemd's
        default KillMode=control-group sends) left its main process waiting on a
        futex forever, its sentinel a zombie, in 2 tries of 2 here (django-q2 1.11).
        """
        if not self.alive():
            return 0.0
        started = time.monotonic()
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            say(f"  ({self.name} still running {timeout:.0f} s after SIGTERM: SIGKILL)")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
        # Anything left in the group (a worker that outlived the sentinel).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.p.pid, signal.SIGKILL)
        return time.monotonic() - started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """Environment, database and processes of one drill."""

    def __init__(self, name: str, *, database_url: str, redis_url: str, **settings: str):
        self.name = name
        self.var = Path(f"/tmp/conveyor-drill-{name}")
        shutil.rmtree(self.var, ignore_errors=True)
        self.var.mkdir(parents=True)
        self.logs = self.var / "process-logs"
        self.logs.mkdir()
        self.ledger = self.var / "ledger.txt"
        self.ledger.touch()
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith("CONVEYOR_")}
        self.env.update({
            "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONPATH": str(ROOT),
            "CONVEYOR_VAR_DIR": str(self.var), "DATABASE_URL": database_url,
            "REDIS_URL": redis_url, "LOG_LEVEL": "INFO", "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CONVEYOR_POLL_SECONDS": "0",
        })
        self.env.update(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = Proc("qcluster", [PYTHON, "manage.py", "qcluster"], self.env, self.logs)
        stacks.append(self)
        self.web = Proc("daphne", [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p",
                                   str(self.port), "config.asgi:application"],
                        self.env, self.logs)

    def setup_django(self) -> None:
        """Configure this (driver) process like the children, migrate, make a superuser."""
        os.environ.update(self.env)
        os.environ["LOG_LEVEL"] = "WARNING"
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from django.contrib.auth.models import User
        from rest_framework.authtoken.models import Token

        user = User.objects.create_superuser("drill", "drill@example.com", PASSWORD)
        self.token = Token.objects.create(user=user).key

    def wait_web(self, timeout: float = 30) -> float:
        import requests

        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not self.web.alive():
                raise RuntimeError(f"daphne exited: see {self.logs / 'daphne.log'}")
            with contextlib.suppress(requests.RequestException):
                requests.get(self.url + "/healthz", timeout=1)
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError("daphne did not answer within 30 s")

    def api(self, method: str, path: str, **kwargs):
        import requests

        return requests.request(method, self.url + path, timeout=10,
                                headers={"Authorization": f"Token {self.token}"}, **kwargs)

    def health(self) -> str:
        import requests

        out = []
        for path in ("/healthz", "/healthz/workers"):
            try:
                r = requests.get(self.url + path, timeout=3)
                out.append(f"{path} {r.status_code} {r.json().get('status')}")
            except requests.RequestException as exc:
                out.append(f"{path} {type(exc).__name__}")
        return "; ".join(out)

    def stop_all(self) -> None:
        self.web.stop(15)
        self.workers.stop(60)


def fresh_database(base: str, name: str) -> str:
    """Drop and create the drill's own database (only ``conveyor_drill_*`` names)."""
    import psycopg

    assert name.startswith("conveyor_drill"), name
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# --- pipelines ------------------------------------------------------------------------


def source() -> dict:
    return {"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "Custom", "provider": "Simulate",
                             "version": "1"},
            "configuration": {"OutputContent": "drill\n"}, "outputArtifacts": [{"name": "Src"}]}


def shell(name: str, category: str, commands: list[str], **extra) -> dict:
    return {"name": name, "actionTypeId": {"category": category, "owner": "Custom",
                                           "provider": "Shell", "version": "1"},
            "commands": commands, **extra}


def ledger_command(ledger: Path, seconds: float, ticks: int = 1) -> str:
    """Append start, ticks and end lines, each with the action execution id and the time."""
    step = seconds / max(1, ticks)
    line = f'"$CONVEYOR_ACTION_EXECUTION_ID $(date +%s.%N)" >> {ledger}'
    return (f"echo start {line}; for i in $(seq {ticks}); do sleep {step:g}; "
            f"echo tick {line}; done; echo end {line}")


def save_pipeline(document: dict):
    from pipelines.services import pipeline_save

    return pipeline_save(document=document).pipeline


def read_ledger(path: Path) -> dict[str, list[tuple[str, float]]]:
    lines: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for raw in path.read_text().splitlines():
        parts = raw.split()
        if len(parts) == 3:
            lines[parts[1]].append((parts[0], float(parts[2])))
    return lines


def check_ledger(path: Path) -> None:
    """No action execution started twice; none wrote after it ended (plus 1 s to die)."""
    from executions.models import ActionExecution

    ledger = read_ledger(path)
    rows = {str(r["action_execution_id"]): r for r in ActionExecution.objects.filter(
        provider="Shell").values("action_execution_id", "status", "ended_at", "summary")}
    starts = Counter({aid: sum(1 for kind, _ in ls if kind == "start")
                      for aid, ls in ledger.items()})
    twice = [aid for aid, n in starts.items() if n > 1]
    late = []
    for aid, ls in ledger.items():
        row = rows.get(aid)
        if row and row["ended_at"] is not None:
            last = max(t for _, t in ls)
            if last > row["ended_at"].timestamp() + 1.0:
                late.append((aid, round(last - row["ended_at"].timestamp(), 2)))
    unknown = [aid for aid in ledger if aid not in rows]
    ran = sum(1 for n in starts.values() if n)
    say(f"  ledger: {sum(len(v) for v in ledger.values())} lines, {ran} action executions "
        f"started, {len(rows)} Shell action executions in the database")
    check(not twice, f"no action execution started its command twice (twice: {twice[:5]})")
    check(not late, "no command wrote to the ledger more than 1 s after its action ended "
                    f"(late: {late[:5]})")
    check(not unknown, f"every ledger line belongs to a known action execution ({unknown[:3]})")
    succeeded_without_end = [aid for aid, r in rows.items() if r["status"] == "Succeeded"
                             and not any(k == "end" for k, _ in ledger.get(aid, []))]
    check(not succeeded_without_end,
          f"every Succeeded Shell action ran its command to the end ({succeeded_without_end[:3]})")


# --- the history check -------------------------------------------------------------------


def check_history() -> dict:
    """Replay every status event; compare with the rows; look for doubled stage locks."""
    from executions.choices import (
        ActionExecutionStatus,
        EventKind,
        PipelineExecutionStatus,
        StageExecutionStatus,
    )
    from executions.models import (
        ActionExecution,
        ExecutionEvent,
        PipelineExecution,
        StageExecution,
    )

    tables = {EventKind.PIPELINE_EXECUTION: PipelineExecutionStatus,
              EventKind.STAGE_EXECUTION: StageExecutionStatus,
              EventKind.ACTION_EXECUTION: ActionExecutionStatus}
    problems: list[str] = []
    state: dict[tuple, str] = {}
    locking = dict(StageExecution.objects.values_list("pk", "locking"))
    holders: dict[tuple, set] = defaultdict(set)
    doubled = waits = 0
    events = ExecutionEvent.objects.filter(kind__in=list(tables)).order_by("id").values_list(
        "id", "kind", "pipeline_id", "execution_id", "stage_name", "stage_execution_id",
        "action_execution_id", "previous_status", "status")
    count = 0
    for eid, kind, pipeline_id, ex_id, stage, se_id, ae_id, previous, status in events.iterator():
        count += 1
        table = tables[kind]
        key = (kind, {EventKind.PIPELINE_EXECUTION: ex_id,
                      EventKind.STAGE_EXECUTION: se_id}.get(kind, ae_id))
        known = state.get(key, "")
        if previous != known:
            problems.append(f"event #{eid} {kind} {key[1]}: previous {previous!r}, "
                            f"but its history says {known!r}")
        if known == "":
            if status != "InProgress":
                problems.append(f"event #{eid}: {kind} {key[1]} created as {status}")
        elif kind == EventKind.ACTION_EXECUTION and known == status == "InProgress":
            waits += 1   # action_wait: the action now waits (an approval, a webhook job)
        elif status not in table.TRANSITIONS.get(known, ()):
            problems.append(f"event #{eid}: {kind} {key[1]} {known} -> {status} is not allowed")
        state[key] = status
        if kind == EventKind.STAGE_EXECUTION and locking.get(se_id):
            lock = (pipeline_id, stage)
            if status in StageExecutionStatus.ACTIVE:
                holders[lock].add(se_id)
                if len(holders[lock]) > 1:
                    doubled += 1
                    problems.append(f"event #{eid}: stage {stage} of pipeline {pipeline_id} "
                                    f"held by stage executions {sorted(holders[lock])}")
            else:
                holders[lock].discard(se_id)
    for model, kind in ((PipelineExecution, EventKind.PIPELINE_EXECUTION),
                        (StageExecution, EventKind.STAGE_EXECUTION),
                        (ActionExecution, EventKind.ACTION_EXECUTION)):
        table = tables[kind]
        for pk, status, ended in model.objects.values_list("pk", "status", "ended_at"):
            if state.get((kind, pk)) != status:
                problems.append(f"{model.__name__} {pk} is {status} but its events end at "
                                f"{state.get((kind, pk))!r}")
            if (status in table.TERMINAL) != (ended is not None):
                problems.append(f"{model.__name__} {pk} is {status} with ended_at {ended}")
    say(f"  history: {count} status events replayed over "
        f"{PipelineExecution.objects.count()} executions, "
        f"{StageExecution.objects.count()} stage executions, "
        f"{ActionExecution.objects.count()} action executions ({waits} 'waiting' notes "
        f"InProgress -> InProgress)")
    for p in problems[:10]:
        say(f"    {p}")
    check(not problems, f"every status history is a chain of allowed changes ending at the "
                        f"row's status ({len(problems)} problems)")
    check(doubled == 0, "no stage of a locking pipeline was ever held by two executions")
    return {"events": count, "problems": len(problems)}


def statuses() -> Counter:
    from executions.models import PipelineExecution

    return Counter(PipelineExecution.objects.values_list("status", flat=True))


def wait_all_ended(timeout: float, *, every: float = 0.2) -> float | None:
    """Seconds until no execution is InProgress or Stopping (None: timed out)."""
    from executions.models import PipelineExecution

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if not PipelineExecution.objects.filter(status__in=["InProgress", "Stopping"]).exists():
            return time.monotonic() - started
        time.sleep(every)
    return None


# --- a websocket client (RFC 6455, the stdlib only) ---------------------------------------


class WebSocket:
    def __init__(self, port: int, path: str, cookie: str, timeout: float = 5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        self.sock.settimeout(None)
        self.lock = threading.Lock()

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self.lock:
            self.sock.sendall(head + mask + body)

    def send(self, message: dict) -> None:
        self._frame(0x1, json.dumps(message).encode())

    def recv(self) -> dict | None:
        """The next JSON message; None once the server closed the socket."""
        parts = b""
        while True:
            b1, b2 = self._read(2)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b1 & 0x0F
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return None
            if opcode == 0x9:
                self._frame(0xA, payload)
                continue
            if opcode in (0x1, 0x0):
                parts += payload
                if b1 & 0x80:
                    return json.loads(parts.decode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def session_cookie(stack: Stack) -> str:
    """Sign in through the login form, as a browser does."""
    import requests

    s = requests.Session()
    s.get(stack.url + "/login/", timeout=10)
    r = s.post(stack.url + "/login/", timeout=10, allow_redirects=False,
               data={"username": "drill", "password": PASSWORD,
                     "csrfmiddlewaretoken": s.cookies["csrftoken"]},
               headers={"Referer": stack.url + "/login/"})
    assert r.status_code == 302, r.status_code
    return f"sessionid={s.cookies['sessionid']}"


class LiveClient:
    """What a dashboard page does: stay connected, reconnect with ?after=SEQ, follow a log."""

    def __init__(self, stack: Stack, path: str, cookie: str):
        self.stack, self.path, self.cookie = stack, path, cookie
        self.events: dict[int, dict] = {}
        self.last = 0
        self.first_last: int | None = None
        self.log_action: str | None = None
        self.log_offset = 0
        self.log_text = ""
        self.log_ended = False
        self.connections = 0
        self.disconnects: list[tuple[float, str]] = []
        self.refused = 0
        self.resyncs = 0
        self.running = True
        self.ws: WebSocket | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def follow_log(self, action_execution_id: str) -> None:
        self.log_action = action_execution_id
        if self.ws is not None:
            with contextlib.suppress(OSError):
                self.ws.send({"log": action_execution_id, "offset": self.log_offset})

    def _run(self) -> None:
        while self.running:
            path = self.path + (f"?after={self.last}" if self.last else "")
            try:
                self.ws = WebSocket(self.stack.port, path, self.cookie)
            except (OSError, ConnectionError):
                self.refused += 1
                time.sleep(0.5)
                continue
            self.connections += 1
            if self.log_action and not self.log_ended:
                self.ws.send({"log": self.log_action, "offset": self.log_offset})
            reason = "closed by the server"
            try:
                while self.running:
                    message = self.ws.recv()
                    if message is None:
                        reason = f"close frame {getattr(self.ws, 'close_code', None)}"
                        break
                    self._take(message)
            except (OSError, ConnectionError, ValueError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            self.ws.close()
            self.ws = None
            if self.running:
                self.disconnects.append((time.monotonic(), reason))
                time.sleep(0.5)

    def _take(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "hello":
            if self.first_last is None:
                self.first_last = int(message.get("last") or 0)
            self.last = max(self.last, int(message.get("last") or 0))
        elif kind == "events":
            for event in message["events"]:
                self.events[event["seq"]] = event
                self.last = max(self.last, event["seq"])
        elif kind == "resync":
            self.resyncs += 1
        elif kind == "log" and message.get("action") == self.log_action:
            if message.get("text"):
                self.log_text += message["text"]
            self.log_offset = message["offset"]
            if message.get("ended"):
                self.log_ended = True

    def stop(self) -> None:
        self.running = False
        if self.ws is not None:
            self.ws.close()


class OwnPostgres:
    """A PostgreSQL cluster of the drill's own (initdb under /tmp, run as user postgres)."""

    def __init__(self, port: int = 5441):
        self.port = port
        self.dir = Path(f"/tmp/conveyor-drill-pg{port}")
        self.data = self.dir / "data"

    def _as_postgres(self, *cmd: str) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True)

    def start(self) -> None:
        if self.dir.exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m",
                                  "immediate", "stop")
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "--auth=trust", "-E", "UTF8")
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l",
                          str(self.dir / "server.log"), "-o",
                          f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                          f"-c max_connections=200 -c fsync=off", "start")

    def restart(self) -> float:
        started = time.monotonic()
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast",
                          "-l", str(self.dir / "server.log"), "restart")
        return time.monotonic() - started

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast",
                          "stop")


# --- drill 1: SIGKILL the workers ----------------------------------------------------------


def drill_kill_workers(args) -> None:
    # A PostgreSQL of its own: each worker process holds two connections (its task's
    # and its heartbeat thread's), and 50 workers exceed the shared server's 100.
    pg = OwnPostgres(args.pg_port)
    pg.start()
    url = fresh_database(f"postgres://postgres@127.0.0.1:{args.pg_port}", "conveyor_drill_kill")
    flush_redis(SHARED_REDIS)
    stack = Stack("kill", database_url=url, redis_url=SHARED_REDIS,
                  CONVEYOR_WORKERS=str(args.workers),
                  CONVEYOR_LEASE_SECONDS=str(args.lease), CONVEYOR_HEARTBEAT_SECONDS="1",
                  CONVEYOR_DISPATCH_SECONDS=str(args.dispatch))
    stack.setup_django()
    from django.utils import timezone

    from executions import services
    from executions.models import ActionExecution, PipelineExecution

    say(f"drill kill-workers: {args.executions} executions on {args.pipelines} PARALLEL "
        f"pipelines (Source, Build: {args.build_seconds:g} s Shell, Deploy: 1 s Shell), one "
        f"qcluster of {args.workers} workers, PostgreSQL (its own, port {args.pg_port}) + "
        f"Redis, lease {args.lease:g} s, sweeper = the django-q2 schedule (every minute)")
    say(f"  machine: {machine()}")
    pipelines = [save_pipeline({"name": f"drill-kill-{i}", "executionMode": "PARALLEL",
                                "stages": [
        {"name": "Source", "actions": [source()]},
        {"name": "Build", "actions": [shell("Compile", "Build", [
            ledger_command(stack.ledger, args.build_seconds, int(args.build_seconds))],
            inputArtifacts=[{"name": "Src"}])]},
        {"name": "Deploy", "actions": [shell("Release", "Deploy", [
            ledger_command(stack.ledger, 1)])]},
    ]}) for i in range(args.pipelines)]
    stack.workers.start()
    started = time.monotonic()
    executions = [services.execution_start(pipeline=pipelines[i % len(pipelines)])
                  for i in range(args.executions)]
    say(f"  {len(executions)} executions started in {time.monotonic() - started:.2f} s")
    # Kill once every worker slot runs a Shell action (or every execution has one running).
    # (or once the count stopped growing for 3 s on a machine too busy to reach it).
    want = min(args.workers, args.executions)
    deadline = time.monotonic() + 120
    best, best_at = 0, time.monotonic()
    while time.monotonic() < deadline:
        running = ActionExecution.objects.filter(
            status="InProgress", provider="Shell", pgid__isnull=False).count()
        if running >= want or (best and running <= best and time.monotonic() - best_at > 3):
            break
        if running > best:
            best, best_at = running, time.monotonic()
        time.sleep(0.1)
    running = ActionExecution.objects.filter(status="InProgress", provider="Shell").exclude(
        worker="").count()
    queued = ActionExecution.objects.filter(status="InProgress", worker="").count()
    in_progress = PipelineExecution.objects.filter(status="InProgress").count()
    killed_at_wall = timezone.now()
    check(running > 0, "the kill hit running actions")
    stack.workers.kill()
    killed = time.monotonic()
    say(f"  SIGKILL to the qcluster process group {time.monotonic() - started:.1f} s after the "
        f"first start: {in_progress} executions InProgress, {running} actions running "
        f"(claimed), {queued} waiting for a worker")
    time.sleep(args.down)
    stack.workers.start()
    say(f"  qcluster started again {time.monotonic() - killed:.1f} s after the kill")
    took = wait_all_ended(args.timeout)
    recovered = time.monotonic() - killed
    lost = ActionExecution.objects.filter(summary__startswith="Worker lost")
    lost_at = sorted(a.ended_at for a in lost)
    say(f"  statuses: {dict(statuses())}; actions failed as 'Worker lost': {lost.count()}"
        + (f", declared between {(lost_at[0] - killed_at_wall).total_seconds():.1f} s and "
           f"{(lost_at[-1] - killed_at_wall).total_seconds():.1f} s after the kill"
           if lost_at else ""))
    check(took is not None, f"every execution reached a terminal status: time to recover "
                            f"(kill -> all terminal) {recovered:.1f} s")
    check(not ActionExecution.objects.filter(status="InProgress").exists(),
          "no action execution is left InProgress")
    time.sleep(2)  # an orphan the sweeper missed would still be writing
    ledger = read_ledger(stack.ledger)
    cut = sum(1 for a in lost if not any(k == "end" for k, _ in
                                         ledger.get(str(a.action_execution_id), [])))
    say(f"  commands orphaned by the kill and killed by the sweeper before their end: {cut} of "
        f"{lost.count()}")
    check_ledger(stack.ledger)
    # The failed executions can resume: retry the failed stage (docs/semantics.md §8),
    # which is allowed
    # only for the newest execution that entered it, one per pipeline here.
    from executions.errors import ExecutionConflict

    retried, refused = [], 0
    for ex in PipelineExecution.objects.filter(status="Failed").order_by("-number"):
        stage = ex.stage_executions.filter(status="Failed").order_by("-id").first()
        try:
            services.stage_retry(execution=ex, stage_name=stage.stage_name,
                                 mode="FAILED_ACTIONS")
            retried.append(ex.pk)
        except ExecutionConflict:
            refused += 1
    if retried:
        at = time.monotonic()
        took = wait_all_ended(args.timeout)
        done = Counter(PipelineExecution.objects.filter(pk__in=retried).values_list(
            "status", flat=True))
        say(f"  retried the failed stage of the newest execution of each pipeline ({len(retried)};"
            f" {refused} older ones refused: a newer execution entered the stage since): "
            f"{dict(done)} in {time.monotonic() - at:.1f} s")
        check(took is not None and done == Counter({"Succeeded": len(retried)}),
              "every retried execution Succeeded")
        check_ledger(stack.ledger)
    check_history()
    stack.stop_all()
    from django.db import connections

    connections.close_all()
    pg.stop()
    say(f"  load average at the end: {load()}")


# --- drill 2: restart web and workers during an approval and a streaming log -------------


def drill_restart(args) -> None:
    url = fresh_database(SHARED_PG, "conveyor_drill_restart")
    flush_redis(SHARED_REDIS)
    stack = Stack("restart", database_url=url, redis_url=SHARED_REDIS, CONVEYOR_WORKERS="4",
                  CONVEYOR_LEASE_SECONDS="10", CONVEYOR_HEARTBEAT_SECONDS="1")
    stack.setup_django()
    from executions.models import ActionExecution, PipelineExecution

    lines = args.lines
    say(f"drill restart: a pending Manual approval beside a Shell action printing {lines} lines "
        f"(one every 0.1 s), followed over a websocket; daphne and the qcluster get SIGTERM "
        f"and are started again; PostgreSQL + Redis")
    say(f"  machine: {machine()}")
    import requests
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    reviewer = Token.objects.create(user=User.objects.create_superuser(
        "reviewer", "reviewer@example.com", PASSWORD)).key
    printer = f'for i in $(seq {lines}); do echo "line $i of {lines}"; sleep 0.1; done'
    save_pipeline({"name": "drill-restart", "executionMode": "QUEUED", "stages": [
        {"name": "Source", "actions": [source()]},
        {"name": "Work", "actions": [
            shell("Stream", "Build", [printer]),
            {"name": "Approve", "actionTypeId": {"category": "Approval", "owner": "AWS",
                                                 "provider": "Manual", "version": "1"}}]},
        {"name": "Deploy", "actions": [shell("Release", "Deploy", ["echo released"])]},
    ]})
    stack.workers.start()
    stack.web.start()
    stack.wait_web()
    r = stack.api("POST", "/api/pipelines/drill-restart/executions/", json={})
    check(r.status_code == 201, f"execution started through the API ({r.status_code})")
    execution_id = r.json()["pipelineExecutionId"]
    cookie = session_cookie(stack)
    client = LiveClient(stack, f"/ws/executions/{execution_id}/", cookie)
    deadline = time.monotonic() + 60
    stream = None
    while time.monotonic() < deadline:
        stream = ActionExecution.objects.filter(action_name="Stream").exclude(
            log_path="").first()
        pending = stack.api("GET", "/api/approvals/?status=Pending").json()
        if stream and pending.get("count", len(pending.get("results", []))):
            break
        time.sleep(0.2)
    client.follow_log(str(stream.action_execution_id))
    while client.log_text.count("\n") < lines // 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    approval = stack.api("GET", "/api/approvals/?status=Pending").json()["results"][0]
    seen = client.log_text.count("\n")
    say(f"  approval {approval['id']} pending; {seen} log lines received over the websocket")
    restart = time.monotonic()
    stack.web.stop(15)
    web_down = time.monotonic()
    worker_stop = stack.workers.stop(120)
    stream.refresh_from_db()
    say(f"  daphne stopped in {web_down - restart:.1f} s; the qcluster stopped in "
        f"{worker_stop:.1f} s (SIGTERM: django-q2 lets running tasks finish); the Stream action "
        f"is {stream.status} ({stream.summary})")
    stack.workers.start()
    stack.web.start()
    stack.wait_web()
    back = time.monotonic()
    say(f"  web answering again {back - restart:.1f} s after the restart began; "
        f"health: {stack.health()}")
    deadline = time.monotonic() + 30
    while client.connections < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(client.connections >= 2, f"the websocket reconnected ({client.connections} "
                                   f"connections, {client.refused} refused attempts while down)")
    # Another person approves: the one who started it may not (AllowSelfApproval).
    r = requests.post(f"{stack.url}/api/approvals/{approval['id']}/decision/", timeout=10,
                      headers={"Authorization": f"Token {reviewer}"},
                      json={"status": "Approved", "summary": "approved after the restart"})
    check(r.status_code == 201, f"the approval was decided through the API after the restart "
                                f"({r.status_code})")
    took = wait_all_ended(120)
    ex = PipelineExecution.objects.get(execution_id=execution_id)
    check(took is not None and ex.status == "Succeeded",
          f"the execution completed: {ex.status} ({ex.status_summary})")
    deadline = time.monotonic() + 10
    while not client.log_ended and time.monotonic() < deadline:
        time.sleep(0.1)
    stored = ""
    offset = 0
    while True:
        piece = stack.api("GET", f"/api/action-executions/{stream.action_execution_id}/log/"
                                 f"?offset={offset}").json()
        stored += piece["text"]
        offset = piece["nextOffset"]
        if piece["complete"]:
            break
    printed = [f"line {i} of {lines}" for i in range(1, lines + 1)]
    # Each stored line is "<UTC time> <what the command printed>".
    got = [m.group(1) for m in re.finditer(r"^\S+ (line \d+ of \d+)$", stored, re.M)]
    check(got == printed, f"the stored log holds every line the command printed, in order "
                          f"({len(got)} of {lines})")
    check(client.log_text == stored, f"the websocket's copy of the log, across the restart, "
                                     f"equals the stored log ({len(client.log_text)} and "
                                     f"{len(stored)} bytes)")
    events = list(ex.events.filter(id__gt=client.first_last).order_by("id").values_list(
        "id", flat=True))
    deadline = time.monotonic() + 5
    while set(events) - set(client.events) and time.monotonic() < deadline:
        time.sleep(0.1)
    say(f"  events after the first connection: stored {events}, received {sorted(client.events)}"
        f"; disconnects: {[r for _, r in client.disconnects]}")
    check(sorted(client.events) == events,
          f"the websocket received every event of the execution after its first connection "
          f"exactly as stored ({len(client.events)} of {len(events)}), across the restart")
    client.stop()
    check_history()
    stack.stop_all()
    say(f"  load average at the end: {load()}")


# --- drill 3: PostgreSQL restarted under load ---------------------------------------------


def drill_postgres(args) -> None:
    pg = OwnPostgres(args.pg_port)
    pg.start()
    base = f"postgres://postgres@127.0.0.1:{args.pg_port}"
    url = fresh_database(base, "conveyor_drill_pg")
    flush_redis(SHARED_REDIS)
    stack = Stack("postgres", database_url=url, redis_url=SHARED_REDIS, CONVEYOR_WORKERS="4",
                  CONVEYOR_LEASE_SECONDS="10", CONVEYOR_HEARTBEAT_SECONDS="1",
                  CONVEYOR_DISPATCH_SECONDS=str(args.dispatch))
    stack.setup_django()
    from executions.models import ActionExecution, PipelineExecution

    say(f"drill postgres: a PostgreSQL of its own on port {args.pg_port} restarted with "
        f"`pg_ctl restart -m fast` {args.restart_after:g} s into {args.duration:g} s of "
        f"executions started through the API every {args.interval:g} s (daphne + one qcluster "
        f"of 4 workers, Redis broker)")
    say(f"  machine: {machine()}")
    names = []
    for i, mode in enumerate(["PARALLEL", "PARALLEL", "PARALLEL", "QUEUED", "SUPERSEDED"]):
        name = f"drill-pg-{i}-{mode.lower()}"
        names.append(name)
        save_pipeline({"name": name, "executionMode": mode, "stages": [
            {"name": "Source", "actions": [source()]},
            {"name": "Build", "actions": [shell("Compile", "Build", [
                ledger_command(stack.ledger, 0.5)], inputArtifacts=[{"name": "Src"}])]},
            {"name": "Test", "actions": [shell("Check", "Test", [
                ledger_command(stack.ledger, 0.3)])]},
            {"name": "Deploy", "actions": [shell("Release", "Deploy", [
                ledger_command(stack.ledger, 0.1)])]},
        ]})
    stack.workers.start()
    stack.web.start()
    stack.wait_web()
    say(f"  health before: {stack.health()}")
    answers: list[tuple[float, int | str]] = []  # (answered at, status code or error)
    stop = threading.Event()

    def load_loop() -> None:
        i = 0
        while not stop.is_set():
            at = time.monotonic()
            try:
                code = stack.api("POST", f"/api/pipelines/{names[i % len(names)]}/executions/",
                                 json={}).status_code
            except Exception as exc:
                code = type(exc).__name__
            answers.append((time.monotonic(), code))
            i += 1
            stop.wait(max(0.0, args.interval - (time.monotonic() - at)))

    began = time.monotonic()
    thread = threading.Thread(target=load_loop, daemon=True)
    thread.start()
    time.sleep(args.restart_after)
    restart_at = time.monotonic()
    took = pg.restart()
    from django.db import connections

    connections.close_all()  # this script's own connection died with the server too
    say(f"  pg_ctl restart -m fast took {took:.1f} s; health just after: {stack.health()}")
    time.sleep(max(0.0, args.duration - (time.monotonic() - began)))
    stop.set()
    thread.join()
    before = Counter(str(c) for at, c in answers if at < restart_at)
    after = [(at, c) for at, c in answers if at >= restart_at]
    errors = [(at, c) for at, c in after if c != 201]
    first_ok = next((at for at, c in after if c == 201), None)
    say(f"  API starts answered before the restart: {dict(before)}; from the restart on: "
        f"{dict(Counter(str(c) for _, c in after))}")
    if errors:
        say(f"  failed starts answered from {errors[0][0] - restart_at:.1f} s to "
            f"{errors[-1][0] - restart_at:.1f} s after the restart began")
    if first_ok is not None:
        say(f"  first successful start {first_ok - restart_at:.1f} s after the restart began")
    check(first_ok is not None, "the web process serves starts again without a manual step")
    ended = wait_all_ended(args.timeout)
    say(f"  statuses: {dict(statuses())}; summaries of failed actions: "
        f"{dict(Counter(ActionExecution.objects.filter(status='Failed').values_list('summary', flat=True)))}")  # noqa: E501
    check(ended is not None, "every execution reached a terminal status "
                             f"({time.monotonic() - restart_at:.1f} s after the restart)")
    check(not ActionExecution.objects.filter(status="InProgress").exists(),
          "no action execution is left InProgress")
    started_ok = sum(1 for _, c in answers if c == 201)
    check(PipelineExecution.objects.count() >= started_ok,
          f"every start answered 201 has its execution ({started_ok} answered, "
          f"{PipelineExecution.objects.count()} stored)")
    check(stack.workers.alive(), "the qcluster process is still running")
    # A new execution after the restart runs to the end: the workers recovered.
    r = stack.api("POST", f"/api/pipelines/{names[0]}/executions/", json={})
    t0 = time.monotonic()
    ended = wait_all_ended(60, every=0.05)
    ex = PipelineExecution.objects.get(execution_id=r.json()["pipelineExecutionId"])
    check(ex.status == "Succeeded", f"a new execution afterwards Succeeded in "
                                    f"{time.monotonic() - t0:.2f} s ({ex.status})")
    say(f"  health after: {stack.health()}")
    check_ledger(stack.ledger)
    check_history()
    stack.stop_all()
    for name in ("qcluster", "daphne"):
        text = (stack.logs / f"{name}.log").read_text(errors="replace")
        kinds = Counter(re.findall(r"(OperationalError|InterfaceError|AdminShutdown|"
                                   r"reincarnated \w+|Traceback|database unavailable)", text))
        say(f"  {name} log: {dict(kinds)}")
    from django.db import connections

    connections.close_all()
    pg.stop()
    say(f"  load average at the end: {load()}")


# --- drill 4: Redis down -------------------------------------------------------------------


class OwnRedis:
    def __init__(self, port: int = 6391):
        self.port = port
        self.dir = Path(f"/tmp/conveyor-drill-redis{port}")

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1",
                        "--port", str(self.port), "--save", "", "--appendonly", "no",
                        "--dir", str(self.dir), "--pidfile", str(self.dir / "redis.pid"),
                        "--logfile", str(self.dir / "redis.log")], check=True)
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                              capture_output=True, text=True).stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
                       capture_output=True)
        for _ in range(50):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                              capture_output=True).returncode != 0:
                return
            time.sleep(0.1)


def drill_redis(args) -> None:
    redis_server = OwnRedis(args.redis_port)
    redis_server.stop()
    redis_server.start()
    redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
    url = fresh_database(SHARED_PG, "conveyor_drill_redis")
    stack = Stack("redis", database_url=url, redis_url=redis_url, CONVEYOR_WORKERS="4",
                  CONVEYOR_LEASE_SECONDS="10", CONVEYOR_HEARTBEAT_SECONDS="1",
                  CONVEYOR_DISPATCH_SECONDS=str(args.dispatch))
    stack.setup_django()
    from executions import services
    from executions.models import ActionExecution, ExecutionEvent, PipelineExecution

    say(f"drill redis: the Redis of the drill (port {args.redis_port}, django-q2 broker and "
        f"channel layer) shut down for {args.down:g} s while a dashboard websocket "
        f"(/ws/pipelines/<name>/) is connected and executions run; PostgreSQL on 5432")
    say(f"  machine: {machine()}")
    name = "drill-redis"
    pipeline = save_pipeline({"name": name, "executionMode": "PARALLEL", "stages": [
        {"name": "Source", "actions": [source()]},
        {"name": "Build", "actions": [shell("Compile", "Build", [
            ledger_command(stack.ledger, 4, 4)], inputArtifacts=[{"name": "Src"}])]},
        {"name": "Test", "actions": [
            shell("Unit", "Test", [ledger_command(stack.ledger, 1)]),
            shell("Lint", "Test", [ledger_command(stack.ledger, 1)])]},
        {"name": "Deploy", "actions": [shell("Release", "Deploy", [
            ledger_command(stack.ledger, 0.2)])]},
    ]})
    stack.workers.start()
    stack.web.start()
    stack.wait_web()
    cookie = session_cookie(stack)
    client = LiveClient(stack, f"/ws/pipelines/{name}/", cookie)
    time.sleep(1)
    first = services.execution_start(pipeline=pipeline)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ActionExecution.objects.filter(
            execution=first, action_name="Compile", pgid__isnull=False).exists():
        time.sleep(0.1)
    say(f"  execution #1 is in its Build action; websocket: {client.connections} connection, "
        f"{len(client.events)} events received; health: {stack.health()}")
    down_at = time.monotonic()
    redis_server.stop()
    say("  redis-server shut down (SHUTDOWN NOSAVE)")
    time.sleep(1)
    r = stack.api("POST", f"/api/pipelines/{name}/executions/", json={})
    second = r.json().get("pipelineExecutionId") if r.status_code == 201 else None
    say(f"  starting execution #2 through the API while Redis is down: {r.status_code} "
        f"{r.text[:120] if r.status_code != 201 else ''}")
    say(f"  health while down: {stack.health()}")
    ended_first = None
    while time.monotonic() - down_at < args.down:
        first.refresh_from_db()
        if ended_first is None and first.status not in ("InProgress", "Stopping"):
            ended_first = time.monotonic() - down_at
        time.sleep(0.2)
    first.refresh_from_db()
    seen_during = {e["status"] for e in client.events.values()
                   if e.get("pipelineExecutionId") == str(first.execution_id)
                   and e["kind"] == "PipelineExecution"}
    say(f"  after {args.down:g} s without Redis: execution #1 is {first.status}"
        + (f" (ended {ended_first:.1f} s after Redis went down)" if ended_first else "")
        + f"; websocket: {client.connections} connections, {len(client.disconnects)} "
          f"disconnects ({'; '.join(sorted({r for _, r in client.disconnects}))}), "
          f"{client.refused} refused attempts, {len(client.events)} events received, "
          f"execution statuses seen on it: {sorted(seen_during)}")
    if second:
        ex2 = PipelineExecution.objects.get(execution_id=second)
        say(f"  execution #2 is {ex2.status}; its actions: "
            f"{list(ex2.action_executions.values_list('action_name', 'status', 'worker'))}")
    check(stack.workers.alive(), "the qcluster process survived the outage")
    check(stack.web.alive(), "daphne survived the outage")
    redis_server.start()
    back_at = time.monotonic()
    say(f"  redis-server started again (empty: --save '') after {back_at - down_at:.1f} s")
    third = stack.api("POST", f"/api/pipelines/{name}/executions/", json={})
    check(third.status_code == 201, f"an execution starts through the API once Redis is back "
                                    f"({third.status_code})")
    took = wait_all_ended(args.timeout)
    say(f"  statuses: {dict(statuses())}; all ended {time.monotonic() - back_at:.1f} s after "
        f"Redis came back")
    check(took is not None and statuses() == Counter(
        {"Succeeded": PipelineExecution.objects.count()}),
        "every execution Succeeded (the one started during the outage included)")
    time.sleep(3)  # the dashboard's safety net reads once a second
    stored = list(ExecutionEvent.objects.filter(pipeline=pipeline).order_by("id").values_list(
        "id", flat=True))
    missing = sorted(set(stored) - set(client.events))
    check(not missing, f"the dashboard's websocket received every event of the pipeline "
                       f"({len(set(stored) & set(client.events))} of {len(stored)}; missing "
                       f"{missing[:5]})")
    final_seen: dict[str, str] = {}
    for seq in sorted(client.events):
        e = client.events[seq]
        if e["kind"] == "PipelineExecution":
            final_seen[e["pipelineExecutionId"]] = e["status"]
    truth = {str(e): s for e, s in PipelineExecution.objects.values_list("execution_id",
                                                                         "status")}
    check(final_seen == truth, f"the dashboard ends showing each execution's final status "
                               f"({final_seen == truth}: {sorted(final_seen.values())})")
    say(f"  websocket totals: {client.connections} connections, {len(client.disconnects)} "
        f"disconnects, {client.resyncs} resyncs; health after: {stack.health()}")
    client.stop()
    check_ledger(stack.ledger)
    check_history()
    stack.stop_all()
    redis_server.stop()
    for proc in ("qcluster", "daphne"):
        text = (stack.logs / f"{proc}.log").read_text(errors="replace")
        kinds = Counter(re.findall(r"(ConnectionError|Connection refused|reincarnated \w+|"
                                   r"Traceback|Failed to pull task)", text))
        say(f"  {proc} log: {dict(kinds)}")
    say(f"  load average at the end: {load()}")


# --- main ------------------------------------------------------------------------------------

DRILLS = {"kill-workers": drill_kill_workers, "restart": drill_restart,
          "postgres": drill_postgres, "redis": drill_redis}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("drill", choices=[*DRILLS, "all"])
    parser.add_argument("--executions", type=int, default=50)
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--workers", type=int, default=50)
    parser.add_argument("--build-seconds", type=float, default=60)
    parser.add_argument("--lease", type=float, default=10)
    parser.add_argument("--dispatch", type=float, default=30,
                        help="CONVEYOR_DISPATCH_SECONDS: an unclaimed action is handed out "
                             "again after this long")
    parser.add_argument("--down", type=float, default=None,
                        help="seconds the workers (kill-workers) or Redis (redis) stay down")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--pg-port", type=int, default=5441)
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--duration", type=float, default=45)
    parser.add_argument("--restart-after", type=float, default=15)
    parser.add_argument("--interval", type=float, default=0.3)
    parser.add_argument("--timeout", type=float, default=240)
    args = parser.parse_args()
    if args.drill == "all":
        code = 0
        for name in DRILLS:
            code |= subprocess.run([PYTHON, __file__, name], cwd=ROOT).returncode
        return code
    if args.down is None:
        args.down = 2.0 if args.drill == "kill-workers" else 15.0
    started = time.monotonic()
    try:
        DRILLS[args.drill](args)
    except Exception:
        import traceback

        traceback.print_exc()
        failures.append("the drill crashed")
    finally:
        for stack in stacks:
            stack.stop_all()
    say(f"drill {args.drill}: {'PASSED' if not failures else 'FAILED'} in "
        f"{time.monotonic() - started:.0f} s" + (f" ({len(failures)} failed checks)"
                                                 if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
