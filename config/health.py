"""Health endpoints for load balancers and monitors (unauthenticated, nothing sensitive).

``GET /healthz`` — this web process: can it reach the database (503 if not),
and the channel layer's Redis when ``REDIS_URL`` is set (unreachable Redis
answers 200 with ``"status": "degraded"``: pages and the API still work, live
updates wait for it); ``"sandbox"``: whether build commands run sandboxed on
this machine (``"on"``, ``"unavailable"``, ``"off"``; docs/security.md).

``GET /healthz/workers`` — the django-q2 workers, as seen from the database
every process shares. The signal is the newest *completed* sweep: the
sweeper is a django-q2 schedule (every minute), so a recent sweep result
proves that some cluster's scheduler enqueued it and a worker ran it to the
end. Older than ``max(5 min, 3 sweep periods)`` (or none yet) answers 503
``"status": "stale"``. Beside it, for people: the clusters django-q2 reports
alive (only where its statistics are shared: the Redis broker, or a shared
cache; otherwise ``null``), the queue length, and the newest lease renewal of
a running action (renewed every lease/3 seconds by the worker running it).

Nothing here names a host, a process, a pipeline or a setting value.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.http import JsonResponse
from django.urls import re_path
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger("conveyor.health")

SWEEP_FUNC = "executions.tasks.sweep"
SWEEP_SCHEDULE = "conveyor-sweep-actions"
MIN_STALE_SECONDS = 300


def database_ok() -> bool:
    """One round trip to the default database."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any failure means "not reachable" to a load balancer
        logger.warning("health: the database is not reachable", exc_info=True)
        # A broken persistent connection would fail every later request too.
        connection.close_if_unusable_or_obsolete()
        return False


def redis_state() -> str:
    """"ok", "unreachable", or "not configured" (embedded default)."""
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return "not configured"
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return "ok"
    except Exception:
        logger.warning("health: Redis is not reachable", exc_info=True)
        return "unreachable"


@never_cache
@require_safe
def web(request):
    """``/healthz``: 200 when this process can serve requests, 503 when its database is down."""
    database = "ok" if database_ok() else "unreachable"
    redis_ = redis_state()
    if database != "ok":
        status, code = "unavailable", 503
    elif redis_ == "unreachable":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    from runners import sandbox

    # Whether build commands run sandboxed here: "on", "unavailable" (bubblewrap does
    # not work; CONVEYOR_SANDBOX=auto runs them anyway, required refuses), "off" (none).
    return JsonResponse({"status": status, "database": database, "redis": redis_,
                         "sandbox": sandbox.status()}, status=code)


def _sweep_period_seconds() -> float:
    from django_q.models import Schedule

    row = Schedule.objects.filter(name=SWEEP_SCHEDULE).values("schedule_type", "minutes").first()
    if row and row["schedule_type"] == Schedule.MINUTES and row["minutes"]:
        return row["minutes"] * 60.0
    return 60.0


def _clusters_alive() -> int | None:
    """Clusters django-q2 reports alive, or None where its statistics are not shared."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.status import Stat

    cache = settings.CACHES.get("default", {}).get("BACKEND", "").lower()
    if not getattr(settings, "REDIS_URL", "") and ("locmem" in cache or "dummy" in cache):
        return None      # ORM broker with a per-process cache: a worker's stats never reach us
    try:
        stopped = str(Conf.STOPPED)
        return sum(1 for stat in Stat.get_all(get_broker()) if str(stat.status) != stopped)
    except Exception:
        logger.warning("health: django-q2 cluster statistics unavailable", exc_info=True)
        return None


def _queued() -> int | None:
    from django_q.brokers import get_broker

    try:
        return get_broker().queue_size()
    except Exception:
        logger.warning("health: the django-q2 queue is not reachable", exc_info=True)
        return None


@never_cache
@require_safe
def workers(request):
    """``/healthz/workers``: 200 when a sweep completed recently, 503 otherwise."""
    if not database_ok():
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    from django_q.models import Task

    from executions.models import ActionExecution

    now = timezone.now()
    stale_after = max(MIN_STALE_SECONDS, 3 * _sweep_period_seconds())
    last_sweep = (Task.objects.filter(func=SWEEP_FUNC, success=True)
                  .aggregate(at=Max("stopped"))["at"])
    age = (now - last_sweep).total_seconds() if last_sweep else None
    running = ActionExecution.objects.filter(status="InProgress", worker__gt="",
                                             waiting_since__isnull=True)
    newest_lease = running.aggregate(at=Max("lease_expires_at"))["at"]
    lease = timedelta(seconds=float(getattr(settings, "CONVEYOR_LEASE_SECONDS", 30)))
    ok = age is not None and age <= stale_after
    return JsonResponse({
        "status": "ok" if ok else "stale",
        "database": "ok",
        "lastSweepAt": last_sweep.isoformat() if last_sweep else None,
        "lastSweepAgeSeconds": round(age, 1) if age is not None else None,
        "staleAfterSeconds": stale_after,
        "clustersAlive": _clusters_alive(),
        "queued": _queued(),
        "runningActions": running.count(),
        "lastLeaseRenewalAt": (newest_lease - lease).isoformat() if newest_lease else None,
    }, status=200 if ok else 503)


# Included at "healthz" by config/urls.py: /healthz and /healthz/workers (a trailing
# slash is accepted too; probes are configured by hand).
urlpatterns = [
    re_path(r"^healthz/?$", web, name="healthz"),
    re_path(r"^healthz/workers/?$", workers, name="healthz-workers"),
]
