"""The latency an agent adds to an action: the same pipeline on the workers and on an agent.

Two pipelines of a Source stage (Simulate, on a worker) and three stages of one Shell
``true`` each; in the second, the three Shell actions carry ``configuration.RunOn =
"bench"`` and run on a local agent (``python -m agents.agent``, started with an empty
environment, long-polling the server). The server is what ``manage.py serve`` runs —
daphne and a django-q2 cluster — on PostgreSQL and Redis (the scaled topology, where
the doorbell crosses processes). After warm-up runs, each pipeline's trigger →
Succeeded time is measured over N runs (alternating), and the script prints both
medians and p95s, the added latency per action ((agent − worker) / 3), and the load
average. Then it revokes keys: a key whose PollForJobs is held (5 times: from the
revocation to the refusal's answer), and the agent's own (until its process ends).

    .venv/bin/python bench/agent_latency.py [--runs 20] [--port 8304]

``BENCH_DATABASE_URL`` (default postgres://postgres@127.0.0.1:5432/conveyor_agent_bench)
and ``BENCH_REDIS_URL`` (default redis://127.0.0.1:6379/4) choose the services.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def document(name: str, run_on: str | None) -> dict:
    def shell(action, category, **extra):
        body = {"name": action, "actionTypeId": {"category": category, "owner": "Custom",
                                                 "provider": "Shell", "version": "1"},
                "commands": ["true"], **extra}
        if run_on:
            body["configuration"] = {"RunOn": run_on}
        return body

    return {"name": name, "executionMode": "QUEUED", "stages": [
        {"name": "Source", "actions": [{
            "name": "Checkout", "actionTypeId": {"category": "Source", "owner": "Custom",
                                                 "provider": "Simulate", "version": "1"},
            "configuration": {"OutputContent": "bench\n"},
            "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Build", "actions": [shell("Compile", "Build",
                                            inputArtifacts=[{"name": "Src"}])]},
        {"name": "Test", "actions": [shell("Check", "Test")]},
        {"name": "Deploy", "actions": [shell("Release", "Deploy")]},
    ]}


def child(runs: int, port: int) -> dict:
    import django

    from bench._databases import ensure_database
    from bench._timing import execution_wall, percentile

    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    import redis
    from django.core.management import call_command

    from agents import services as agent_services
    from executions.models import ActionExecution
    from pipelines.services import pipeline_save

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    on_workers = pipeline_save(document=document("bench-agent-off", None)).pipeline
    on_agent = pipeline_save(document=document("bench-agent-on", "bench")).pipeline
    from agents.models import AgentKey

    for old in AgentKey.objects.filter(name="bench", revoked_at__isnull=True):
        agent_services.agent_key_revoke(key=old)    # an earlier run's: frees the name
    bench_key, key = agent_services.agent_key_create(name="bench")
    work = Path(tempfile.mkdtemp(prefix="conveyor-agent-bench-"))
    (work / "agent.key").write_text(key)
    (work / "home").mkdir()
    env = os.environ.copy()
    env["CONVEYOR_WORKERS"] = env.get("CONVEYOR_WORKERS", "2")
    procs = [
        subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                          "config.asgi:application"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True),
        subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "qcluster"], cwd=ROOT,
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True),
    ]
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "agents.agent", "--url", url, "--key-file",
         str(work / "agent.key"), "--labels", "bench", "--work-dir", str(work / "work"),
         "--name", "bench-agent"], cwd=work,
        env={"PATH": os.environ["PATH"], "HOME": str(work / "home"),
             "LOG_LEVEL": os.environ.get("BENCH_AGENT_LOG_LEVEL", "WARNING")},
        stdout=subprocess.DEVNULL, stderr=open(work / "agent.log", "wb"),  # noqa: SIM115
        start_new_session=True))
    try:
        def one(pipeline) -> tuple[float, str]:
            return execution_wall(pipeline)[:2]

        for _ in range(3):
            one(on_workers)
            one(on_agent)
        times: dict[str, list[float]] = {"workers": [], "agent": []}
        statuses = set()
        for _ in range(runs):
            for label, pipeline in (("workers", on_workers), ("agent", on_agent)):
                wall, status = one(pipeline)
                times[label].append(wall)
                statuses.add(status)
                time.sleep(0.05)
        ran_on_agent = ActionExecution.objects.filter(
            pipeline=on_agent, worker="agent:bench-agent").count()
        revocation = [held_poll_refused(url) for _ in range(5)]
        # The agent itself: its key revoked while its poll is held, until its process ends.
        revoked_at = time.perf_counter()
        agent_services.agent_key_revoke(key=bench_key)
        procs[-1].wait(30)
        agent_exit = time.perf_counter() - revoked_at
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    return {"runs": runs, "statuses": sorted(statuses), "ran_on_agent": ran_on_agent,
            **{f"{k}_median": statistics.median(v) for k, v in times.items()},
            **{f"{k}_p95": percentile(v, 0.95) for k, v in times.items()},
            "per_action_median": (statistics.median(times["agent"])
                                  - statistics.median(times["workers"])) / 3,
            "per_action_p95": (percentile(times["agent"], 0.95)
                               - percentile(times["workers"], 0.95)) / 3,
            "revocation_median": statistics.median(revocation),
            "revocation_max": max(revocation), "agent_exit": agent_exit,
            "agent_exit_code": procs[-1].returncode}


def held_poll_refused(url: str) -> float:
    """Seconds from revoking a key to the answer of that key's held PollForJobs (a raw
    HTTP poll from this process, held for 25 s unless the doorbell answers it)."""
    from agents import services as agent_services

    row, key = agent_services.agent_key_create(name="bench-revoked")
    answered: list[float] = []

    def hold() -> None:
        request = urllib.request.Request(
            url + "/aws/", method="POST", data=json.dumps({
                "conveyorAgent": {"name": f"bench-revoked-{row.pk}", "labels": ["none"]},
                "conveyorWaitSeconds": 25}).encode(),
            headers={"Authorization": f"Bearer {key}", "X-Amz-Target":
                     "CodePipeline_20150709.PollForJobs",
                     "Content-Type": "application/x-amz-json-1.1"})
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=40).read()
        answered.append(time.perf_counter())

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(1.0)   # registered and held
    revoked = time.perf_counter()
    agent_services.agent_key_revoke(key=row)
    thread.join()
    return answered[0] - revoked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--port", type=int, default=8304)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.runs, args.port)))
        return
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"DATABASE_URL": os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/conveyor_agent_bench"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4"),
        "CONVEYOR_VAR_DIR": tempfile.mkdtemp(prefix="conveyor-agent-bench-var-"),
        "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"})
    load_before = os.getloadavg()
    print("Agent latency: Source (Simulate) + 3 x Shell `true`, on the workers vs on a "
          "local agent (PostgreSQL + Redis, daphne + qcluster)")
    print(f"load average before: {', '.join(f'{x:.2f}' for x in load_before)} "
          f"({os.cpu_count()} CPUs)")
    out = subprocess.run([sys.executable, __file__, "--child", "--runs", str(args.runs),
                          "--port", str(args.port)], env=env, cwd=ROOT, capture_output=True,
                         text=True)
    if out.returncode != 0:
        print("failed\n" + out.stderr[-3000:])
        sys.exit(1)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    ms = 1000
    print(f"on the workers: median {r['workers_median'] * ms:.1f} ms, "
          f"p95 {r['workers_p95'] * ms:.1f} ms over {r['runs']} runs")
    print(f"on the agent:   median {r['agent_median'] * ms:.1f} ms, "
          f"p95 {r['agent_p95'] * ms:.1f} ms over {r['runs']} runs "
          f"({r['ran_on_agent']} actions ran on the agent), statuses {r['statuses']}")
    print(f"added per action: median {r['per_action_median'] * ms:.1f} ms, "
          f"p95 {r['per_action_p95'] * ms:.1f} ms (target <= 50 ms)")
    print(f"revoked key -> its held poll answered: median {r['revocation_median'] * ms:.1f} ms, "
          f"max {r['revocation_max'] * ms:.1f} ms over 5; the agent's process ended "
          f"{r['agent_exit'] * ms:.0f} ms after its key was revoked (exit status "
          f"{r['agent_exit_code']})")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
