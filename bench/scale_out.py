"""Scale-out drill: two web processes, three django-q2 clusters, one PostgreSQL, one Redis.

As separate machines would run them, but on this one: web A and web B are two
``daphne config.asgi:application`` processes on two ports; clusters 1-3 are
three ``manage.py qcluster`` processes (``--workers`` worker processes each,
default 2). They share only PostgreSQL (``--database-url``, default
``conveyor_tput_scale``, dropped and re-created) and Redis (``--redis-url``,
default db 13, flushed) — and, as docs/deploy.md requires, LOG_ROOT and the
artifact store (one folder here).

The drill:

1. Dashboard websockets connect to web A, signed in with a session cookie:
   ``/ws/pipelines/`` (the Pipelines page) and ``/ws/pipelines/{name}/`` for
   each pipeline (the pipeline pages).
2. ``--executions`` (100) executions are started through web B's REST API
   (``POST /api/pipelines/{name}/executions/``, token auth), over ``--pipelines``
   (10) PARALLEL pipelines of a Source (Simulate) and three Shell stages whose
   command appends ``<execution> <stage> <action> <bash's parent pid>`` to one file.
3. When every execution has ended it checks:
   - **work is shared**: ``ActionExecution.worker`` (``host:pid:thread``, set
     when a worker claims the action) mapped to the cluster whose process tree
     holds that pid; and, independently, the pid each command's bash reports
     as its parent;
   - **no action ran twice**: every (execution, stage, action) line appears once
     in the file, and has one ActionExecution;
   - **A saw everything caused through B**: every ExecutionEvent of these
     executions (from B's starts and from the clusters' work) arrived on A's
     websockets — the Pipelines page's ``/ws/pipelines/`` and each pipeline
     page's ``/ws/pipelines/{name}/`` — with the delay from the event's
     ``created_at`` to its arrival.
     Web A also runs a once-a-second database tailer as a safety net, so a
     p95 well under a second shows the Redis doorbell did the delivering.

    .venv/bin/python bench/scale_out.py [--executions 100] [--pipelines 10] [--workers 2]

Exit status 0 only if every check passes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from engine_latency import machine  # noqa: E402
from live_latency import Socket, free_port, percentile  # noqa: E402
from throughput import load, recreate_database, tree  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conveyor_tput_scale"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
TERMINAL = ("Succeeded", "Failed", "Stopped", "Superseded")


def document(name: str, ran: Path) -> dict:
    record = f'echo "$CONVEYOR_PIPELINE_EXECUTION_ID $CONVEYOR_STAGE_NAME ' \
             f'$CONVEYOR_ACTION_NAME $PPID" >> {ran}'

    def shell(action, category, **extra):
        return {"name": action, "actionTypeId": {"category": category, "owner": "Custom",
                                                 "provider": "Shell", "version": "1"},
                "commands": [record], **extra}

    return {"name": name, "executionMode": "PARALLEL", "stages": [
        {"name": "Source", "actions": [{
            "name": "Checkout", "actionTypeId": {"category": "Source", "owner": "Custom",
                                                 "provider": "Simulate", "version": "1"},
            "configuration": {"OutputContent": "drill\n"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [shell("Compile", "Build",
                                            inputArtifacts=[{"name": "Src"}])]},
        {"name": "Test", "actions": [shell("Check", "Test")]},
        {"name": "Deploy", "actions": [shell("Release", "Deploy")]},
    ]}


def wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.1)


def api(port: int, method: str, path: str, token: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def drill(args) -> int:
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.test import Client

    from config.api_auth import token_create
    from executions.models import ActionExecution, ExecutionEvent, PipelineExecution
    from pipelines.services import pipeline_save

    var = Path(os.environ["CONVEYOR_VAR_DIR"])
    call_command("migrate", verbosity=0)
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    ran = var / "ran.log"
    ran.unlink(missing_ok=True)
    names = [f"scale-{i:02d}" for i in range(args.pipelines)]
    for name in names:
        pipeline_save(document=document(name, ran))
    user = User.objects.create_user("drill-operator")
    user.groups.add(Group.objects.get(name="operators"))
    token = token_create(user=user)[1]
    web = Client()
    web.force_login(user)
    cookie = f"sessionid={web.cookies['sessionid'].value}"

    procs: list[tuple[str, subprocess.Popen]] = []
    logs = []

    def spawn(label: str, cmd: list[str], env: dict) -> subprocess.Popen:
        log = open(var / f"{label}.log", "wb")  # noqa: SIM115
        logs.append(log)
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append((label, p))
        return p

    ports = {"A": free_port(), "B": free_port()}
    cluster_env = dict(os.environ, CONVEYOR_WORKERS=str(args.workers))
    try:
        webs = {k: spawn(f"web-{k}", [sys.executable, "-m", "daphne", "-b", "127.0.0.1",
                                      "-p", str(port), "config.asgi:application"], os.environ)
                for k, port in ports.items()}
        clusters = {f"cluster-{i}": spawn(f"cluster-{i}", [sys.executable, str(ROOT / "manage.py"),
                                                           "qcluster"], cluster_env)
                    for i in (1, 2, 3)}
        for k, p in webs.items():
            wait_http(f"http://127.0.0.1:{ports[k]}/healthz", p, f"web {k}")
        health = {k: urllib.request.urlopen(f"http://127.0.0.1:{ports[k]}/healthz",
                                            timeout=5).read().decode() for k in ports}
        time.sleep(3)  # the clusters' workers are up
        owner: dict[int, str] = {}

        def note_pids() -> None:
            for label, p in clusters.items():
                for pid in tree(p.pid):
                    owner.setdefault(pid, label)

        note_pids()
        result = asyncio.run(_run(args, ports, token, cookie, names, note_pids,
                                  PipelineExecution, ExecutionEvent))
        note_pids()
        alive = {label: p.poll() is None for label, p in procs}
    finally:
        for _, p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _, p in reversed(procs):
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                for pid in reversed(tree(p.pid)):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                p.wait()
        for log in logs:
            log.close()

    pks = result["pks"]
    ok = True
    print(f"web A :{ports['A']} and web B :{ports['B']} /healthz: {health['A']} | {health['B']}")
    statuses = Counter(PipelineExecution.objects.filter(pk__in=pks).values_list(
        "status", flat=True))
    print(f"{len(pks)} executions started through web B's REST API in "
          f"{result['submit_s']:.1f} s, all ended {result['wall_s']:.1f} s after the first "
          f"start; statuses {dict(statuses)}")
    ok &= statuses == Counter({"Succeeded": len(pks)})
    ok &= all(alive.values())

    # 1. work shared across the clusters
    rows = list(ActionExecution.objects.filter(execution_id__in=pks).values_list(
        "execution__execution_id", "stage_name", "action_name", "worker", "attempt"))
    by_cluster: Counter = Counter()
    by_process: Counter = Counter()
    for *_, worker, _attempt in rows:
        pid = int(worker.split(":")[1]) if worker.count(":") >= 2 else -1
        by_cluster[owner.get(pid, f"unknown ({worker or 'no worker recorded'})")] += 1
        by_process[(owner.get(pid, "?"), pid)] += 1
    print(f"\nwork shared: {len(rows)} action executions by ActionExecution.worker -> cluster: "
          + ", ".join(f"{k} {v}" for k, v in sorted(by_cluster.items())))
    print("  per worker process: " + ", ".join(
        f"{c}/pid {p}: {n}" for (c, p), n in sorted(by_process.items())))
    lines = [line.split() for line in ran.read_text().splitlines() if line.strip()]
    bash_parent = Counter(owner.get(int(x[3]), "unknown") for x in lines if len(x) == 4)
    print(f"  by the commands' own report (bash's parent pid -> cluster), {len(lines)} "
          "shell commands: " + ", ".join(f"{k} {v}" for k, v in sorted(bash_parent.items())))
    shared = sum(1 for k in by_cluster if k.startswith("cluster-"))
    print(f"  -> {shared} of 3 clusters ran actions")
    ok &= shared == 3 and not any(k.startswith("unknown") for k in by_cluster)

    # 2. no action ran twice
    keys = Counter(tuple(x[:3]) for x in lines)
    dup_lines = {k: n for k, n in keys.items() if n > 1}
    expected = len(pks) * 3
    attempts = Counter((str(e), s, a) for e, s, a, _, _ in rows)
    dup_rows = {k: n for k, n in attempts.items() if n > 1}
    print(f"\nno action twice: {len(lines)} command lines for {expected} Shell actions "
          f"({len(keys)} distinct), {len(dup_lines)} ran more than once; "
          f"{len(rows)} ActionExecution rows, {len(dup_rows)} actions with more than one")
    ok &= len(lines) == expected and len(keys) == expected and not dup_lines and not dup_rows

    # 3. web A saw every event caused through B
    events = list(ExecutionEvent.objects.filter(execution_id__in=pks).values_list(
        "id", "created_at", "kind", "pipeline__name", "status"))
    print(f"\ndashboard on web A: {len(events)} events of these executions in the database")
    per_pipeline: dict[str, list] = {}
    for e in events:
        per_pipeline.setdefault(e[3], []).append(e)
    views = [("/ws/pipelines/ (Pipelines page, every pipeline)", result["sockets"]["all"],
              events)]
    merged = {"seen": {}, "messages": 0, "duplicates": 0, "out_of_order": 0, "resync": 0}
    for name in per_pipeline:
        sock = result["sockets"][name]
        merged["seen"].update(sock["seen"])
        for k in ("messages", "duplicates", "out_of_order", "resync"):
            merged[k] += sock[k]
    views.append((f"/ws/pipelines/<name>/ x {len(per_pipeline)} (each pipeline's page)",
                  merged, events))
    for label, sock, evs in views:
        seen = sock["seen"]
        missing = [e for e in evs if e[0] not in seen]
        delays = [(seen[e[0]] - e[1].timestamp()) * 1000 for e in evs if e[0] in seen]
        print(f"  {label}: {len(evs) - len(missing)} of {len(evs)} received, "
              f"{len(missing)} missing; {sock['messages']} messages, duplicates "
              f"{sock['duplicates']}, out of sequence order within a pipeline "
              f"{sock['out_of_order']}, resync {sock['resync']}")
        if delays:
            print(f"    event written -> received on A: p50 {statistics.median(delays):.0f} ms, "
                  f"p95 {percentile(delays, 95):.0f} ms, max {max(delays):.0f} ms "
                  "(A's database safety tailer runs once a second)")
        if missing:
            print("    missing (seq, pipeline, kind, status): " + ", ".join(
                f"{e[0]} {e[3]} {e[2]} {e[4]}" for e in missing[:12]))
        ok &= not missing and sock["out_of_order"] == 0
    print(f"\n{'PASS' if ok else 'FAIL'}; files in {var}")
    return 0 if ok else 1


async def _listen_socket(sock: Socket, seen: dict[int, float], stats: dict) -> None:
    last_of: dict[str, int] = {}
    with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
        while True:
            message = json.loads(await sock.receive())
            now = time.time()
            stats["messages"] += 1
            if message.get("type") == "resync":
                stats["resync"] += 1
            for event in message.get("events", []):
                if event["seq"] in seen:
                    stats["duplicates"] += 1
                seen.setdefault(event["seq"], now)
                # within one pipeline, events arrive in sequence order
                name = event["pipelineName"]
                if event["seq"] < last_of.get(name, 0):
                    stats["out_of_order"] += 1
                last_of[name] = max(last_of.get(name, 0), event["seq"])


async def _run(args, ports, token, cookie, names, note_pids, PipelineExecution,  # noqa: N803
               ExecutionEvent) -> dict:  # noqa: N803
    from channels.db import database_sync_to_async

    # The Pipelines page's socket (every pipeline) and each pipeline page's socket.
    paths = {"all": "/ws/pipelines/", **{n: f"/ws/pipelines/{n}/" for n in names}}
    watch = {}
    for label, path in paths.items():
        sock = await Socket.connect(ports["A"], path, cookie)
        hello = json.loads(await sock.receive())
        assert hello["type"] == "hello", hello
        stats = {"messages": 0, "duplicates": 0, "out_of_order": 0, "resync": 0}
        seen: dict[int, float] = {}
        watch[label] = (sock, seen, stats,
                        asyncio.create_task(_listen_socket(sock, seen, stats)))
    await asyncio.sleep(0.5)

    def start_all() -> list[str]:
        ids = []
        for i in range(args.executions):
            r = api(ports["B"], "POST", f"/api/pipelines/{names[i % len(names)]}/executions/",
                    token, {})
            ids.append(r["pipelineExecutionId"])
            if i % 10 == 0:
                note_pids()
        return ids

    t0 = time.perf_counter()
    ids = await asyncio.to_thread(start_all)
    submit = time.perf_counter() - t0

    def pks_of(ids):
        return list(PipelineExecution.objects.filter(execution_id__in=ids).values_list(
            "pk", flat=True))

    pks = await database_sync_to_async(pks_of)(ids)

    def active() -> int:
        note_pids()
        return PipelineExecution.objects.filter(pk__in=pks).exclude(
            status__in=TERMINAL).count()

    deadline = time.monotonic() + 600
    while await database_sync_to_async(active)():
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    wall = time.perf_counter() - t0
    await asyncio.sleep(3.0)  # let the last doorbells (and the 1 s tailer) arrive
    sockets = {}
    for label, (sock, seen, stats, task) in watch.items():
        task.cancel()
        sock.close()
        sockets[label] = {"seen": seen, **stats}
    return {"pks": pks, "sockets": sockets, "submit_s": submit, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=100)
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2,
                        help="CONVEYOR_WORKERS of each of the 3 clusters (default 2)")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                        help="dropped and re-created (must be conveyor_tput*)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="flushed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.exit(drill(args))
    print("Conveyor scale-out drill: 2 web processes (daphne), 3 django-q2 clusters "
          f"x {args.workers} workers, one PostgreSQL, one Redis")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}", flush=True)
    os.environ["DATABASE_URL"] = args.database_url
    recreate_database(args.database_url)
    var = Path("/tmp/conveyor-bench-scale-out")
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ("CONVEYOR_VAR_DIR",)}
    env.update({"CONVEYOR_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "config.settings",
                "PYTHONPATH": str(ROOT), "DATABASE_URL": args.database_url,
                "REDIS_URL": args.redis_url, "DEBUG": "false", "LOG_LEVEL": "WARNING",
                "SECRET_KEY": "bench-scale-out-" + os.urandom(16).hex()})
    rc = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env,
                        cwd=ROOT).returncode
    print(f"load average after: {load()}")
    sys.exit(rc)


if __name__ == "__main__":
    main()
