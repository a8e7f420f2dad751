"""Surfaces of observability: ``/metrics``, and the audit trail's REST list, export and page."""

from __future__ import annotations

import hmac
import json
import os

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.views import APIView

from observability.models import AuditAct, AuditSurface
from observability.selectors import (
    AuditFilterInvalid,
    audit_entries,
    audit_json,
    audit_may_read,
    audit_reads_everything,
)

AUDIT_ENTRY = inline_serializer("AuditEntry", {
    "at": serializers.DateTimeField(),
    "actor": serializers.CharField(allow_null=True),
    "action": serializers.ChoiceField(choices=AuditAct.values),
    "surface": serializers.ChoiceField(choices=AuditSurface.values),
    "pipelineName": serializers.CharField(allow_null=True),
    "pipelineExecutionId": serializers.UUIDField(allow_null=True),
    "executionNumber": serializers.IntegerField(allow_null=True),
    "stageName": serializers.CharField(allow_null=True),
    "reason": serializers.CharField(),
    "detail": serializers.DictField(),
})
AUDIT_PAGE = inline_serializer("AuditEntryPage", {
    "count": serializers.IntegerField(),
    "next": serializers.URLField(allow_null=True),
    "previous": serializers.URLField(allow_null=True),
    "results": serializers.ListField(child=AUDIT_ENTRY),
})


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


# --- The audit trail: REST list, JSON-lines export, the pipeline's page ------------------

def _filters(query) -> dict:
    return {key: query.get(key, "").strip() for key in ("pipeline", "actor", "action", "surface")}


class AuditEntryListApi(APIView):
    """``GET /api/audit/?pipeline=&actor=&action=&surface=``: the audit trail, newest first.

    Read-only (no method writes or deletes an entry); for superusers, holders of
    ``observability.view_auditentry`` and pipeline owners, else 403.
    """

    @extend_schema(
        summary="List audit entries",
        parameters=[OpenApiParameter(k, str, description=d) for k, d in (
            ("pipeline", "exact pipeline name"), ("actor", "exact username"),
            ("action", "an act, e.g. execution.stop"),
            ("surface", "rest, aws, dashboard, admin, command or system"))],
        responses={200: AUDIT_PAGE},
    )
    def get(self, request):
        if not audit_may_read(request.user):
            raise PermissionDenied("You may not read the audit trail.")
        try:
            rows = audit_entries(user=request.user, **_filters(request.query_params))
        except AuditFilterInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response([audit_json(e) for e in page])


class AuditEntryExportApi(APIView):
    """``GET /api/audit/export/?…``: every matching entry as JSON lines (one object a
    line, newest first), streamed; the same filters and permission as the list."""

    @extend_schema(summary="Export audit entries as JSON lines",
                   responses={(200, "application/x-ndjson"): OpenApiTypes.STR})
    def get(self, request):
        if not audit_may_read(request.user):
            raise PermissionDenied("You may not read the audit trail.")
        try:
            rows = audit_entries(user=request.user, **_filters(request.query_params))
        except AuditFilterInvalid as exc:
            raise ValidationError({exc.field: [exc.message]}) from None
        return _jsonl(rows, "audit")


def _jsonl(rows, name: str) -> StreamingHttpResponse:
    lines = (json.dumps(audit_json(e), ensure_ascii=False) + "\n"
             for e in rows.iterator(chunk_size=500))
    response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="{name}.jsonl"'
    return response


@login_required
@require_safe
def pipeline_audit(request, name: str):
    """The audit trail of one pipeline, for its owners, filterable by actor and act;
    ``?export=jsonl`` downloads the filtered entries as JSON lines."""
    from pipelines.models import Pipeline
    from teams.access import pipeline_require
    from teams.choices import Act

    # Not visible: 404; visible but not an owner: 403 (auditors may read it all).
    pipeline = Pipeline.objects.filter(name=name).first()
    if not (pipeline is not None and audit_may_read(request.user)
            and audit_reads_everything(request.user)):
        pipeline = pipeline_require(request.user, pipeline, Act.OWN, name=name)
    filters = {**_filters(request.GET), "pipeline": pipeline.name}
    try:
        rows = audit_entries(**filters)
        problem = ""
    except AuditFilterInvalid as exc:
        rows, problem = audit_entries(pipeline=pipeline.name), f"{exc.field}: {exc.message}"
    if request.GET.get("export") == "jsonl" and not problem:
        return _jsonl(rows, f"audit-{pipeline.name}")
    return render(request, "observability/audit.html", {
        "pipeline": pipeline, "entries": rows[:200], "filters": filters, "problem": problem,
        "acts": AuditAct.choices, "surfaces": AuditSurface.choices,
    })
