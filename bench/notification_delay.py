"""Does a notification to a dead target delay executions? Trigger → Succeeded, with and without.

The pipeline of bench/engine_latency.py (Source + 3 x Shell `true`) runs N
times in a row through a real ``manage.py qcluster`` (embedded topology:
SQLite + ORM broker), in three settings:

- none: no rule (the baseline);
- answering: a usual rule to a local server answering 200 at once (what any
  rule costs, dead target or not);
- refused: a usual rule (execution.succeeded, execution.failed, stage.failed:
  one delivery per execution here) to a port nobody listens on (connection
  refused at once: every delivery fails and is retried later);
- black-hole: the same rule to a local socket that accepts connections and
  never answers, so each delivery holds its worker until the notification
  timeout (CONVEYOR_NOTIFY_TIMEOUT, 5 s);
- hole-every: a rule choosing execution.started, stage.started,
  stage.succeeded and execution.succeeded (10 deliveries per execution) to the
  black hole.

It prints each setting's median and p95 latency, and the deliveries' state at
the end, beside the machine's load average.

    .venv/bin/python bench/notification_delay.py [--runs 20] [--only none,black-hole]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from engine_latency import document, machine, topology_env  # noqa: E402

EVERY = ["execution.started", "stage.started", "stage.succeeded", "execution.succeeded"]
USUAL = ["execution.succeeded", "execution.failed", "stage.failed"]


def child(setting: str, runs: int, target: str, events: list[str]) -> dict:
    import django

    django.setup()
    from _timing import execution_wall, percentile
    from django.core.management import call_command

    from notifications.models import NotificationDelivery, NotificationRule
    from notifications.services import rule_save
    from pipelines.services import pipeline_save

    call_command("migrate", verbosity=0)
    pipeline = pipeline_save(document=document(f"bench-notify-{setting}", "QUEUED")).pipeline
    NotificationRule.objects.all().delete()
    if setting != "none":
        rule_save(rule=NotificationRule(name="bench", events=events, target_kind="webhook",
                                        target_url=target))
    cluster = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "qcluster"],
                               cwd=ROOT, env=os.environ.copy(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def one() -> float:
            return execution_wall(pipeline, timeout=120)[0]

        for _ in range(3):
            one()
        walls = []
        for _ in range(runs):
            walls.append(one())
            time.sleep(0.05)
        time.sleep(1)
        states = {}
        for status in NotificationDelivery.objects.values_list("status", flat=True):
            states[status] = states.get(status, 0) + 1
    finally:
        cluster.send_signal(signal.SIGTERM)
        try:
            cluster.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cluster.kill()
    walls.sort()
    return {"setting": setting, "runs": runs, "median": statistics.median(walls),
            "p95": percentile(walls, 0.95), "max": walls[-1],
            "deliveries": states}


class _Answer(BaseHTTPRequestHandler):
    """A live target: answers 200 at once."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--events", help=argparse.SUPPRESS)
    parser.add_argument("--only", help="comma-separated settings to run (default: all)")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.runs, args.target or "",
                               (args.events or "").split(","))))
        return
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening: connection refused
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(100)  # accepts (the kernel does), never answers
    refused_url = f"http://127.0.0.1:{refused.getsockname()[1]}/"
    hole_url = f"http://127.0.0.1:{hole.getsockname()[1]}/"
    answering = ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    threading.Thread(target=answering.serve_forever, daemon=True).start()
    answering_url = f"http://127.0.0.1:{answering.server_address[1]}/"
    settings = [("none", "", []), ("answering", answering_url, USUAL),
                ("refused", refused_url, USUAL),
                ("black-hole", hole_url, USUAL), ("hole-every", hole_url, EVERY)]
    print("Conveyor: does a dead notification target delay executions? "
          "Source + 3 x Shell `true`, embedded topology, 4 workers")
    print(f"machine: {machine()}")
    only = set(args.only.split(",")) if args.only else None
    for setting, target, events in settings:
        if only is not None and setting not in only:
            continue
        env = topology_env("embedded")
        out = subprocess.run([sys.executable, __file__, "--child", setting, "--runs",
                              str(args.runs), "--target", target,
                              "--events", ",".join(events)],
                             env=env, cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{setting}: failed\n{out.stderr[-3000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['setting']:10s} median {r['median'] * 1000:.1f} ms, p95 "
              f"{r['p95'] * 1000:.1f} ms, max {r['max'] * 1000:.1f} ms over {r['runs']} runs; "
              f"deliveries {r['deliveries']}; load {os.getloadavg()[0]:.2f}")
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
