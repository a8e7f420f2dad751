"""Throughput, orchestration overhead and worker memory on PostgreSQL + Redis.

The pipeline is bench/engine_latency.py's: a Source stage (the Simulate
provider) and three stages each running one Shell action ``true`` — 4 actions
per execution — here in PARALLEL mode, 50 copies of it (``tput-00`` ..
``tput-49``). Each measurement runs in a child process on a fresh PostgreSQL
database (``--database-url``, default ``conveyor_tput``, dropped and created
anew) and Redis db (``--redis-url``, default db 13, flushed), beside a real
``manage.py qcluster`` with ``CONVEYOR_WORKERS`` worker processes.

1. **Worker sweep** (``--workers 2,3,4,5,6``): for each count, a fresh cluster,
   warm-up (2 executions per pipeline), then ``--executions`` (500) executions
   started as fast as ``--starters`` (4) threads can call
   ``services.execution_start`` (as concurrent API requests would), round-robin
   over the 50 pipelines. Throughput = N / (last execution's
   ``ended_at`` − first one's ``created_at``) × 60.
2. **Full run** with the best count: the same throughput figure again, then
   the orchestration overhead per action — trigger → Succeeded minus the
   actions' own time, divided by the 4 actions — at 1 concurrent execution
   (``--overhead-runs`` sequential runs, polled every 2 ms) and at 50 (one
   execution per pipeline started at once; database timestamps). "Own time" is
   given two ways: Σ ActionExecution ``started_at``→``ended_at`` (everything the
   worker does after claiming: workspace, artifacts, runner) and 3 × the
   measured cost of ``bash -c true`` in a new session (the commands alone).
3. **Memory**: the cluster's process tree (qcluster and every Python process
   under it: sentinel, pusher, monitor, workers) — RSS and PSS summed — after
   warm-up and again after ``--memory-actions`` (10,000) more actions, with
   django-q2's worker recycling turned off (``BENCH_Q_RECYCLE``) so growth
   cannot hide behind a replaced process.
4. **Buildbot peer** (``--buildbot``, on by default): runs
   ``../shared/peers/buildbot/run.sh`` after Conveyor's measurements and prints
   its batch throughput beside ours, and the ratio.

``--profile`` instead runs one throughput batch with the worker probe
(``bench/_worker_probe.py``: cProfile per task, SQL statements per action) and
prints where the time goes (``BENCH_PROFILE_CLOCK=wall`` to count waiting too).

Each batch also reports CPU seconds per execution: the cluster's process tree
(with its reaped ``bash`` children), the starting threads, and the PostgreSQL
backends of the benchmark database. On a shared machine that is the steadier
figure: 2 idle cores can run at most 2 × 60 s / (CPU per execution) a minute.

    .venv/bin/python bench/throughput.py                 # everything (~10 min)
    .venv/bin/python bench/throughput.py --workers 4 --no-buildbot --memory-actions 0
    .venv/bin/python bench/throughput.py --profile --workers 4
    .venv/bin/python bench/throughput.py --workers 4 --sandbox none ...   # beside the default
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from engine_latency import document as latency_document  # noqa: E402
from engine_latency import machine  # noqa: E402

PIPELINES = 50
ACTIONS_PER_EXECUTION = 4
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/conveyor_tput"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/13"
BUILDBOT = ROOT.parent / "shared" / "peers" / "buildbot" / "run.sh"
TERMINAL = ("Succeeded", "Failed", "Stopped", "Superseded", "Cancelled")


def code_state() -> str:
    """The commit measured, and whether the engine's files had uncommitted changes."""
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = git("status", "--short", "--", "executions", "pipelines", "config").split()
    return (f"{git('rev-parse', '--short', 'HEAD').strip()}"
            + (f" + uncommitted changes in {', '.join(sorted(set(dirty[1::2])))}"
               if dirty else ""))


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


# --- the cluster's process tree --------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()
        kids.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return kids


def tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_by_pid(pid: int) -> dict[int, float]:
    """CPU seconds (user + system, with reaped children such as `bash -c true`) per
    process of a tree."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[p] = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
    return out


def tree_cpu(pid: int) -> float:
    return sum(tree_cpu_by_pid(pid).values())


class PgCpu:
    """CPU seconds spent by the PostgreSQL backends serving the benchmark database.

    Backends come and go (django-q2 closes connections between tasks), so they
    are sampled: ``sample()`` every ~0.25 s keeps each backend's last reading; a
    backend first seen after ``begin()`` counts from zero (its start-up is real
    work). CPU a backend spends after its last sample before it exits is missed.
    """

    def __init__(self, dbname: str):
        import psycopg

        self.dbname = dbname
        self.conn = psycopg.connect(
            os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres", autocommit=True)
        self.tick = os.sysconf("SC_CLK_TCK")
        self.base: dict[int, int] = {}
        self.last: dict[int, int] = {}

    def _read(self) -> dict[int, int]:
        pids = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.dbname])]
        out = {}
        for p in pids:
            try:
                fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
                out[p] = int(fields[11]) + int(fields[12])
            except OSError:
                continue
        return out

    def begin(self) -> None:
        self.base = self._read()
        self.last = dict(self.base)

    def sample(self) -> None:
        self.last.update(self._read())

    def seconds(self) -> float:
        return sum(v - self.base.get(p, 0) for p, v in self.last.items()) / self.tick


def tree_memory(pid: int) -> dict:
    """RSS and PSS (kB) of the Python processes of a process tree (a `bash -c true`
    caught in passing is left out)."""
    rss = pss = 0
    pids = []
    for p in tree(pid):
        try:
            if not os.readlink(f"/proc/{p}/exe").split("/")[-1].startswith("python"):
                continue
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
            pids.append(p)
        except OSError:
            continue
    return {"rss_kb": rss, "pss_kb": pss, "pids": sorted(pids)}


# --- inside the child: Django set up on the benchmark database -----------------------


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1].split("?")[0]
    if not name.startswith("conveyor_tput"):
        raise SystemExit(f"refusing to drop {name!r}: benchmark databases are conveyor_tput*")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')



class Bench:
    def __init__(self, workers: int, recycle: int | None, profile_dir: str | None,
                 starters: int = 1):
        import django

        django.setup()
        from django.core.management import call_command

        from pipelines.services import pipeline_save

        call_command("migrate", verbosity=0)
        self.starters = starters
        self.pipelines = [
            pipeline_save(document=latency_document(f"tput-{i:02d}", "PARALLEL")).pipeline
            for i in range(PIPELINES)]
        import redis

        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
        self.pg = PgCpu(os.environ["DATABASE_URL"].rsplit("/", 1)[1].split("?")[0])
        env = os.environ.copy()
        env["CONVEYOR_WORKERS"] = str(workers)
        if recycle:
            env["BENCH_Q_RECYCLE"] = str(recycle)
        if profile_dir:
            env["BENCH_PROFILE_DIR"] = profile_dir
        self.cluster_log = open(Path(os.environ["CONVEYOR_VAR_DIR"]) / "qcluster.log", "wb")  # noqa: SIM115
        self.cluster = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"], cwd=ROOT, env=env,
            stdout=self.cluster_log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        self.cluster.send_signal(signal.SIGTERM)
        try:
            self.cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for p in reversed(tree(self.cluster.pid)):
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
            self.cluster.wait()

    def start(self, n: int, offset: int = 0) -> list[int]:
        """Start n executions round-robin over the pipelines, from ``starters`` threads
        (as several web requests would), each with its own database connection."""
        from concurrent.futures import ThreadPoolExecutor

        from django.db import connection

        from executions import services

        def part(k: int) -> list[int]:
            try:
                return [services.execution_start(
                    pipeline=self.pipelines[(offset + i) % PIPELINES]).pk
                    for i in range(k, n, self.starters)]
            finally:
                connection.close()

        if self.starters <= 1 or n < self.starters:
            return [services.execution_start(
                pipeline=self.pipelines[(offset + i) % PIPELINES]).pk for i in range(n)]
        with ThreadPoolExecutor(self.starters) as pool:
            futures = [pool.submit(part, k) for k in range(self.starters)]
            while not all(f.done() for f in futures):
                self.pg.sample()
                time.sleep(0.25)
            return sorted(pk for f in futures for pk in f.result())

    def wait(self, pks: list[int], timeout: float = 1800) -> None:
        from executions.models import PipelineExecution

        deadline = time.monotonic() + timeout
        sampled = 0.0
        while PipelineExecution.objects.filter(pk__in=pks).exclude(
                status__in=TERMINAL).exists():
            if time.monotonic() > deadline or self.cluster.poll() is not None:
                raise RuntimeError("executions did not end: is the cluster up? "
                                   f"(see {self.cluster_log.name})")
            if time.monotonic() - sampled > 0.25:
                self.pg.sample()
                sampled = time.monotonic()
            time.sleep(0.05)

    def batch(self, n: int, offset: int = 0) -> dict:
        """Start n executions at once; throughput and per-execution breakdown."""
        from django.db.models import Count, Max, Min

        from executions.models import ActionExecution, PipelineExecution

        self.pg.begin()
        by_pid0 = tree_cpu_by_pid(self.cluster.pid)
        cpu0 = (sum(by_pid0.values()), sum(os.times()[:2]), 0.0)
        t0 = time.perf_counter()
        pks = self.start(n, offset)
        submit = time.perf_counter() - t0
        self.wait(pks)
        wall = time.perf_counter() - t0
        self.pg.sample()
        by_pid1 = tree_cpu_by_pid(self.cluster.pid)
        cpu1 = (sum(by_pid1.values()), sum(os.times()[:2]), self.pg.seconds())
        # per process of the cluster, busiest first: the workers, then django-q2's
        # sentinel / pusher / monitor and the qcluster parent
        per_process = sorted(((by_pid1[p] - by_pid0.get(p, 0.0)) / n * 1000
                              for p in by_pid1), reverse=True)
        cpu = {k: (y - x) / n
               for k, x, y in zip(("cluster", "driver", "postgres"), cpu0, cpu1, strict=True)}
        rows = PipelineExecution.objects.filter(pk__in=pks)
        span = rows.aggregate(first=Min("created_at"), last=Max("ended_at"))
        seconds = (span["last"] - span["first"]).total_seconds()
        statuses = dict(rows.values_list("status").annotate(n=Count("id")))
        actions = ActionExecution.objects.filter(execution_id__in=pks).count()
        return {"executions": n, "actions": actions, "submit_s": submit, "wall_s": wall,
                "span_s": seconds, "per_min": n / seconds * 60, "statuses": statuses,
                "cpu_per_execution": cpu,
                "cluster_cpu_ms_per_process": [round(x, 1) for x in per_process if x >= 0.05],
                **self.breakdown(pks)}

    def breakdown(self, pks: list[int]) -> dict:
        """Per execution: latency, Σ action time, and where the rest went."""
        from executions.models import ActionExecution, PipelineExecution

        created = dict(PipelineExecution.objects.filter(pk__in=pks).values_list(
            "pk", "created_at"))
        ended = dict(PipelineExecution.objects.filter(pk__in=pks).values_list("pk", "ended_at"))
        acts: dict[int, list] = {}
        for row in ActionExecution.objects.filter(execution_id__in=pks).values_list(
                "execution_id", "created_at", "started_at", "ended_at").order_by("id"):
            acts.setdefault(row[0], []).append(row[1:])
        latency, own, waits, gaps = [], [], [], []
        for pk in pks:
            a = acts.get(pk, [])
            latency.append((ended[pk] - created[pk]).total_seconds())
            own.append(sum((e - s).total_seconds() for _, s, e in a if s and e))
            # created -> claimed: on the queue (or waiting for a free worker)
            waits.extend((s - c).total_seconds() for c, s, _ in a if s)
            # one action ended -> the next one created: the engine's finish + advance
            gaps.extend((a[i + 1][0] - a[i][2]).total_seconds()
                        for i in range(len(a) - 1) if a[i][2])
        return {"latency": latency, "own": own, "claim_wait": waits, "advance_gap": gaps}

    def sequential(self, runs: int) -> dict:
        """One execution at a time: trigger -> Succeeded on the driver's clock."""
        from executions import services
        from executions.models import PipelineExecution

        walls, pks = [], []
        for i in range(runs):
            started = time.perf_counter()
            ex = services.execution_start(pipeline=self.pipelines[i % PIPELINES])
            while PipelineExecution.objects.filter(pk=ex.pk).values_list(
                    "status", flat=True)[0] not in TERMINAL:
                if time.perf_counter() - started > 60:
                    raise RuntimeError("an execution took more than 60 s")
                time.sleep(0.002)
            walls.append(time.perf_counter() - started)
            pks.append(ex.pk)
            time.sleep(0.05)
        out = self.breakdown(pks)
        out["wall"] = walls
        return out

    def memory(self) -> dict:
        return tree_memory(self.cluster.pid)


def bash_true_floor(n: int = 200) -> float:
    """Median seconds of one `bash -c true` in a new session (the Shell runner's spawn)."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.Popen(["bash", "-c", "true"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def overhead(b: dict, floor: float, wall_key: str = "latency") -> dict:
    lat = b.get("wall") if wall_key == "wall" else b["latency"]
    per_action = [(x - own) / ACTIONS_PER_EXECUTION for x, own in zip(lat, b["own"], strict=True)]
    strict = [(x - 3 * floor) / ACTIONS_PER_EXECUTION for x in lat]
    return {"latency_median": statistics.median(lat), "latency_p95": percentile(lat, 95),
            "own_median": statistics.median(b["own"]),
            "per_action_median": statistics.median(per_action),
            "per_action_p95": percentile(per_action, 95),
            "strict_per_action_median": statistics.median(strict),
            "strict_per_action_p95": percentile(strict, 95),
            "claim_wait_median": statistics.median(b["claim_wait"]),
            "claim_wait_p95": percentile(b["claim_wait"], 95),
            "advance_gap_median": statistics.median(b["advance_gap"]),
            "advance_gap_p95": percentile(b["advance_gap"], 95)}


def child(args) -> dict:
    recreate_database(os.environ["DATABASE_URL"])
    recycle = 10 ** 9 if args.phase == "full" and args.memory_actions else None
    profile_dir = None
    if args.phase == "profile":
        profile_dir = str(Path(os.environ["CONVEYOR_VAR_DIR"]) / "profile")
        shutil.rmtree(profile_dir, ignore_errors=True)
        os.makedirs(profile_dir)
    bench = Bench(args.workers, recycle, profile_dir, args.starters)
    out: dict = {"workers": args.workers, "phase": args.phase, "load_before": load()}
    try:
        bench.batch(2 * PIPELINES)  # warm-up: workers started, imports and caches warm
        if args.phase == "profile":
            from django.db import connection
            from django.test.utils import CaptureQueriesContext

            with CaptureQueriesContext(connection) as q:
                pk = bench.start(1)
            bench.wait(pk)
            out["start_queries"] = len(q.captured_queries)
            time.sleep(1)
            before = probe_counts(profile_dir)
        out["memory_start"] = bench.memory()
        out["batch"] = bench.batch(args.executions)
        out["load_after_batch"] = load()
        done_actions = out["batch"]["actions"]
        if args.phase == "full":
            floor = bash_true_floor()
            out["bash_true_floor_s"] = floor
            seq = bench.sequential(args.overhead_runs)
            out["overhead_1"] = overhead(seq, floor, "wall")
            out["overhead_1_db"] = overhead(seq, floor)
            conc = bench.batch(PIPELINES)
            out["overhead_50"] = overhead(conc, floor)
            out["overhead_50_span_s"] = conc["span_s"]
            done_actions += (args.overhead_runs + PIPELINES) * ACTIONS_PER_EXECUTION
            samples = [(done_actions, bench.memory()["rss_kb"])]
            offset = 0
            while done_actions < args.memory_actions:
                n = min(500, -(-(args.memory_actions - done_actions) // ACTIONS_PER_EXECUTION))
                r = bench.batch(n, offset)
                offset += n
                done_actions += r["actions"]
                samples.append((done_actions, bench.memory()["rss_kb"]))
            out["memory_samples"] = samples
            out["memory_actions"] = done_actions
        if args.phase == "profile":
            time.sleep(2)
            out["profile"] = profile_report(profile_dir, before, out["batch"]["actions"])
        out["memory_end"] = bench.memory()
        out["load_after"] = load()
    finally:
        bench.stop()
    for key in ("latency", "own", "claim_wait", "advance_gap"):
        out["batch"].pop(key, None)
    return out


def probe_counts(profile_dir: str) -> dict:
    """Sum of the probe's counters over the worker processes (cumulative since they started)."""
    out = {"tasks": 0, "queries": 0, "query_seconds": 0.0, "task_seconds": 0.0,
           "statements": {}}
    for f in Path(profile_dir).glob("*.json"):
        d = json.loads(f.read_text())
        for k in ("tasks", "queries", "query_seconds", "task_seconds"):
            out[k] += d[k]
        for k, v in d["statements"].items():
            out["statements"][k] = out["statements"].get(k, 0) + v
    return out


def profile_report(profile_dir: str, before: dict, actions: int) -> dict:
    import io
    import pstats

    after = probe_counts(profile_dir)
    tasks, queries = after["tasks"] - before["tasks"], after["queries"] - before["queries"]
    qsec = after["query_seconds"] - before["query_seconds"]
    tsec = after["task_seconds"] - before["task_seconds"]
    statements = {k: v - before["statements"].get(k, 0) for k, v in after["statements"].items()}
    stats_files = [str(f) for f in Path(profile_dir).glob("*.pstats")]
    text = ""
    if stats_files:
        s = pstats.Stats(stats_files[0], stream=io.StringIO())
        for f in stats_files[1:]:
            s.add(f)
        buf = io.StringIO()
        s.stream = buf
        s.sort_stats("cumulative").print_stats(45)
        s.sort_stats("tottime").print_stats(30)
        text = buf.getvalue()
    return {"tasks": tasks, "actions": actions, "queries": queries,
            "query_seconds": qsec, "task_seconds": tsec,
            "statements": dict(sorted(statements.items(), key=lambda kv: -kv[1])[:40]),
            "pstats": text}


# --- the driver ----------------------------------------------------------------------


def child_env(args, var: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CONVEYOR_VAR_DIR", "BENCH_Q_RECYCLE",
                        "BENCH_PROFILE_DIR", "BENCH_Q_SAVE_LIMIT")}
    env.update({"CONVEYOR_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "bench._bench_settings",
                "PYTHONPATH": str(ROOT), "DATABASE_URL": args.database_url,
                "REDIS_URL": args.redis_url, "DEBUG": "false", "LOG_LEVEL": "WARNING",
                "SECRET_KEY": "bench-throughput-" + os.urandom(16).hex()})
    if args.q_save_limit is not None:
        env["BENCH_Q_SAVE_LIMIT"] = str(args.q_save_limit)
    env["CONVEYOR_SANDBOX"] = args.sandbox
    return env


def run_child(args, phase: str, workers: int) -> dict | None:
    var = Path(f"/tmp/conveyor-bench-tput-{phase}-{workers}")
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    cmd = [sys.executable, __file__, "--child", phase, "--workers", str(workers),
           "--executions", str(args.executions), "--overhead-runs", str(args.overhead_runs),
           "--memory-actions", str(args.memory_actions), "--starters", str(args.starters)]
    out = subprocess.run(cmd, env=child_env(args, var), cwd=ROOT, capture_output=True,
                         text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if out.returncode != 0 or line is None:
        print(f"  workers={workers} {phase}: failed (rc {out.returncode}; files in {var})\n"
              f"{out.stdout[-1500:]}\n{out.stderr[-3000:]}", flush=True)
        return None
    return json.loads(line[len("RESULT "):])


def fmt_batch(b: dict) -> str:
    c = b["cpu_per_execution"]
    total = sum(c.values())
    return (f"{b['executions']} executions ({b['actions']} actions) in {b['span_s']:.1f} s "
            f"-> {b['per_min']:.0f} executions/min ({b['per_min'] * ACTIONS_PER_EXECUTION:.0f} "
            f"actions/min); started in {b['submit_s']:.1f} s "
            f"({b['executions'] / b['submit_s']:.0f}/s); statuses {b['statuses']}; CPU per "
            f"execution: workers {c['cluster'] * 1000:.0f} ms + starting it "
            f"{c['driver'] * 1000:.0f} ms + PostgreSQL {c['postgres'] * 1000:.0f} ms "
            f"= {total * 1000:.0f} ms "
            f"(2 idle cores would allow ≈{2 * 60 / total:.0f}/min); cluster CPU ms per "
            f"execution by process, busiest first: {b['cluster_cpu_ms_per_process']}")


def fmt_overhead(o: dict) -> str:
    ms = 1000
    return (f"latency median {o['latency_median'] * ms:.1f} ms (p95 {o['latency_p95'] * ms:.1f}),"
            f" Σ action time median {o['own_median'] * ms:.1f} ms -> overhead per action "
            f"median {o['per_action_median'] * ms:.1f} ms (p95 {o['per_action_p95'] * ms:.1f}); "
            f"against 3 × bash -c true only: {o['strict_per_action_median'] * ms:.1f} ms "
            f"(p95 {o['strict_per_action_p95'] * ms:.1f}); action created->claimed median "
            f"{o['claim_wait_median'] * ms:.1f} ms (p95 {o['claim_wait_p95'] * ms:.1f}), "
            f"action ended->next created median {o['advance_gap_median'] * ms:.1f} ms "
            f"(p95 {o['advance_gap_p95'] * ms:.1f})")


def fmt_mem(m: dict) -> str:
    return (f"RSS {m['rss_kb'] / 1024:.1f} MiB, PSS {m['pss_kb'] / 1024:.1f} MiB "
            f"over {len(m['pids'])} processes")


def buildbot(args) -> dict | None:
    """Run the Buildbot peer's run.sh; its batch-50 (4 workers) figures, even from a
    run.sh that failed part-way (each batch run leaves its own SUMMARY line)."""
    print(f"\nBuildbot peer: {BUILDBOT} --batch-runs {args.buildbot_runs} "
          f"(load average before: {load()})", flush=True)
    if not BUILDBOT.exists():
        print("  not found")
        return None
    workdir = Path(args.buildbot_workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["bash", str(BUILDBOT), "--batch-runs", str(args.buildbot_runs),
                          str(workdir)], capture_output=True, text=True)
    text = out.stdout + out.stderr
    if "=== SUMMARY" in text:
        print("  " + "\n  ".join(text[text.find("=== SUMMARY"):].strip().splitlines()))
    else:
        print(f"  run.sh exited with status {out.returncode}; last lines:\n  "
              + "\n  ".join(text.strip().splitlines()[-8:]))
    runs = []
    for f in sorted((workdir / "results").glob("batch_4w_r*.txt")):
        m = re.search(r"^SUMMARY (\{.*\})$", f.read_text(), re.M)
        if m:
            runs.append(json.loads(m.group(1)))
    single = None
    f = workdir / "results" / "single_true3.txt"
    if f.exists():
        m = re.search(r"^SUMMARY (\{.*\})$", f.read_text(), re.M)
        single = json.loads(m.group(1)) if m else None
    if not runs:
        print(f"  no batch run completed; files in {workdir}")
        return None
    per_min = [r["throughput_per_min"] for r in runs]
    cpu = [r["cpu_s_master_workers"] / r["n"] for r in runs if "cpu_s_master_workers" in r]
    print(f"  {len(runs)} of {args.buildbot_runs} batch-50 runs completed (run.sh exit status "
          f"{out.returncode}): {', '.join(f'{x:.0f}' for x in per_min)} builds/min; master + "
          f"workers CPU per build {statistics.median(cpu) * 1000:.0f} ms" if cpu else "")
    if single:
        print(f"  one build of 3 x true: latency median {single['latency_median']:.3f} s, "
              f"per-step overhead median {single['per_step_overhead_median'] * 1000:.0f} ms")
    return {"per_min": statistics.median(per_min),
            "cpu": statistics.median(cpu) if cpu else None, "single": single}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Figures go to stdout; each run prints the machine and load average.")
    parser.add_argument("--workers", default="2,3,4,5,6",
                        help="CONVEYOR_WORKERS values to sweep (comma list; default 2,3,4,5,6)")
    parser.add_argument("--executions", type=int, default=500,
                        help="executions per throughput batch (default 500)")
    parser.add_argument("--starters", type=int, default=4,
                        help="threads starting the executions of a batch (default 4)")
    parser.add_argument("--overhead-runs", type=int, default=20,
                        help="sequential runs for the overhead at 1 concurrent (default 20)")
    parser.add_argument("--memory-actions", type=int, default=10000,
                        help="actions run between the two memory readings (0: skip)")
    parser.add_argument("--no-buildbot", dest="buildbot", action="store_false",
                        help="skip the Buildbot peer")
    parser.add_argument("--buildbot-runs", type=int, default=3,
                        help="batch-50 runs of the Buildbot peer (default 3)")
    parser.add_argument("--buildbot-workdir", default="/tmp/conveyor-bench-buildbot",
                        help="run.sh's WORKDIR (its venv is reused between runs)")
    parser.add_argument("--q-save-limit", type=int,
                        help="override django-q2's save_limit in the clusters (an experiment: "
                             "config.settings has 1000; -1 stores no successful task)")
    parser.add_argument("--profile", action="store_true",
                        help="one batch with cProfile + SQL counts inside the workers")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL,
                        help=f"dropped and re-created (must be conveyor_tput*; default "
                             f"{DEFAULT_DATABASE_URL})")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL,
                        help=f"flushed (default {DEFAULT_REDIS_URL})")
    parser.add_argument("--sandbox", choices=("auto", "required", "none"), default="auto",
                        help="CONVEYOR_SANDBOX of the workers (default auto: sandboxed "
                             "where bubblewrap works)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.phase = args.child
        args.workers = int(args.workers)
        print("RESULT " + json.dumps(child(args), default=str))
        return

    counts = [int(x) for x in args.workers.split(",")]
    print("Conveyor throughput: Source (Simulate) + 3 x Shell `true`, PARALLEL, "
          f"{PIPELINES} pipelines, PostgreSQL + Redis")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}")
    print(f"code: {code_state()}", flush=True)
    print(f"sandbox: CONVEYOR_SANDBOX={args.sandbox}", flush=True)
    if args.q_save_limit is not None:
        print(f"EXPERIMENT: django-q2 save_limit {args.q_save_limit} (config.settings: 1000)")

    if args.profile:
        r = run_child(args, "profile", counts[0])
        if r:
            p = r["profile"]
            print(f"workers={r['workers']}: {fmt_batch(r['batch'])}")
            print(f"driver: one execution_start = {r['start_queries']} SQL statements")
            print(f"inside the workers: {p['tasks']} tasks, {p['actions']} actions, "
                  f"{p['queries']} SQL statements = {p['queries'] / max(1, p['actions']):.1f} "
                  f"per action, {p['query_seconds'] / max(1, p['actions']) * 1000:.1f} ms "
                  f"in the database driver per action, "
                  f"{p['task_seconds'] / max(1, p['actions']) * 1000:.1f} ms task time "
                  "per action (profiled: slower than unprofiled)")
            print("statements (all worker processes of the cluster, over the batch):")
            for k, v in p["statements"].items():
                print(f"  {v / max(1, p['actions']):6.2f}/action  {v:7d}  {k}")
            print(p["pstats"])
        print(f"load average after: {load()}")
        return

    results = {}
    best = None
    if len(counts) > 1:
        print(f"\n1. worker sweep, {args.executions} executions each:")
        for n in counts:
            r = run_child(args, "sweep", n)
            if r is None:
                continue
            results[n] = r
            print(f"  CONVEYOR_WORKERS={n}: {fmt_batch(r['batch'])}; load {r['load_after']}",
                  flush=True)
        best = max(results, key=lambda n: results[n]["batch"]["per_min"]) if results else None
        print(f"  best: CONVEYOR_WORKERS={best}")
    else:
        best = counts[0]
    if best is None:
        return
    print(f"\n2. full run, CONVEYOR_WORKERS={best}:", flush=True)
    r = run_child(args, "full", best)
    if r is None:
        return
    ours = r["batch"]["per_min"]
    print(f"  throughput: {fmt_batch(r['batch'])} (target >= 1200/min: "
          f"{'met' if ours >= 1200 else 'NOT met'}); load after {r['load_after_batch']}")
    print(f"  `bash -c true` in a new session: median {r['bash_true_floor_s'] * 1000:.2f} ms")
    print(f"  overhead at 1 concurrent ({args.overhead_runs} runs, driver clock): "
          f"{fmt_overhead(r['overhead_1'])}")
    print(f"  overhead at 1 concurrent (database clock): {fmt_overhead(r['overhead_1_db'])}")
    print(f"  overhead at {PIPELINES} concurrent (database clock, all started at once, "
          f"span {r['overhead_50_span_s']:.2f} s = "
          f"{r['overhead_50_span_s'] / (PIPELINES * ACTIONS_PER_EXECUTION) * 1000:.1f} ms of "
          f"wall per action): {fmt_overhead(r['overhead_50'])}")
    if args.memory_actions:
        print(f"  worker memory (django-q2 recycling off), cluster tree: start "
              f"{fmt_mem(r['memory_start'])}; after {r['memory_actions']} actions "
              f"{fmt_mem(r['memory_end'])}; same pids: "
              f"{r['memory_start']['pids'] == r['memory_end']['pids']}")
        print("  RSS samples (actions done since the start reading, RSS MiB): " + ", ".join(
            f"{a}:{kb / 1024:.0f}" for a, kb in r["memory_samples"]))
    print(f"  load average after: {r['load_after']}", flush=True)

    if args.buildbot:
        bb = buildbot(args)
        if bb:
            ours_cpu = sum(r["batch"]["cpu_per_execution"].values())
            print(f"\nConveyor {ours:.0f} executions/min vs Buildbot {bb['per_min']:.0f} "
                  f"builds/min (median, batch 50 on 4 workers), same run: ratio "
                  f"{ours / bb['per_min']:.1f}x")
            if bb["cpu"]:
                print(f"CPU per run: Conveyor {ours_cpu * 1000:.0f} ms (workers + start + "
                      f"PostgreSQL) vs Buildbot {bb['cpu'] * 1000:.0f} ms (master + workers, "
                      f"without its SQLite, which is in-process): ratio "
                      f"{bb['cpu'] / ours_cpu:.1f}x less for Conveyor")
        else:
            print(f"\nBuildbot gave no figure here; the reference figure in its README is "
                  f"≈240 builds/min -> ratio {ours / 240:.1f}x")
    print(f"load average at the end: {load()}")


if __name__ == "__main__":
    main()
