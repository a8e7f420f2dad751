"""Trigger → Succeeded latency of a tiny pipeline, through real django-q2 workers.

The pipeline: a Source stage (the Simulate provider, which does nothing and
answers at once) and three stages each holding one Shell action running
``true`` — the same three ``true`` commands as the Buildbot peer figure in
STACK.md (0.47–0.51 s). For each topology the script starts a real
``manage.py qcluster`` beside itself, runs 3 warm-up executions, then times
``services.execution_start`` → the execution row reading Succeeded (polled
every 2 ms) over N runs and prints median, p95, min and max, the
database's own started→ended time, and the machine.

    .venv/bin/python bench/engine_latency.py [--runs 20] [--topology embedded|scaled|both]

- embedded: SQLite (WAL) + django-q2 ORM broker (poll 0.01 s), a fresh
  ``CONVEYOR_VAR_DIR`` under /tmp;
- scaled: PostgreSQL + Redis (``BENCH_DATABASE_URL``, default
  postgres://postgres@127.0.0.1:5432/conveyor_engine, and ``BENCH_REDIS_URL``,
  default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = "bench-latency"


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{platform.node()}: {cpu or platform.processor()} x{os.cpu_count()}, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
            f"load average {load}")


def topology_env(name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CONVEYOR_VAR_DIR")}
    var = Path(f"/tmp/conveyor-bench-{name}")
    if name == "embedded":
        shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True, exist_ok=True)
    env["CONVEYOR_VAR_DIR"] = str(var)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env["PYTHONPATH"] = str(ROOT)
    if name == "scaled":
        env["DATABASE_URL"] = os.environ.get(
            "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/conveyor_engine")
        env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    return env


def document(name: str, mode: str) -> dict:
    """The benchmarked pipeline: Source (Simulate) then three stages of one Shell `true`
    (also used by bench/throughput.py)."""
    def shell(action, category):
        return {"name": action, "actionTypeId": {"category": category, "owner": "Custom",
                                                 "provider": "Shell", "version": "1"},
                "commands": ["true"]}

    return {"name": name, "executionMode": mode, "stages": [
        {"name": "Source", "actions": [{
            "name": "Checkout", "actionTypeId": {"category": "Source", "owner": "Custom",
                                                 "provider": "Simulate", "version": "1"},
            "configuration": {"OutputContent": "bench\n"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [{**shell("Compile", "Build"),
                                       "inputArtifacts": [{"name": "Src"}]}]},
        {"name": "Test", "actions": [shell("Check", "Test")]},
        {"name": "Deploy", "actions": [shell("Release", "Deploy")]},
    ]}


def child(name: str, runs: int) -> dict:
    """Runs inside the topology's environment: set up, start a cluster, measure."""
    import django

    if os.environ.get("DATABASE_URL"):
        from _databases import ensure_database  # bench/ is this script's sys.path[0]

        ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from _timing import execution_wall, percentile  # bench/ is this script's sys.path[0]
    from django.core.management import call_command
    from django.db import connection

    from executions.models import PipelineExecution
    from pipelines.services import pipeline_save

    call_command("migrate", verbosity=0)

    pipeline = pipeline_save(document=document(PIPELINE, "QUEUED")).pipeline
    if name == "scaled":
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    cluster = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "qcluster"],
                               cwd=ROOT, env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def one() -> tuple[float, float, str]:
            wall, status, pk = execution_wall(pipeline)
            ex = PipelineExecution.objects.get(pk=pk)
            return wall, (ex.ended_at - ex.created_at).total_seconds(), status

        for _ in range(3):  # warm-up: the cluster's workers start, caches fill
            one()
        walls, dbs, statuses = [], [], set()
        for _ in range(runs):
            wall, db, status = one()
            walls.append(wall)
            dbs.append(db)
            statuses.add(status)
            time.sleep(0.05)
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=20)
        except subprocess.TimeoutExpired:
            cluster.kill()
    walls.sort()
    return {
        "topology": name,
        "database": f"{connection.vendor} {connection.Database.__name__}",
        "broker": "Redis" if name == "scaled" else "ORM (poll 0.01 s)",
        "runs": runs,
        "statuses": sorted(statuses),
        "median": statistics.median(walls),
        "p95": percentile(walls, 0.95),
        "min": walls[0],
        "max": walls[-1],
        "db_median": statistics.median(dbs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--topology", choices=["embedded", "scaled", "both"], default="both")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.runs)))
        return
    names = ["embedded", "scaled"] if args.topology == "both" else [args.topology]
    print("Conveyor engine latency: trigger -> Succeeded, Source (Simulate) + 3 x Shell `true`")
    print(f"machine: {machine()}")
    for name in names:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--runs", str(args.runs)],
            env=topology_env(name), cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr[-3000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['topology']:9s} {r['database']}, broker {r['broker']}: "
              f"median {r['median'] * 1000:.1f} ms, p95 {r['p95'] * 1000:.1f} ms, "
              f"min {r['min'] * 1000:.1f} ms, max {r['max'] * 1000:.1f} ms over {r['runs']} "
              f"runs (database started->ended median {r['db_median'] * 1000:.1f} ms), "
              f"statuses {r['statuses']}")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
