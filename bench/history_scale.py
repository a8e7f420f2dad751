"""Read latency of the history surfaces with a big history in the database.

Seeds 100,000 PipelineExecutions (by default) over a handful of pipelines —
each with its StageExecutions, 10 ActionExecutions on average (1,000,000
rows), its SourceRevision, Artifacts and the ExecutionEvents the engine
writes (one per status change: created InProgress, then the final status) —
then times, through Django's test Client as a signed-in viewer (the whole
request: middleware, authentication, view, serializer or template):

- GetPipelineState: ``GET /api/pipelines/{name}/state/`` and the ``/aws/``
  ``GetPipelineState`` operation (SigV4-signed like boto3 signs it);
- the dashboard's execution history page, first page and page 200;
- the executions list API, first page and ``offset=5000``;
- the dashboard's pipeline page (the console view) and the pipelines list;
- the insights page of a pipeline, the DORA page of every pipeline and that of a
  pipeline group (one query per DORA figure, over the default 12 weeks and over 52);
  a Prometheus scrape of ``/metrics`` (its duration histograms read a rollup, built
  at the first scrape of the warm-up, plus the rows that ended since:
  ``observability.rollups``);
- and, as the floor of this machine and client, ``/healthz`` (no history read).

Each surface: a warm-up, then N requests spread over the pipelines; median,
p95 and max wall time in ms, the median CPU time of this process (client and
web server: what the request costs without the waits a loaded machine adds;
PostgreSQL's own time is outside it), and the SQL queries one request makes (counted in a
separate pass with CaptureQueriesContext, so the counting costs nothing in
the timings). ``DEBUG`` is off as in production.

    .venv/bin/python bench/history_scale.py [--executions 100000] [--requests 200]
                                            [--reuse] [--sqlite] [--explain] [--profile N]
                                            [--only TEXT ...]  (surfaces whose label has TEXT)

PostgreSQL: ``BENCH_DATABASE_URL``, default
postgres://postgres@127.0.0.1:5432/conveyor_history (created if missing,
migrated). ``--sqlite``: a SQLite file under /tmp/conveyor-bench-history/.
``--reuse`` keeps a database already seeded with as many executions.
Rows are written with COPY on PostgreSQL (executemany on SQLite) with
explicit ids, then the sequences are reset, the executions' DORA copies
filled by migration executions/0012's backfill (timed), and the tables
vacuumed and analyzed, as autovacuum would have done on a live database.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.engine_latency import machine  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/conveyor_history"
PIPELINES = 5
PREFIX = "history-"

# Four stages, ten actions: Source (1), Build (3), Test (3), Deploy (3).
STAGES = [
    ("Source", [("Checkout", "Source", "Simulate")]),
    ("Build", [("Compile", "Build", "Shell"), ("Lint", "Test", "Shell"),
               ("Package", "Build", "Shell")]),
    ("Test", [("Unit", "Test", "Shell"), ("Integration", "Test", "Shell"),
              ("Security", "Test", "Shell")]),
    ("Deploy", [("Staging", "Deploy", "Shell"), ("Smoke", "Test", "Shell"),
                ("Production", "Deploy", "Shell")]),
]


def document(name: str) -> dict:
    def action(a_name, category, provider, stage_index):
        doc = {"name": a_name, "actionTypeId": {"category": category, "owner": "Custom",
                                                "provider": provider, "version": "1"},
               "runOrder": 1}
        if provider == "Simulate":
            doc["outputArtifacts"] = [{"name": "SourceOutput"}]
        else:
            doc["commands"] = ["true"]
            doc["inputArtifacts"] = [{"name": "SourceOutput"}]
        if a_name == "Package":
            doc["outputArtifacts"] = [{"name": "BuildOutput"}]
        return doc

    return {"name": name, "executionMode": "SUPERSEDED", "stages": [
        {"name": s, "actions": [action(*a, i) for a in actions]}
        for i, (s, actions) in enumerate(STAGES)]}


# --- environment --------------------------------------------------------------------------


def configure(args) -> str:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DEBUG"] = "false"
    os.environ.pop("REDIS_URL", None)
    # Every scrape reads the database (no reuse of the previous scrape's figures).
    os.environ["CONVEYOR_METRICS_CACHE_SECONDS"] = "0"
    os.environ["CONVEYOR_METRICS_TOKEN"] = "bench-scraper"
    if args.sqlite:
        os.environ.pop("DATABASE_URL", None)
        var = Path("/tmp/conveyor-bench-history")
        var.mkdir(parents=True, exist_ok=True)
        os.environ["CONVEYOR_VAR_DIR"] = str(var)
        return f"SQLite {var / 'conveyor.sqlite3'}"
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("CONVEYOR_VAR_DIR", "/tmp/conveyor-bench-history-pg")
    Path(os.environ["CONVEYOR_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    _create_database(url)
    return f"PostgreSQL {url}"


def _create_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


# --- seeding --------------------------------------------------------------------------------


class Writer:
    """Writes rows (tuples in ``columns`` order) into a table: COPY or executemany."""

    def __init__(self, connection, model, columns: list[str]):
        self.connection = connection
        self.table = model._meta.db_table
        self.columns = columns
        self.rows: list[tuple] = []
        self.count = 0
        self.pg = connection.vendor == "postgresql"

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if len(self.rows) >= 50_000:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        cols = ", ".join(f'"{c}"' for c in self.columns)
        with self.connection.cursor() as cursor:
            if self.pg:
                raw = cursor.cursor
                with raw.copy(f'COPY "{self.table}" ({cols}) FROM STDIN') as copy:
                    for row in self.rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(f'INSERT INTO "{self.table}" ({cols}) VALUES ({marks})',
                                   self.rows)
        self.count += len(self.rows)
        self.rows = []


def seeded_count(prefix: str = PREFIX) -> int:
    from executions.models import PipelineExecution

    return PipelineExecution.objects.filter(pipeline__name__startswith=prefix).count()


def seed(executions: int, pipelines: int, with_events: bool) -> dict:
    """Write the history; answers row counts per table."""
    from django.contrib.auth.models import Group, User
    from django.core.management.color import no_style
    from django.db import connection, transaction

    from executions.choices import ActionExecutionStatus as A
    from executions.choices import PipelineExecutionStatus as E
    from executions.dora_columns import backfill
    from executions.models import (
        ActionExecution,
        Artifact,
        ExecutionEvent,
        PipelineExecution,
        SourceRevision,
        StageExecution,
    )
    from observability.models import HistogramRollup
    from pipelines.models import PipelineVersion
    from pipelines.services import pipeline_save
    from tests.roles import ensure_role_groups

    ensure_role_groups()
    if not User.objects.filter(username="bench-viewer").exists():
        user = User.objects.create_user("bench-viewer", password="pw-bench-viewer")
        user.groups.add(Group.objects.get(name="viewers"))

    pg = connection.vendor == "postgresql"
    names = [f"{PREFIX}{i}" for i in range(pipelines)]
    _clear(connection)
    # The /metrics histogram rollups count endings as they happen; this seed writes
    # endings into the past, so they are rebuilt from the rows at the first scrape.
    HistogramRollup.objects.all().delete()
    objs = [pipeline_save(document=document(n)).pipeline for n in names]
    versions = {p.pk: PipelineVersion.objects.get(pipeline=p, number=1).pk for p in objs}

    def dt(value: datetime):
        return value if pg else connection.ops.adapt_datetimefield_value(value)

    def uid():
        value = uuid.uuid4()
        return value if pg else value.hex

    def nextid(model) -> int:
        from django.db.models import Max
        return (model.objects.aggregate(m=Max("id"))["m"] or 0) + 1

    pe_id, se_id, ae_id, ev_id = (nextid(m) for m in (
        PipelineExecution, StageExecution, ActionExecution, ExecutionEvent))
    art_id, rev_id = nextid(Artifact), nextid(SourceRevision)

    pe_cols = ["id", "execution_id", "pipeline_id", "number", "pipeline_version_id",
               "execution_mode", "execution_type", "rollback_target_id", "rollback_stage_name",
               "trigger_type", "trigger_detail", "triggered_by_id", "client_request_token",
               "status", "status_summary", "variables", "source_revision_overrides",
               "superseded_by_id", "inbound_stage_name", "inbound_since", "inbound_reason",
               "created_at", "started_at", "ended_at", "updated_at", "committed_at",
               "entered_last_stage"]
    se_cols = ["id", "execution_id", "pipeline_id", "stage_name", "stage_index", "attempt",
               "retry_mode", "retry_trigger", "locking", "status", "status_summary",
               "started_at", "ended_at", "updated_at"]
    ae_cols = ["id", "action_execution_id", "execution_id", "stage_execution_id", "pipeline_id",
               "stage_name", "action_name", "category", "owner", "provider", "run_order",
               "namespace", "attempt", "status", "summary", "external_url", "external_id",
               "token", "configuration", "output_variables", "error", "traceback",
               "timeout_minutes", "deadline_at", "worker", "lease_expires_at", "waiting_since",
               "pid", "pgid", "log_path", "created_at", "started_at", "ended_at", "updated_at",
               "run_on"]
    ev_cols = ["id", "pipeline_id", "execution_id", "kind", "stage_name", "action_name",
               "stage_execution_id", "action_execution_id", "previous_status", "status",
               "summary", "data", "created_at"]
    rev_cols = ["id", "execution_id", "action_name", "artifact_name", "revision_id",
                "revision_summary", "revision_url", "revision_change_identifier", "created_at",
                "committed_at"]
    art_cols = ["id", "execution_id", "name", "sha256", "size", "file_count", "storage_name",
                "produced_by_id", "created_at"]
    w_pe = Writer(connection, PipelineExecution, pe_cols)
    w_se = Writer(connection, StageExecution, se_cols)
    w_ae = Writer(connection, ActionExecution, ae_cols)
    w_ev = Writer(connection, ExecutionEvent, ev_cols)
    w_rev = Writer(connection, SourceRevision, rev_cols)
    w_art = Writer(connection, Artifact, art_cols)

    rng = random.Random(8)
    empty, empty_list = json.dumps({}), json.dumps([])
    shell_config = {name: json.dumps({"commands": ["true"]}) for _, acts in STAGES
                    for name, _, _ in acts}
    per_pipeline = executions // pipelines
    start = datetime.now(UTC) - timedelta(days=180)
    step = timedelta(days=180) / per_pipeline
    # A few build outputs are identical (a rebuild of the same commit): shared content.
    contents = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(per_pipeline // 2)]

    def event(p, ex_id, kind, stage, action, se, ae, prev, status, when, summary=""):
        nonlocal ev_id
        if with_events:
            w_ev.add((ev_id, p, ex_id, kind, stage, action, se, ae, prev, status, summary,
                      empty, dt(when)))
            ev_id += 1

    def outcome(k: int, last: bool) -> str:
        """The story of execution k: most succeed, some fail (and are retried), a few are
        superseded at Deploy's gate or stopped, a few fail in Deploy (a change failure
        for DORA: the next success restores service); the newest one is running."""
        if last:
            return "running"
        r = rng.random()
        if r < 0.03:
            return "superseded"          # 7 action executions
        if r < 0.06:
            return "retried-succeeded"   # 13: Test failed, retried with ALL_ACTIONS
        if r < 0.11:
            return "failed"              # 10: Test failed, retried, failed again
        if r < 0.13:
            return "stopped"             # 10: Deploy abandoned
        if r < 0.15:
            return "deploy-failed"       # 10: Smoke failed in Deploy
        return "succeeded"               # 10

    t0 = time.monotonic()
    with transaction.atomic():
        for p in objs:
            version = versions[p.pk]
            for number in range(1, per_pipeline + 1):
                story = outcome(number, number == per_pipeline)
                ex = pe_id
                pe_id += 1
                created = start + step * number + timedelta(seconds=rng.random() * 30)
                t = created
                ex_status = {"running": E.IN_PROGRESS, "superseded": E.SUPERSEDED,
                             "failed": E.FAILED, "deploy-failed": E.FAILED,
                             "stopped": E.STOPPED}.get(story, E.SUCCEEDED)
                event(p.pk, ex, "PipelineExecution", "", "", None, None, "", E.IN_PROGRESS, t)
                # Stage plan: (stage index, attempt, outcome of each action)
                plan = [(0, 1, "S"), (1, 1, "S")]
                if story == "superseded":
                    plan += [(2, 1, "S")]
                elif story in ("failed", "retried-succeeded"):
                    plan += [(2, 1, "F"), (2, 2, "F" if story == "failed" else "S")]
                    if story == "retried-succeeded":
                        plan += [(3, 1, "S")]
                else:
                    plan += [(2, 1, "S")]
                    plan += [(3, 1, {"running": "R", "stopped": "X",
                                     "deploy-failed": "F"}.get(story, "S"))]
                for stage_index, attempt, result in plan:
                    stage_name, actions = STAGES[stage_index]
                    se = se_id
                    se_id += 1
                    s_start = t
                    event(p.pk, ex, "StageExecution", stage_name, "", se, None, "",
                          "InProgress", t)
                    s_status = {"S": "Succeeded", "F": "Failed", "X": "Stopped",
                                "R": "InProgress"}[result]
                    for k, (a_name, category, provider) in enumerate(actions):
                        ae = ae_id
                        ae_id += 1
                        a_start = t + timedelta(milliseconds=50)
                        a_end = a_start + timedelta(seconds=5 + rng.random() * 40)
                        a_status = A.SUCCEEDED
                        summary, error = "", ""
                        if result == "F" and k == 1:
                            a_status, summary = A.FAILED, "Command exited with status 1"
                            error = summary
                        elif result == "X":
                            a_status, summary = A.ABANDONED, "Stopped and abandoned"
                        elif result == "R":
                            a_status = A.IN_PROGRESS
                        running = a_status == A.IN_PROGRESS
                        w_ae.add((
                            ae, uid(), ex, se, p.pk, stage_name, a_name, category, "Custom",
                            provider, 1, "", attempt, a_status, summary, "", "", "",
                            empty if provider == "Simulate" else shell_config[a_name],
                            empty, error, "", None, None,
                            "bench-worker" if running else "",
                            dt(datetime.now(UTC) + timedelta(minutes=5)) if running else None,
                            None, None, None,
                            f"{p.pk}/{ex}/{ae}.log", dt(t), dt(a_start),
                            None if running else dt(a_end), dt(a_end), ""))
                        event(p.pk, ex, "ActionExecution", stage_name, a_name, se, ae, "",
                              "InProgress", t)
                        if not running:
                            event(p.pk, ex, "ActionExecution", stage_name, a_name, se, ae,
                                  "InProgress", a_status, a_end, summary)
                        if a_name == "Checkout":
                            w_rev.add((rev_id, ex, "Checkout", "SourceOutput",
                                       hashlib.sha1(f"{p.pk}-{number}".encode()).hexdigest(),
                                       f"Change {number}", "", "", dt(a_end),
                                       dt(created - timedelta(hours=rng.random() * 48))))
                            rev_id += 1
                        if a_name in ("Checkout", "Package") and a_status == A.SUCCEEDED:
                            sha = (contents[rng.randrange(len(contents))]
                                   if a_name == "Package" and rng.random() < 0.1
                                   else hashlib.sha256(f"{p.pk}-{ae}".encode()).hexdigest())
                            w_art.add((art_id, ex,
                                       "SourceOutput" if a_name == "Checkout" else "BuildOutput",
                                       sha, 40_000, 12, f"sha256/{sha[:2]}/{sha}.zip", ae,
                                       dt(a_end)))
                            art_id += 1
                        t = max(t, a_end)
                    running = result == "R"
                    w_se.add((se, ex, p.pk, stage_name, stage_index, attempt,
                              "ALL_ACTIONS" if attempt > 1 else "",
                              "ManualStageRetry" if attempt > 1 else "", True, s_status,
                              "" if result in "SR" else f"{s_status} in {stage_name}",
                              dt(s_start), None if running else dt(t), dt(t)))
                    if not running:
                        event(p.pk, ex, "StageExecution", stage_name, "", se, None,
                              "InProgress", s_status, t)
                superseded_by = pe_id if story == "superseded" else None
                ended = None if story == "running" else t
                if ended is not None:
                    event(p.pk, ex, "PipelineExecution", "", "", None, None, "InProgress",
                          ex_status, t)
                w_pe.add((ex, uid(), p.pk, number, version, "SUPERSEDED", "STANDARD", None, "",
                          "Webhook" if number % 4 else "StartPipelineExecution",
                          "refs/heads/main", None, "", ex_status,
                          {"failed": "Stage Test failed", "deploy-failed": "Stage Deploy failed",
                           "stopped": "Stopped by bench",
                           "superseded": f"Superseded by #{number + 1}"}.get(story, ""),
                          empty, empty_list, superseded_by, "", None, "",
                          dt(created), dt(created), dt(ended) if ended else None, dt(t),
                          # Filled by the backfill below, as migration 0012 fills them.
                          None, False))
            print(f"  {p.name}: {per_pipeline} executions "
                  f"({time.monotonic() - t0:.0f} s)", flush=True)
        # Parents before children (foreign keys are checked at commit on PostgreSQL,
        # at once on SQLite).
        for w in (w_pe, w_se, w_ae, w_rev, w_art, w_ev):
            w.flush()
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [
                    PipelineExecution, StageExecution, ActionExecution, ExecutionEvent,
                    SourceRevision, Artifact]):
                cursor.execute(sql)
    seconds = time.monotonic() - t0
    # The DORA copies on each execution (executions.dora_columns), computed from the
    # rows just written by the backfill of migration executions/0012.
    backfilled = time.monotonic()
    backfill(PipelineExecution, SourceRevision, StageExecution)
    backfilled = time.monotonic() - backfilled
    _vacuum(connection)
    return {"seconds": seconds, "backfill_seconds": backfilled,
            "vacuum_seconds": time.monotonic() - t0 - seconds - backfilled,
            "PipelineExecution": w_pe.count, "StageExecution": w_se.count,
            "ActionExecution": w_ae.count, "ExecutionEvent": w_ev.count,
            "SourceRevision": w_rev.count, "Artifact": w_art.count}


def _clear(connection) -> None:
    """Remove an earlier seed (this script's pipelines and their history) with a few
    DELETEs: the ORM's cascade would load millions of rows into memory first."""
    from django.db import transaction

    from executions.models import (
        ActionExecution,
        Artifact,
        ExecutionEvent,
        PipelineExecution,
        SourceRevision,
        StageExecution,
    )
    from pipelines.models import Pipeline

    old = list(Pipeline.objects.filter(name__startswith=PREFIX).values_list("pk", flat=True))
    if not old:
        return
    marks = ", ".join(["%s"] * len(old))
    executions = (f'SELECT id FROM "{PipelineExecution._meta.db_table}" '
                  f"WHERE pipeline_id IN ({marks})")
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (Artifact, SourceRevision):
            cursor.execute(f'DELETE FROM "{model._meta.db_table}" '
                           f"WHERE execution_id IN ({executions})", old)
        for model in (ExecutionEvent, ActionExecution, StageExecution, PipelineExecution):
            cursor.execute(f'DELETE FROM "{model._meta.db_table}" '
                           f"WHERE pipeline_id IN ({marks})", old)
        Pipeline.objects.filter(pk__in=old).delete()


def _vacuum(connection) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    else:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


# --- measuring ------------------------------------------------------------------------------


def surfaces(pipelines: list[str], access_key) -> list[tuple[str, object]]:
    """(label, request(i) -> response) for each surface; i picks the pipeline."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    from django.contrib.auth.models import User
    from django.test import Client
    from rest_framework.test import APIClient

    from config.api_auth import token_create

    user = User.objects.get(username="bench-viewer")
    _, token = token_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    page = Client()
    page.force_login(user)
    key_id, secret = access_key

    def pick(i):
        return pipelines[i % len(pipelines)]

    def aws_state(i):
        body = json.dumps({"name": pick(i)}).encode()
        request = AWSRequest(method="POST", url="http://testserver/aws/", data=body, headers={
            "X-Amz-Target": "CodePipeline_20150709.GetPipelineState",
            "Content-Type": "application/x-amz-json-1.1"})
        SigV4Auth(Credentials(key_id, secret), "codepipeline", "us-east-1").add_auth(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-type"}
        headers["Host"] = "testserver"  # the test Client sends SERVER_NAME only
        return ("post", page_unauth, "/aws/", body, headers)

    page_unauth = Client()
    scraper = Client(HTTP_AUTHORIZATION="Bearer bench-scraper")

    return [
        ("floor: /healthz (no history read)", lambda i: ("get", page_unauth, "/healthz")),
        ("GetPipelineState REST  GET /api/pipelines/{name}/state/",
         lambda i: ("get", api, f"/api/pipelines/{pick(i)}/state/")),
        ("GetPipelineState /aws/ (SigV4)", aws_state),
        ("history page 1  /pipelines/{name}/executions/",
         lambda i: ("get", page, f"/pipelines/{pick(i)}/executions/")),
        ("history page 200  ?page=200",
         lambda i: ("get", page, f"/pipelines/{pick(i)}/executions/?page=200")),
        ("executions list API  first page (limit 50)",
         lambda i: ("get", api, f"/api/pipelines/{pick(i)}/executions/")),
        ("executions list API  ?offset=5000",
         lambda i: ("get", api, f"/api/pipelines/{pick(i)}/executions/?offset=5000")),
        ("dashboard pipeline page  /pipelines/{name}/",
         lambda i: ("get", page, f"/pipelines/{pick(i)}/")),
        ("dashboard pipelines list  /",
         lambda i: ("get", page, "/")),
        ("insights page (DORA, 12 weeks)  /pipelines/{name}/insights/",
         lambda i: ("get", page, f"/pipelines/{pick(i)}/insights/")),
        ("DORA of every pipeline (12 weeks)  /insights/",
         lambda i: ("get", page, "/insights/")),
        ("insights page, 52 weeks  /pipelines/{name}/insights/?weeks=52",
         lambda i: ("get", page, f"/pipelines/{pick(i)}/insights/?weeks=52")),
        ("DORA of every pipeline, 52 weeks  /insights/?weeks=52",
         lambda i: ("get", page, "/insights/?weeks=52")),
        ("DORA of a pipeline group (12 weeks)  /insights/?group=default",
         lambda i: ("get", page, "/insights/?group=default")),
        ("DORA of a pipeline group, 52 weeks  /insights/?group=default&weeks=52",
         lambda i: ("get", page, "/insights/?group=default&weeks=52")),
        ("Prometheus scrape  /metrics (every figure of the installation)",
         lambda i: ("get", scraper, "/metrics")),
    ]


def send(spec):
    method, client, url, *rest = spec
    if method == "get":
        return client.get(url)
    body, headers = rest
    return client.post(url, data=body, content_type="application/x-amz-json-1.1",
                       headers=headers)


def measure(label, make, requests: int, warmup: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(warmup):
        response = send(make(i))
        assert response.status_code == 200, (label, response.status_code, response.content[:500])
    times, cpu = [], []
    for i in range(requests):
        spec = make(i)
        c, t = time.process_time(), time.perf_counter()
        response = send(spec)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        assert response.status_code == 200, (label, response.status_code)
    with CaptureQueriesContext(connection) as captured:
        send(make(0))
    times.sort()
    return {"label": label, "median": statistics.median(times),
            "p95": times[max(0, int(len(times) * 0.95) - 1)], "max": times[-1],
            "cpu": statistics.median(cpu),
            "queries": len(captured), "sql": [q["sql"] for q in captured]}


def profile(surface, requests: int, warmup: int) -> None:
    """cProfile one surface's reads (in this process: client and server), top 40 by
    cumulative time. The profiler roughly triples the time; read the shares."""
    import cProfile
    import pstats

    label, make = surface
    for i in range(warmup):
        send(make(i))
    profiler = cProfile.Profile()
    c = time.process_time()
    profiler.enable()
    for i in range(requests):
        send(make(i))
    profiler.disable()
    print(f"{label}: {(time.process_time() - c) * 1000 / requests:.2f} ms CPU a read, "
          "profiled")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def explain(results: list[dict]) -> None:
    """EXPLAIN ANALYZE every query of every surface (PostgreSQL), slowest first."""
    from django.db import connection

    seen = {}
    with connection.cursor() as cursor:
        for r in results:
            for sql in r["sql"]:
                if not sql.lstrip().upper().startswith("SELECT") or sql in seen:
                    continue
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
                took = float(plan.rsplit("Execution Time: ", 1)[1].split()[0])
                seen[sql] = (took, r["label"], plan)
    for sql, (took, label, plan) in sorted(seen.items(), key=lambda kv: -kv[1][0])[:12]:
        print(f"\n--- {took:.2f} ms  [{label}]\n{sql[:600]}\n{plan}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--pipelines", type=int, default=PIPELINES)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the seeded history if it has as many executions")
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--no-events", action="store_true", help="seed no ExecutionEvents")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN ANALYZE the slowest queries (PostgreSQL)")
    parser.add_argument("--profile", type=int, metavar="N",
                        help="only profile surface N (0 = the floor, 1 = REST state, ...) "
                        "with cProfile over --requests reads: where the CPU time goes")
    parser.add_argument("--only", action="append", metavar="TEXT",
                        help="time only the surfaces whose label contains TEXT "
                        "(repeatable; e.g. --only insights --only metrics)")
    args = parser.parse_args()
    database = configure(args)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from awsapi.models import AccessKey
    from awsapi.services import AccessKeyUnusable, access_key_create, access_key_secret
    from executions.models import ActionExecution, ExecutionEvent, PipelineExecution

    call_command("migrate", verbosity=0)
    per = args.executions // args.pipelines
    wanted = per * args.pipelines
    if args.reuse and seeded_count() == wanted:
        print(f"reusing the seeded history ({wanted} executions)")
    else:
        print(f"seeding {wanted} executions over {args.pipelines} pipelines ...", flush=True)
        counts = seed(wanted, args.pipelines, not args.no_events)
        print(f"seeded in {counts.pop('seconds'):.0f} s "
              f"(+ {counts.pop('backfill_seconds'):.0f} s the DORA columns' backfill, "
              f"{counts.pop('vacuum_seconds'):.0f} s vacuum/analyze): "
              + ", ".join(f"{v:,} {k}" for k, v in counts.items()))

    from django.contrib.auth.models import User
    user = User.objects.get(username="bench-viewer")
    key = AccessKey.objects.filter(user=user, is_active=True).first()
    secret = None
    if key is not None:
        try:
            secret = access_key_secret(access_key=key)
        except AccessKeyUnusable:  # sealed under another checkout's SECRET_KEY
            AccessKey.objects.filter(user=user).update(is_active=False)
    if secret is None:
        key, secret = access_key_create(user=user)
    names = [f"{PREFIX}{i}" for i in range(args.pipelines)]
    print(f"\n{database}: {PipelineExecution.objects.count():,} executions, "
          f"{ActionExecution.objects.count():,} action executions, "
          f"{ExecutionEvent.objects.count():,} events")
    print(machine())
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{args.requests} requests per surface after {args.warmup} warm-up, "
          f"round-robin over {len(names)} pipelines, Django test Client, DEBUG off\n")
    if args.profile is not None:
        profile(surfaces(names, (key.access_key_id, secret))[args.profile], args.requests,
                args.warmup)
        return
    results = []
    print(f"{'surface':58} {'median':>8} {'p95':>8} {'max':>8} {'cpu':>8} {'queries':>8}")
    for label, make in surfaces(names, (key.access_key_id, secret)):
        if args.only and not any(text in label for text in args.only):
            continue
        r = measure(label, make, args.requests, args.warmup)
        results.append(r)
        print(f"{label:58} {r['median']:8.2f} {r['p95']:8.2f} {r['max']:8.2f} "
              f"{r['cpu']:8.2f} {r['queries']:8d}", flush=True)
    print(f"\nload average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.explain and connection.vendor == "postgresql":
        explain(results)


if __name__ == "__main__":
    main()
