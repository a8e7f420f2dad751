"""Live latency: a status change committed → its message received by websocket clients.

For each topology it starts a real web process (daphne, ``config.asgi``) on a
fresh database, connects ``--clients`` websocket clients (a minimal RFC 6455
client, signed in with a session cookie and a same-origin header) to
``/ws/pipelines/{name}/``, then commits ``--changes`` status changes from this
process — which plays the worker: another process than the web server — each a
real ``executions.services.transition_set`` (the transition into a stage
disabled, then enabled, …: one committed status change with its
ExecutionEvent). A change's latency, per client, is the time from just after
its commit returned to the arrival of the message carrying its sequence number.

- ``embedded``: SQLite, in-memory channel layer: the web process's tailer notices
  the row (it polls every 30 ms). Target p95 ≤ 250 ms.
- ``redis``: PostgreSQL (``--database-url``) and channels-redis (``--redis-url``):
  the worker rings after commit. Target p95 ≤ 50 ms.

    .venv/bin/python bench/live_latency.py [--mode both|embedded|redis]
        [--clients 100] [--changes 200] [--interval 0.05]

Prints p50/p95/max over every (change, client) pair, the p95 of the slowest
client per change, and how many messages never arrived.

Measured on the 2-core machine while other work kept its load average at 5–8
(100 clients × 200 changes, 50 ms apart): embedded p50 48.5 ms, p95 85.9 ms;
Redis (PostgreSQL + channels-redis) p50 21.2 ms, p95 35.8 ms; none missing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conveyor_dash"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


# --- a minimal websocket client (RFC 6455: text frames, ping/pong, close) ------------


class Socket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, path: str, cookie: str) -> Socket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Origin: http://127.0.0.1:{port}\r\nCookie: {cookie}\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))
        return cls(reader, writer)

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    async def receive(self) -> str:
        while True:
            b1, b2 = await self.reader.readexactly(2)
            length = b2 & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            mask = await self.reader.readexactly(4) if b2 & 0x80 else None
            payload = await self.reader.readexactly(length)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b1 & 0x0F
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("closed by the server")
            elif opcode == 0x1:
                return payload.decode()

    def close(self) -> None:
        try:
            self._send(0x8)
            self.writer.close()
        except Exception:
            pass


# --- one topology -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def run(mode: str, clients: int, changes: int, interval: float, database_url: str,
        redis_url: str) -> dict:
    """Runs inside a child process whose environment selects the topology."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from executions import services
    from executions.models import ExecutionEvent
    from pipelines.services import pipeline_save
    from tests.factories import action, definition

    call_command("migrate", verbosity=0)
    name = f"bench-{os.getpid()}"
    sim = {"configuration": {}}
    pipeline = pipeline_save(document=definition(name, stages=[
        ("Source", [action("Checkout", "Source", "Simulate", outputArtifacts=[{"name": "S"}],
                           **sim)]),
        ("Build", [action("Compile", "Build", "Simulate", **sim)])])).pipeline
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get(name="operators"))
    web = Client()
    web.force_login(user)
    cookie = f"sessionid={web.cookies['sessionid'].value}"

    port = free_port()
    log = open(Path(os.environ["CONVEYOR_VAR_DIR"]) / "web.log", "wb")  # noqa: SIM115
    daphne = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p",
                               str(port), "config.asgi:application"], cwd=ROOT, env=os.environ,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or daphne.poll() is not None:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.1)
        return asyncio.run(_measure(port, pipeline, user, cookie, clients, changes, interval,
                                    services, ExecutionEvent, mode))
    finally:
        daphne.terminate()
        daphne.wait(10)


async def _measure(port, pipeline, user, cookie, clients, changes, interval, services,
                   ExecutionEvent, mode) -> dict:  # noqa: N803
    received: list[dict[int, float]] = [dict() for _ in range(clients)]
    sockets = []
    for _ in range(clients):
        sock = await Socket.connect(port, f"/ws/pipelines/{pipeline.name}/", cookie)
        hello = json.loads(await sock.receive())
        assert hello["type"] == "hello", hello
        sockets.append(sock)

    async def listen(i: int, sock: Socket) -> None:
        try:
            while True:
                message = json.loads(await sock.receive())
                now = time.time()
                for event in message.get("events", []):
                    received[i].setdefault(event["seq"], now)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    tasks = [asyncio.create_task(listen(i, s)) for i, s in enumerate(sockets)]
    await asyncio.sleep(1.0)  # every subscription settled
    committed: dict[int, float] = {}

    def worker() -> None:
        # The worker's side: commit a status change, note when the commit returned.
        from django.db import connection

        for n in range(changes):
            services.transition_set(pipeline=pipeline, stage_name="Build", enabled=n % 2 == 1,
                                    reason=f"bench change {n}", user=user)
            done = time.time()
            seq = ExecutionEvent.objects.filter(pipeline=pipeline).order_by("-id").values_list(
                "id", flat=True).first()
            committed[seq] = done
            time.sleep(interval)
        connection.close()

    thread = threading.Thread(target=worker)
    started = time.monotonic()
    thread.start()
    while thread.is_alive():
        await asyncio.sleep(0.05)
    await asyncio.sleep(2.0)  # stragglers
    elapsed = time.monotonic() - started
    for task in tasks:
        task.cancel()
    for sock in sockets:
        sock.close()

    latencies, slowest, missing = [], [], 0
    for seq, at in committed.items():
        per_change = []
        for got in received:
            if seq in got:
                per_change.append((got[seq] - at) * 1000)
            else:
                missing += 1
        latencies.extend(per_change)
        if per_change:
            slowest.append(max(per_change))
    return {
        "mode": mode, "clients": clients, "changes": len(committed),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1),
        "p95_slowest_client_ms": round(percentile(slowest, 95), 1),
        "missing": missing, "seconds": round(elapsed, 1),
    }


def child_env(mode: str, var_dir: str, database_url: str, redis_url: str) -> dict:
    env = dict(os.environ)
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "CONVEYOR_VAR_DIR": var_dir,
                "SECRET_KEY": "bench-" + base64.b64encode(os.urandom(24)).decode(),
                "LOG_LEVEL": "WARNING", "DEBUG": "false"})
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    if mode == "redis":
        env["DATABASE_URL"] = database_url
        env["REDIS_URL"] = redis_url
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["both", "embedded", "redis"], default="both")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05,
                        help="seconds between two changes")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run(args.child, args.clients, args.changes, args.interval,
                     args.database_url, args.redis_url)
        print("RESULT " + json.dumps(result))
        return
    modes = ["embedded", "redis"] if args.mode == "both" else [args.mode]
    if "redis" in modes:
        from _databases import ensure_database  # bench/ is this script's sys.path[0]

        ensure_database(args.database_url)     # a fresh machine has no conveyor_dash yet
    targets = {"embedded": 250, "redis": 50}
    for mode in modes:
        with tempfile.TemporaryDirectory(prefix=f"conveyor-bench-{mode}-") as var_dir:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--clients", str(args.clients),
                 "--changes", str(args.changes), "--interval", str(args.interval),
                 "--database-url", args.database_url, "--redis-url", args.redis_url],
                env=child_env(mode, var_dir, args.database_url, args.redis_url),
                cwd=ROOT, capture_output=True, text=True)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{mode}: failed\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
                continue
            r = json.loads(line[7:])
            verdict = "meets" if r["p95_ms"] <= targets[mode] else "MISSES"
            print(f"{mode:9} {r['clients']} clients × {r['changes']} changes: "
                  f"p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, max {r['max_ms']} ms; "
                  f"p95 of the slowest client {r['p95_slowest_client_ms']} ms; "
                  f"missing {r['missing']}; {r['seconds']} s  "
                  f"({verdict} the p95 target of {targets[mode]} ms)")


if __name__ == "__main__":
    main()
