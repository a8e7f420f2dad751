"""Surfaces of observability: ``/metrics`` (more join it below)."""

from __future__ import annotations

import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


def metrics_token() -> str:
    """The scraper's bearer token (``CONVEYOR_METRICS_TOKEN``); empty: staff sessions only."""
    return getattr(settings, "CONVEYOR_METRICS_TOKEN", None) or os.environ.get(
        "CONVEYOR_METRICS_TOKEN", "")


def metrics_refusal(request) -> tuple[int, str] | None:
    """Why this request may not read the metrics (status, reason), or None.

    A staff member's session may always read them; a scraper presents
    ``Authorization: Bearer <CONVEYOR_METRICS_TOKEN>`` (compared in constant time).
    """
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return None
    token = metrics_token()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and given.strip():
        if hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return 403, "The bearer token is wrong."
    if token:
        return 401, "Send Authorization: Bearer <CONVEYOR_METRICS_TOKEN>, or sign in as staff."
    return 401, "Sign in as a staff member (no CONVEYOR_METRICS_TOKEN is set)."


@never_cache
@require_safe
def metrics(request):
    """``GET /metrics``: the Prometheus text exposition of ``observability.metrics``."""
    from observability.metrics import registry

    refused = metrics_refusal(request)
    if refused:
        response = HttpResponse(refused[1] + "\n", status=refused[0],
                                content_type="text/plain; charset=utf-8")
        if refused[0] == 401:
            response["WWW-Authenticate"] = 'Bearer realm="conveyor-metrics"'
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
