"""Health endpoints: unauthenticated, honest about the database and the workers, and
revealing nothing (no host, process, pipeline or setting value)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from config import health

ROOT = Path(__file__).resolve().parents[2]


def test_the_web_health_answers_ok_to_anyone_when_the_database_answers(db, settings):
    settings.REDIS_URL = ""
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "not configured",
                               "sandbox": "on"}
    assert "no-cache" in response["Cache-Control"]
    assert Client().get("/healthz/").status_code == 200
    assert Client().head("/healthz").status_code == 200


def test_the_web_health_refuses_writes(db):
    assert Client().post("/healthz").status_code == 405


def _health_in_a_process(tmp_path, **env) -> tuple[int, dict]:
    """GET /healthz in a fresh Django process with the given environment (real
    unreachable services, nothing stood in)."""
    script = ("import django, json; django.setup(); from django.test import Client; "
              "r = Client().get('/healthz'); print(r.status_code, r.content.decode())")
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
            "CONVEYOR_VAR_DIR": str(tmp_path), "LOG_LEVEL": "CRITICAL", **env}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=full,
                         capture_output=True, text=True, timeout=60, check=True)
    code, body = out.stdout.strip().splitlines()[-1].split(" ", 1)
    return int(code), json.loads(body)


def test_the_web_health_answers_503_when_the_database_is_unreachable(tmp_path):
    # Port 9 (discard) on localhost: nothing listens, the connection is refused.
    code, body = _health_in_a_process(
        tmp_path, DATABASE_URL="postgres://conveyor@127.0.0.1:9/conveyor", REDIS_URL="")
    assert (code, body) == (503, {"status": "unavailable", "database": "unreachable",
                                  "redis": "not configured", "sandbox": "on"})


def test_an_unreachable_redis_degrades_the_web_but_keeps_it_in_service(tmp_path):
    code, body = _health_in_a_process(tmp_path, DATABASE_URL="",
                                      REDIS_URL="redis://127.0.0.1:9/0")
    assert (code, body) == (200, {"status": "degraded", "database": "ok",
                                  "redis": "unreachable", "sandbox": "on"})
    # The answer names neither the Redis address nor the database.
    assert "127.0.0.1" not in json.dumps(body) and "sqlite" not in json.dumps(body)


def test_worker_health_is_stale_until_a_sweep_has_completed(db, settings):
    settings.REDIS_URL = ""
    response = Client().get("/healthz/workers")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "stale"
    assert body["lastSweepAt"] is None and body["runningActions"] == 0
    assert body["staleAfterSeconds"] == 300


def test_worker_health_is_ok_after_a_sweep_ran_through_django_q_and_stale_later(db, settings):
    from django_q.models import Task
    from django_q.tasks import async_task

    settings.REDIS_URL = ""
    # The scheduled task's real path: the django-q2 worker runs it and the monitor
    # stores its result (sync=True runs both in this process).
    async_task("executions.tasks.sweep", sync=True)
    response = Client().get("/healthz/workers")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert 0 <= body["lastSweepAgeSeconds"] < 60
    assert set(body) == {"status", "database", "lastSweepAt", "lastSweepAgeSeconds",
                         "staleAfterSeconds", "clustersAlive", "queued", "runningActions",
                         "lastLeaseRenewalAt"}
    # ORM broker with the per-process cache: cluster statistics cannot be seen here.
    assert body["clustersAlive"] is None

    Task.objects.filter(func=health.SWEEP_FUNC).update(
        stopped=timezone.now() - timedelta(minutes=6))
    response = Client().get("/healthz/workers")
    assert response.status_code == 503
    assert response.json()["status"] == "stale"


def test_a_failed_sweep_does_not_count_as_a_live_worker(db, settings):
    from django_q.models import Task

    settings.REDIS_URL = ""
    now = timezone.now()
    Task.objects.create(id="f" * 32, name="sweep", func=health.SWEEP_FUNC, started=now,
                        stopped=now, success=False)
    assert Client().get("/healthz/workers").status_code == 503


@pytest.mark.parametrize("url", ["/healthz", "/healthz/workers"])
def test_health_answers_name_no_host_nor_secret(db, settings, url):
    import socket

    settings.REDIS_URL = ""
    text = Client().get(url).content.decode()
    assert socket.gethostname() not in text
    assert settings.SECRET_KEY not in text
