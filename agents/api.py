"""The agent protocol over HTTP (``/api/agent/``): JSON, a bearer agent key, nothing else.

An agent key reaches only these views, and through them only its own jobs: it is not
an API token (the REST API, the AWS endpoint and the dashboard refuse it), so it can
neither read other pipelines, nor approve, nor call any other operation.

- ``POST poll`` ``{name, labels, version, hostname, wait}``: long poll. The request is
  held until an action for this agent's labels is claimed (200, the job data) or
  ``wait`` seconds pass (204). It wakes on the live doorbell (``dashboard.live``: an
  engine commit in this process at once, in another through channels-redis or the
  event-table tailer) and re-checks the database every few seconds as a safety net.
- ``POST jobs/<id>/heartbeat`` → ``{"continue": bool}``;
- ``POST jobs/<id>/log?offset=N`` (raw bytes) → ``{"offset": size}``;
- ``GET jobs/<id>/inputs/<name>`` (a zip), ``PUT jobs/<id>/outputs/<name>`` (a zip);
- ``POST jobs/<id>/result`` ``{status, summary, outputVariables, externalUrl, error}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time

from asgiref.sync import sync_to_async
from django import db
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from agents import jobs, services
from agents.models import Agent
from agents.services import AgentRefused
from executions import artifacts, engine

logger = logging.getLogger("conveyor.agents")

MAX_WAIT = 30.0
RECHECK_SECONDS = 2.0
MAX_JSON = 1 << 20


def _refused(exc: AgentRefused) -> HttpResponse:
    if exc.status == 416:
        return HttpResponse(exc.detail, status=416, content_type="application/json")
    return JsonResponse({"detail": exc.detail}, status=exc.status)


def _key(request: HttpRequest):
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return services.agent_key_authenticate(key=key.strip())


def _agent(request: HttpRequest) -> Agent:
    """The agent making the request (key checked on every request; name from the header)."""
    key = _key(request)
    if key is None:
        raise AgentRefused("Invalid or revoked agent key.", status=401)
    name = request.headers.get("X-Conveyor-Agent", "")
    agent = Agent.objects.filter(name=name, key=key).first()
    if agent is None:
        raise AgentRefused("Unknown agent for this key: poll first.", status=401)
    return agent


def _json(request: HttpRequest) -> dict:
    if len(request.body) > MAX_JSON:
        raise AgentRefused("body too large", status=413)
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        raise AgentRefused("body: not JSON") from None
    if not isinstance(body, dict):
        raise AgentRefused("body: must be a JSON object")
    return body


def _poll_register(request: HttpRequest, body: dict) -> Agent:
    key = _key(request)
    if key is None:
        raise AgentRefused("Invalid or revoked agent key.", status=401)
    return services.agent_seen(key=key, name=str(body.get("name", "")),
                               labels=body.get("labels", []),
                               version=str(body.get("version", "")),
                               hostname=str(body.get("hostname", "")))


def _claim(agent_pk: int) -> dict | None:
    agent = Agent.objects.select_related("key").get(pk=agent_pk)
    if agent.key.revoked_at is not None:
        raise AgentRefused("Invalid or revoked agent key.", status=401)
    claim = jobs.job_claim_next(agent=agent)
    return None if claim is None else jobs.job_data(claim)


class _Waiter:
    """A hub subscriber (every pipeline) that only sets an event when rung."""

    key = ("all",)

    def __init__(self, last: int):
        self.last = last
        self.event = asyncio.Event()

    async def deliver(self, rows, *, resync=False, text=None) -> None:
        self.event.set()


_watchdog_lock = threading.Lock()
_watchdog_pid = 0


def _watchdog() -> None:
    """Fail agents' actions whose lease lapsed, every quarter lease (jobs.agent_leases_sweep).

    The first check waits a whole lease: a web process that has just (re)started gives
    the agents that could not reach it meanwhile one lease to renew (docs/deploy.md).
    """
    time.sleep(engine.lease_seconds())
    while True:
        time.sleep(max(0.25, engine.lease_seconds() / 4))
        try:
            jobs.agent_leases_sweep()
        except Exception:
            logger.exception("the agents' lease sweep failed")
        finally:
            db.connection.close()


def _ensure_watchdog() -> None:
    """One watchdog thread per web process, started by the first agent that calls."""
    global _watchdog_pid
    with _watchdog_lock:
        if _watchdog_pid != os.getpid():
            _watchdog_pid = os.getpid()
            threading.Thread(target=_watchdog, name="conveyor-agents-watchdog",
                             daemon=True).start()


@csrf_exempt
async def poll(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"detail": "POST only"}, status=405)
    from dashboard import live

    _ensure_watchdog()
    try:
        body = _json(request)
        agent = await sync_to_async(_poll_register)(request, body)
        try:
            wait = min(MAX_WAIT, max(0.0, float(body.get("wait", MAX_WAIT))))
        except (TypeError, ValueError):
            raise AgentRefused("wait: must be a number of seconds") from None
        deadline = time.monotonic() + wait
        if wait <= 0:
            job = await sync_to_async(_claim)(agent.pk)
            return JsonResponse(job) if job is not None else HttpResponse(status=204)
        # Subscribe before the first look, so no action slips in between.
        waiter = _Waiter(await sync_to_async(live.last_sequence)(live.ALL))
        hub = live.hub()
        hub.subscribe(waiter)
        try:
            while True:
                waiter.event.clear()
                job = await sync_to_async(_claim)(agent.pk)
                if job is not None:
                    return JsonResponse(job)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return HttpResponse(status=204)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.event.wait(),
                                           timeout=min(remaining, RECHECK_SECONDS))
        finally:
            hub.unsubscribe(waiter)
    except AgentRefused as exc:
        return _refused(exc)


def _job_view(handler):
    @csrf_exempt
    def view(request: HttpRequest, job_id, **kwargs) -> HttpResponse:
        try:
            agent = _agent(request)
            return handler(request, agent, job_id, **kwargs)
        except AgentRefused as exc:
            return _refused(exc)
    view.__name__ = handler.__name__
    return view


@require_http_methods(["POST"])
@_job_view
def heartbeat(request, agent, job_id):
    services.agent_seen(key=agent.key, name=agent.name)
    alive = jobs.job_heartbeat(agent=agent, action_execution_id=job_id)
    return JsonResponse({"continue": alive})


@require_http_methods(["POST"])
@_job_view
def log(request, agent, job_id):
    try:
        offset = int(request.GET.get("offset", "0"))
    except ValueError:
        raise AgentRefused("offset: must be a byte offset") from None
    size = jobs.job_log_append(agent=agent, action_execution_id=job_id, offset=offset,
                               data=request.body)
    return JsonResponse({"offset": size})


@require_http_methods(["GET"])
@_job_view
def input_artifact(request, agent, job_id, name):
    storage_name = jobs.job_input_path(agent=agent, action_execution_id=job_id, name=name)
    return FileResponse(artifacts.storage().open(storage_name, "rb"),
                        content_type="application/zip")


@require_http_methods(["PUT"])
@_job_view
def output_artifact(request, agent, job_id, name):
    record = jobs.job_output_store(agent=agent, action_execution_id=job_id, name=name,
                                   body=request)
    return JsonResponse(record, status=201)


@require_http_methods(["POST"])
@_job_view
def result(request, agent, job_id):
    body = _json(request)
    status = body.get("status")
    if status not in ("Succeeded", "Failed"):
        raise AgentRefused('status: must be "Succeeded" or "Failed"')
    variables = body.get("outputVariables") or {}
    if not isinstance(variables, dict):
        raise AgentRefused("outputVariables: must be an object of strings")
    if body.get("logTail"):
        # The end of the log, sent with the result (one request less per action).
        try:
            offset = int(body.get("logOffset", 0))
        except (TypeError, ValueError):
            raise AgentRefused("logOffset: must be a byte offset") from None
        try:
            jobs.job_log_append(agent=agent, action_execution_id=job_id, offset=offset,
                                data=str(body["logTail"]).encode())
        except AgentRefused as exc:
            if exc.status != 416:
                raise
            # A batch was lost: the result still counts; the log misses that part.
            logger.warning("agent %s: log of %s has a gap", agent.name, job_id)
    done = jobs.job_finish(agent=agent, action_execution_id=job_id,
                           succeeded=status == "Succeeded", summary=str(body.get("summary", "")),
                           output_variables=variables,
                           external_url=str(body.get("externalUrl", "")),
                           error=str(body.get("error", "")))
    if not done:
        return JsonResponse({"detail": "the action had already ended"}, status=409)
    answer = {"accepted": True}
    if body.get("next"):
        # The action this result let start is often the agent's own next one: hand it
        # over now rather than at the next poll.
        answer["nextJob"] = _claim(agent.pk)
    return JsonResponse(answer)
