"""The dashboard's pages: server-rendered first, kept live by the page's script.

Every page renders completely on the server (readable without JavaScript);
its script then listens to a websocket (``executions.consumers``) and, when
events arrive, asks the same URL for the affected parts with ``?parts=a,b``
and receives ``{"a": "<html>", ...}`` rendered from the same ``_partials/``
templates as the first paint. Forms are plain POST + redirect with CSRF.

Views hold no rules: buttons call ``executions.services`` (and, through the
review hook, the approvals services); a refusal (``ExecutionError``) becomes a
message on the page. Reading needs ``pipelines.view_pipeline``; each button is
shown and accepted only for users with its operator permission.

Each page costs a fixed number of queries whatever the number of executions
and actions (tests/dashboard/test_queries.py holds them to it).
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from executions import live, schedules, services
from executions.choices import (
    PipelineExecutionStatus,
    RetryMode,
    StageExecutionStatus,
    TriggerType,
    WaitingReason,
)
from executions.consumers import read_log
from executions.models import (
    ActionExecution,
    Artifact,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from executions.templatetags.dashboard import elapsed, first_line, short_revision
from pipelines.models import Pipeline

VIEW = "pipelines.view_pipeline"
START = "executions.start_pipelineexecution"
STOP = "executions.stop_pipelineexecution"
RETRY = "executions.retry_pipelineexecution"
TOGGLE = "executions.toggle_transition"

E = PipelineExecutionStatus
S = StageExecutionStatus
HISTORY_PAGE = 25
LOG_TAIL_BYTES = 256 * 1024
INSIGHTS_EXECUTIONS = 60
INSIGHTS_DAYS = 30

# Review hooks: the approvals app registers one (imports point approvals ->
# executions, never back). A hook takes (request, [ActionExecution]) and
# answers {action_execution.pk: {"url": POST target, "request": label}} for
# the approval actions the user may decide.
review_hooks: list[Callable[[Any, list[ActionExecution]], dict[int, dict]]] = []


def viewer_required(view):
    """Signed in (else the login page) and allowed to view pipelines (else 403)."""

    @login_required
    def wrapped(request, *args, **kwargs):
        if not request.user.has_perm(VIEW):
            raise PermissionDenied("You may not view pipelines.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _require(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied("You may not do this.")


def _render(request, template: str, context: dict, parts: dict[str, Any]):
    """The page, or with ``?parts=a,b:arg`` only those partials as JSON.

    ``parts`` maps a part name to its template, or to (template, function of
    (context, arg) giving the extra context of one instance, None if unknown).
    """
    wanted = [p for p in request.GET.get("parts", "").split(",") if p]
    if wanted:
        answer = {}
        for part in wanted:
            name, _, arg = part.partition(":")
            spec = parts.get(name)
            if spec is None:
                continue
            name, extra = (spec, None) if isinstance(spec, str) else spec
            local = extra(context, arg) if extra else {}
            if local is None:
                continue
            answer[part] = render_to_string(name, {**context, **local}, request=request)
        return JsonResponse({"seq": context.get("seq", 0), "parts": answer})
    return render(request, template, context)


def _now() -> datetime:
    return timezone.now()


def seconds(start: datetime | None, end: datetime | None, now: datetime | None = None) -> float:
    if start is None:
        return 0.0
    return max(0.0, ((end or now or _now()) - start).total_seconds())


def _latest_stage_executions(pipeline_ids, *, select=("execution",)) -> list[StageExecution]:
    """The newest StageExecution of every stage of these pipelines: one query."""
    return services.latest_stage_executions(pipeline_ids, select=select)


def _latest_action_executions(pipeline_id: int) -> list[ActionExecution]:
    """The newest ActionExecution of every action of a pipeline: one query."""
    return services.latest_action_executions(pipeline_id)


def _revisions(execution_ids) -> dict[int, list[SourceRevision]]:
    found: dict[int, list[SourceRevision]] = {}
    for rev in SourceRevision.objects.filter(execution_id__in=list(execution_ids)):
        found.setdefault(rev.execution_id, []).append(rev)
    return found


# --- Pipelines ----------------------------------------------------------------------


@dataclass
class PipelineRow:
    pipeline: Pipeline
    latest: PipelineExecution | None
    squares: list[dict]


@viewer_required
def pipeline_list(request):
    """Every pipeline with its latest execution and a square per stage; filter by name/status."""
    seq = live.last_sequence(live.ALL)
    name = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    latest = PipelineExecution.objects.filter(pipeline=OuterRef("pk")).order_by("-number")
    pipelines = Pipeline.objects.annotate(
        latest_pk=Subquery(latest.values("pk")[:1]),
        latest_status=Subquery(latest.values("status")[:1]),
    ).order_by("name")
    if name:
        pipelines = pipelines.filter(name__icontains=name)
    names = [n for n in request.GET.get("names", "").split(",") if n]
    if names:
        pipelines = pipelines.filter(name__in=names)
    if status == "none":
        pipelines = pipelines.filter(latest_pk__isnull=True)
    elif status in E.values:
        pipelines = pipelines.filter(latest_status=status)
    pipelines = list(pipelines)
    executions = PipelineExecution.objects.in_bulk(
        [p.latest_pk for p in pipelines if p.latest_pk])
    stage_status: dict[tuple[int, str], StageExecution] = {
        (se.pipeline_id, se.stage_name): se
        for se in _latest_stage_executions([p.pk for p in pipelines])
    }
    rows = []
    for p in pipelines:
        squares = []
        for stage in p.document.get("stages", []):
            se = stage_status.get((p.pk, stage["name"]))
            squares.append({"name": stage["name"], "status": se.status if se else "",
                            "number": se.execution.number if se else None})
        rows.append(PipelineRow(p, executions.get(p.latest_pk), squares))
    context = {"rows": rows, "q": name, "status": status, "seq": seq,
               "statuses": E.choices, "now": _now()}
    return _render(request, "executions/pipelines.html", context,
                   {"table": "executions/_partials/pipelines_table.html"})


# --- Pipeline ------------------------------------------------------------------------


@dataclass
class ActionCard:
    doc: dict
    ae: ActionExecution | None
    review: dict | None = None

    @property
    def name(self) -> str:
        return self.doc["name"]

    @property
    def provider(self) -> str:
        return self.doc["actionTypeId"]["provider"]

    @property
    def category(self) -> str:
        return self.doc["actionTypeId"]["category"]


@dataclass
class Inbound:
    execution: PipelineExecution
    why: str


@dataclass
class StageBox:
    name: str
    index: int
    stage: Any  # pipelines.models.Stage or None (a stage gone from the definition)
    latest: StageExecution | None
    cards: list[ActionCard]
    inbound: list[Inbound] = field(default_factory=list)
    retryable: bool = False

    @property
    def transition_enabled(self) -> bool:
        return self.stage is None or self.stage.transition_enabled


def _why(ex: PipelineExecution, box: StageBox, position: int) -> str:
    """Why an inbound execution waits, in words (rule 2)."""
    if ex.inbound_reason == WaitingReason.TRANSITION_DISABLED and box.stage is not None:
        who = box.stage.transition_changed_by or "someone"
        reason = box.stage.transition_disabled_reason
        why = f"transition disabled by {who}" + (f": {reason}" if reason else "")
        if position > 1 and ex.execution_mode == "QUEUED":
            why += f"; queued at position {position}"
        return why
    if ex.inbound_reason == WaitingReason.QUEUED_BEHIND:
        return f"queued at position {position}"
    holder = box.latest
    if holder is not None and holder.status in S.ACTIVE and holder.locking:
        return f"stage locked by #{holder.execution.number}"
    return "stage locked"


def _pipeline_context(request, pipeline: Pipeline) -> dict:
    seq = live.last_sequence(live.pipeline_key(pipeline.pk))
    stages = {s.name: s for s in pipeline.stages.all()}
    latest_se = {se.stage_name: se for se in _latest_stage_executions([pipeline.pk])}
    latest_ae = {(ae.stage_name, ae.action_name): ae
                 for ae in _latest_action_executions(pipeline.pk)}
    inbound = list(PipelineExecution.objects.filter(pipeline=pipeline)
                   .exclude(inbound_stage_name="").order_by("number"))
    active = list(PipelineExecution.objects.filter(pipeline=pipeline, status__in=E.ACTIVE)
                  .order_by("-number")[:10])
    latest = (PipelineExecution.objects.filter(pipeline=pipeline).order_by("-number")
              .select_related("triggered_by").first())
    boxes = []
    for index, doc in enumerate(pipeline.document.get("stages", [])):
        cards = [ActionCard(a, latest_ae.get((doc["name"], a["name"])))
                 for a in doc["actions"]]
        se = latest_se.get(doc["name"])
        box = StageBox(doc["name"], index, stages.get(doc["name"]), se, cards)
        # Offered only where the engine would accept it (rule 8); it has the last word.
        box.retryable = (se is not None and se.status in (S.FAILED, S.STOPPED)
                         and se.execution.status in (E.FAILED, E.STOPPED))
        waiting = [ex for ex in inbound if ex.inbound_stage_name == doc["name"]]
        box.inbound = [Inbound(ex, _why(ex, box, k)) for k, ex in enumerate(waiting, 1)]
        boxes.append(box)
    cards = [c for b in boxes for c in b.cards if c.ae is not None]
    for hook in review_hooks:
        found = hook(request, [c.ae for c in cards])
        for card in cards:
            if card.ae.pk in found:
                card.review = found[card.ae.pk]
    shown = {ex.pk for ex in active} | ({latest.pk} if latest else set())
    revisions = _revisions(shown)
    user = request.user
    return {
        "pipeline": pipeline, "boxes": boxes, "active": active, "latest": latest,
        "revisions": revisions.get(latest.pk, []) if latest else [],
        "seq": seq, "now": _now(),
        "variables": pipeline.document.get("variables", []),
        "source_actions": (pipeline.document.get("stages") or [{"actions": []}])[0]["actions"],
        "can_start": user.has_perm(START), "can_stop": user.has_perm(STOP),
        "can_retry": user.has_perm(RETRY), "can_toggle": user.has_perm(TOGGLE),
        "retry_modes": RetryMode.choices,
        "schedules": schedules.next_runs(pipeline),
    }


@viewer_required
def pipeline_detail(request, name: str):
    """The CodePipeline-console view of one pipeline."""
    pipeline = get_object_or_404(Pipeline, name=name)
    context = _pipeline_context(request, pipeline)
    return _render(request, "executions/pipeline.html", context, {
        "header": "executions/_partials/pipeline_header.html",
        "stage": ("executions/_partials/stage.html", _stage_part),
    })


def _stage_part(context: dict, name: str) -> dict | None:
    box = next((b for b in context["boxes"] if b.name == name), None)
    return {"box": box} if box else None


def safe_next(request, fallback: str) -> str:
    """The form's ``next`` if it is a path on this site, else ``fallback``.

    Django's own check: it also refuses ``/\\evil.example`` that browsers read as
    ``//evil.example``.
    """
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return fallback


def _back(request, fallback: str):
    return redirect(safe_next(request, fallback))


def _refused(request, exc: services.ExecutionError) -> None:
    messages.error(request, str(getattr(exc, "detail", "") or exc))


@viewer_required
@require_POST
def pipeline_release(request, name: str):
    """Release change: start an execution, with variables and source revision overrides."""
    _require(request, START)
    pipeline = get_object_or_404(Pipeline, name=name)
    variables = {}
    for var in pipeline.document.get("variables", []):
        key = f"var-{var['name']}"
        if key in request.POST and request.POST[key] != "":
            variables[var["name"]] = request.POST[key]
    overrides = []
    for action in (pipeline.document.get("stages") or [{"actions": []}])[0]["actions"]:
        value = request.POST.get(f"rev-{action['name']}", "").strip()
        if value:
            overrides.append({"actionName": action["name"], "revisionType": "COMMIT_ID",
                              "revisionValue": value})
    try:
        ex = services.execution_start(pipeline=pipeline, user=request.user,
                                      variables=variables, source_revisions=overrides or None)
    except services.ExecutionError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Started execution #{ex.number}.")
    return _back(request, reverse("dashboard:pipeline", args=[name]))


@viewer_required
@require_POST
def transition_toggle(request, name: str, stage: str):
    """Disable (with a reason) or enable the transition into a stage."""
    _require(request, TOGGLE)
    pipeline = get_object_or_404(Pipeline, name=name)
    enabled = request.POST.get("enabled") == "true"
    try:
        services.transition_set(pipeline=pipeline, stage_name=stage, enabled=enabled,
                                reason=request.POST.get("reason", "").strip(), user=request.user)
    except services.ExecutionError as exc:
        _refused(request, exc)
    return _back(request, reverse("dashboard:pipeline", args=[name]))


def _execution(name: str, number: int, *select) -> PipelineExecution:
    return get_object_or_404(
        PipelineExecution.objects.select_related("pipeline", *select),
        pipeline__name=name, number=number)


@viewer_required
@require_POST
def execution_stop(request, name: str, number: int):
    """Stop and wait, or stop and abandon."""
    _require(request, STOP)
    ex = _execution(name, number)
    abandon = request.POST.get("mode") == "abandon"
    try:
        services.execution_stop(execution=ex, abandon=abandon,
                                reason=request.POST.get("reason", "").strip(), user=request.user)
    except services.ExecutionError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Execution #{number}: "
                         + ("stopped, running actions abandoned." if abandon
                            else "stopping; running actions finish first."))
    return _back(request, reverse("dashboard:pipeline", args=[name]))


@viewer_required
@require_POST
def stage_retry(request, name: str, number: int, stage: str):
    """Retry the failed actions of a stage, or all of them."""
    _require(request, RETRY)
    ex = _execution(name, number)
    try:
        services.stage_retry(execution=ex, stage_name=stage,
                             mode=request.POST.get("mode", RetryMode.FAILED_ACTIONS),
                             user=request.user)
    except services.ExecutionError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f'Retrying stage "{stage}" of execution #{number}.')
    return _back(request, reverse("dashboard:pipeline", args=[name]))


# --- Execution history -----------------------------------------------------------------


_TRIGGER_LABELS = {value: str(label) for value, label in TriggerType.choices}
_HISTORY_FIELDS = ("pk", "number", "execution_type", "status", "superseded_by__number",
                   "inbound_stage_name", "trigger_type", "trigger_detail", "triggered_by_id",
                   "triggered_by__username", "started_at", "ended_at")


def _history_rows(pipeline_name: str, ids, now: datetime) -> list[dict]:
    """The history page's rows of these executions, newest first, ready to print.

    ``ids``: the page's slice of a ``values_list("pk", flat=True)`` QuerySet, read
    as a subquery of the rows' query (the page is still chosen on the ids alone).
    Two queries (the rows' columns, their source revisions). Everything the
    template would work out per row (links, labels, shortened revisions, dates,
    durations) is worked out here once: filters, ``{% url %}`` and includes
    run for each of 25 rows were most of the page's CPU time.
    """
    url = _execution_url(pipeline_name)
    executions = list(PipelineExecution.objects.filter(pk__in=ids).order_by("-number")
                      .values_list(*_HISTORY_FIELDS))
    revisions: dict[int, list[dict]] = {}
    if executions:
        for execution_pk, revision_url, revision_id, summary in (
                SourceRevision.objects.filter(execution_id__in=[ex[0] for ex in executions])
                .order_by("id")
                .values_list("execution_id", "revision_url", "revision_id", "revision_summary")):
            revisions.setdefault(execution_pk, []).append({
                "url": revision_url, "id": revision_id, "short": short_revision(revision_id),
                "summary": _truncate(first_line(summary), 72)})
    rows = []
    for (pk, number, execution_type, status, superseded, inbound_stage, trigger_type,
         trigger_detail, triggered_by, username, started_at, ended_at) in executions:
        started = timezone.localtime(started_at) if started_at else None
        rows.append({
            "number": number,
            "url": url(number),
            "rollback": execution_type == "ROLLBACK",
            "status": status,
            "superseded": superseded,
            "superseded_url": url(superseded) if superseded is not None else "",
            "inbound_stage_name": inbound_stage,
            "trigger": "Released" if triggered_by and trigger_type == "StartPipelineExecution"
            else _TRIGGER_LABELS.get(trigger_type, trigger_type),
            "by": username if triggered_by else _truncate(trigger_detail, 60),
            "revisions": revisions.get(pk, []),
            "started_iso": started.isoformat() if started else "",
            "started": f"{started.year:04d}-{started.month:02d}-{started.day:02d} "
                       f"{started.hour:02d}:{started.minute:02d}:{started.second:02d}"
            if started else "",
            "elapsed": elapsed(started_at, ended_at, now),
        })
    return rows


def _execution_url(pipeline_name: str) -> Callable[[int], str]:
    """``reverse("dashboard:execution", args=[pipeline_name, number])``, reversed once."""
    marker = 918273645
    head, tail = reverse("dashboard:execution", args=[pipeline_name, marker]).rsplit(
        str(marker), 1)
    return lambda number: f"{head}{number}{tail}"


def _truncate(value: str, length: int) -> str:
    """The ``truncatechars`` filter, without its machinery for the short strings it keeps."""
    if len(value) <= length:
        return unicodedata.normalize("NFC", value)
    return Truncator(value).chars(length)


@viewer_required
def execution_history(request, name: str):
    """The executions of a pipeline, newest first, paginated, filterable by status."""
    pipeline = get_object_or_404(Pipeline, name=name)
    seq = live.last_sequence(live.pipeline_key(pipeline.pk))
    status = request.GET.get("status", "")
    qs = PipelineExecution.objects.filter(pipeline=pipeline).order_by("-number")
    if status in E.values:
        qs = qs.filter(status=status)
    # The page is chosen on the ids alone, then its 25 rows are read with their
    # joins: joined before the OFFSET, a deep page would join every row it skips.
    page = Paginator(qs.values_list("pk", flat=True), HISTORY_PAGE).get_page(
        request.GET.get("page"))
    rows = _history_rows(pipeline.name, page.object_list, _now())
    context = {"pipeline": pipeline, "page": page, "rows": rows, "status": status,
               "statuses": E.choices, "seq": seq, "now": _now()}
    return _render(request, "executions/history.html", context,
                   {"table": "executions/_partials/history_table.html"})


# --- Execution -----------------------------------------------------------------------


@dataclass
class Bar:
    ae: ActionExecution
    left: float
    width: float
    seconds: float
    review: dict | None = None


@dataclass
class StageRow:
    se: StageExecution
    bars: list[Bar]
    left: float
    width: float


def _gantt(ex: PipelineExecution, stage_executions, action_executions, now) -> tuple[list, float]:
    """Stages and actions as bars on one time axis (percent of the execution's span)."""
    t0 = ex.started_at or ex.created_at
    ends = [x.ended_at or now for x in [*stage_executions, *action_executions]]
    t1 = ex.ended_at or (max(ends) if ends and ex.status not in E.ACTIVE else now)
    span = max((t1 - t0).total_seconds(), 0.001)

    def place(start, end) -> tuple[float, float]:
        start = start or t0
        left = max(0.0, (start - t0).total_seconds()) / span * 100
        width = max(0.6, (((end or now) - start).total_seconds()) / span * 100)
        return round(min(left, 99.4), 2), round(min(width, 100 - min(left, 99.4)), 2)

    by_stage: dict[int, list[Bar]] = {}
    for ae in action_executions:
        left, width = place(ae.started_at or ae.created_at, ae.ended_at)
        by_stage.setdefault(ae.stage_execution_id, []).append(
            Bar(ae, left, width, seconds(ae.started_at or ae.created_at, ae.ended_at, now)))
    rows = []
    for se in stage_executions:
        left, width = place(se.started_at, se.ended_at)
        rows.append(StageRow(se, by_stage.get(se.pk, []), left, width))
    return rows, span


def _document_diff(old: dict, new: dict, old_label: str, new_label: str) -> list[tuple[str, str]]:
    """A unified diff of two definition documents as (css class, line) pairs."""
    a = json.dumps(old, indent=2, sort_keys=True).splitlines()
    b = json.dumps(new, indent=2, sort_keys=True).splitlines()
    lines = []
    for line in difflib.unified_diff(a, b, old_label, new_label, lineterm="", n=3):
        kind = ("head" if line.startswith(("---", "+++", "@@"))
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "")
        lines.append((kind, line))
    return lines


@viewer_required
def execution_detail(request, name: str, number: int):
    """One execution: timeline of its actions, variables, artifacts, the version it ran."""
    ex = _execution(name, number, "pipeline_version", "superseded_by", "triggered_by",
                    "rollback_target")
    seq = live.last_sequence(live.execution_key(ex.pk))
    now = _now()
    stage_executions = list(StageExecution.objects.filter(execution=ex)
                            .order_by("stage_index", "attempt"))
    action_executions = list(ActionExecution.objects.filter(execution=ex)
                             .order_by("stage_execution_id", "run_order", "id"))
    rows, span = _gantt(ex, stage_executions, action_executions, now)
    for hook in review_hooks:
        found = hook(request, action_executions)
        for row in rows:
            for bar in row.bars:
                bar.review = found.get(bar.ae.pk)
    artifacts = list(Artifact.objects.filter(execution=ex).select_related("produced_by")
                     .order_by("name", "id"))
    revisions = list(SourceRevision.objects.filter(execution=ex))
    pipeline = ex.pipeline
    version = ex.pipeline_version
    diff = []
    if version.number != pipeline.version:
        diff = _document_diff(version.document, pipeline.document,
                              f"version {version.number} (this execution)",
                              f"version {pipeline.version} (current)")
    entered = {se.stage_name for se in stage_executions}
    planned = [s["name"] for s in version.document.get("stages", [])
               if s["name"] not in entered]
    user = request.user
    context = {
        "pipeline": pipeline, "ex": ex, "rows": rows, "span": span, "seq": seq, "now": now,
        "artifacts": artifacts, "revisions": revisions, "version": version, "diff": diff,
        "not_entered": planned, "document": json.dumps(version.document, indent=2),
        "can_stop": user.has_perm(STOP), "can_retry": user.has_perm(RETRY),
        "retry_modes": RetryMode.choices,
        "retryable": {se.stage_name for se in stage_executions
                      if se.status in (S.FAILED, S.STOPPED)}
        if ex.status in (E.FAILED, E.STOPPED) else set(),
    }
    return _render(request, "executions/execution.html", context, {
        "header": "executions/_partials/execution_header.html",
        "timeline": "executions/_partials/execution_timeline.html",
        "artifacts": "executions/_partials/execution_artifacts.html",
    })


# --- Action ------------------------------------------------------------------------------

TEST_COUNT = re.compile(r"(\d+)\s+(passed|failed|skipped|errors?)", re.IGNORECASE)


def test_report(summary: str) -> dict | None:
    """Counts from a test action's summary ("12 passed, 1 failed, 2 skipped ...")."""
    counts = {}
    for number, word in TEST_COUNT.findall(summary or ""):
        key = word.lower().rstrip("s") if word.lower().startswith("error") else word.lower()
        counts[key] = counts.get(key, 0) + int(number)
    if not counts:
        return None
    counts["total"] = sum(counts.values())
    return counts


def _action(name: str, number: int, stage: str, action: str, attempt: str | None):
    ex = _execution(name, number)
    attempts = list(ActionExecution.objects.filter(execution=ex, stage_name=stage,
                                                   action_name=action).order_by("attempt"))
    if not attempts:
        raise Http404("No such action in this execution.")
    chosen = attempts[-1]
    if attempt:
        chosen = next((a for a in attempts if str(a.attempt) == attempt), None)
        if chosen is None:
            raise Http404("No such attempt.")
    return ex, attempts, chosen


@viewer_required
def action_detail(request, name: str, number: int, stage: str, action: str):
    """One action execution: its log (live while it runs), test report, output variables."""
    ex, attempts, ae = _action(name, number, stage, action, request.GET.get("attempt"))
    seq = live.last_sequence(live.execution_key(ex.pk))
    size = 0
    text, offset, truncated = "", 0, False
    if ae.log_path:
        from pathlib import Path

        from django.conf import settings

        path = Path(settings.LOG_ROOT) / ae.log_path
        size = path.stat().st_size if path.exists() else 0
        start = max(0, size - LOG_TAIL_BYTES)
        truncated = start > 0
        text, offset, _ = read_log(ae.log_path, start, final=True, limit=LOG_TAIL_BYTES)
        if truncated:  # begin at a whole line
            cut = text.find("\n")
            text = text[cut + 1:] if cut >= 0 else text
    reviews: dict = {}
    for hook in review_hooks:
        reviews.update(hook(request, [ae]))
    context = {
        "pipeline": ex.pipeline, "ex": ex, "ae": ae, "attempts": attempts, "seq": seq,
        "now": _now(), "log": text, "log_offset": offset, "log_truncated": truncated,
        "report": test_report(ae.summary) if ae.category == "Test" else None,
        "configuration": json.dumps(ae.configuration, indent=2) if ae.configuration else "",
        "review": reviews.get(ae.pk),
    }
    return _render(request, "executions/action.html", context, {
        "header": "executions/_partials/action_header.html",
    })


@viewer_required
def action_log(request, name: str, number: int, stage: str, action: str):
    """The whole log as plain text (for reading without JavaScript, or saving)."""
    _, _, ae = _action(name, number, stage, action, request.GET.get("attempt"))
    from pathlib import Path

    from django.conf import settings

    path = Path(settings.LOG_ROOT) / ae.log_path if ae.log_path else None
    if path is None or not path.exists():
        return HttpResponse("", content_type="text/plain; charset=utf-8")
    return FileResponse(open(path, "rb"), content_type="text/plain; charset=utf-8")  # noqa: SIM115


# --- Insights ------------------------------------------------------------------------------


@dataclass
class Chart:
    """A small server-rendered SVG line/bar chart."""

    title: str
    unit: str
    width: int = 720
    height: int = 180
    series: list[dict] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    y_max: float = 1.0
    ticks: list[dict] = field(default_factory=list)
    bars: list[dict] = field(default_factory=list)


PALETTE = ["#0073bb", "#ec7211", "#1d8102", "#8d6605", "#6b40c4", "#d13212", "#00838f"]
PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 48, 22, 10, 10


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200):
        if value <= step * 4:
            return step * 4
    return value


def _line_chart(title: str, unit: str, labels: list[str], series: dict[str, list]) -> Chart:
    chart = Chart(title, unit, labels=labels)
    values = [v for vs in series.values() for v in vs if v is not None]
    chart.y_max = _nice_max(max(values, default=0))
    inner_w = chart.width - PAD_LEFT - PAD_RIGHT
    inner_h = chart.height - PAD_TOP - PAD_BOTTOM
    n = max(len(labels) - 1, 1)
    for i in range(5):
        value = chart.y_max * i / 4
        chart.ticks.append({"y": round(PAD_TOP + inner_h - inner_h * i / 4, 1),
                            "label": _short(value) if unit == "s" else f"{value:g}"})
    for k, (name, vs) in enumerate(series.items()):
        points = []
        for i, v in enumerate(vs):
            if v is None:
                continue
            x = PAD_LEFT + inner_w * i / n
            y = PAD_TOP + inner_h - inner_h * min(v, chart.y_max) / chart.y_max
            points.append({"x": round(x, 1), "y": round(y, 1), "v": v, "label": labels[i]})
        chart.series.append({"name": name, "color": PALETTE[k % len(PALETTE)],
                             "points": points,
                             "path": " ".join(f"{p['x']},{p['y']}" for p in points)})
    return chart


def _short(value: float) -> str:
    value = float(value)
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


@viewer_required
def pipeline_insights(request, name: str):
    """Duration trends of executions and stages, and the success rate per day, as SVG."""
    pipeline = get_object_or_404(Pipeline, name=name)
    now = _now()
    recent = list(PipelineExecution.objects.filter(pipeline=pipeline, status__in=E.TERMINAL)
                  .exclude(started_at=None).order_by("-number")
                  .values("pk", "number", "status", "started_at", "ended_at")
                  [:INSIGHTS_EXECUTIONS])[::-1]
    labels = [f"#{r['number']}" for r in recent]
    durations = [round(seconds(r["started_at"], r["ended_at"]), 2) for r in recent]
    execution_chart = _line_chart("Execution duration", "s", labels, {"Execution": durations})
    index = {r["pk"]: i for i, r in enumerate(recent)}
    stage_names = [s["name"] for s in pipeline.document.get("stages", [])]
    per_stage: dict[str, list] = {s: [None] * len(recent) for s in stage_names}
    for row in (StageExecution.objects.filter(execution_id__in=list(index))
                .exclude(started_at=None).exclude(ended_at=None).order_by("attempt")
                .values("execution_id", "stage_name", "started_at", "ended_at")):
        if row["stage_name"] in per_stage:
            per_stage[row["stage_name"]][index[row["execution_id"]]] = round(
                seconds(row["started_at"], row["ended_at"]), 2)
    stage_chart = _line_chart("Stage duration", "s", labels, per_stage)
    since = now - timedelta(days=INSIGHTS_DAYS - 1)
    days = {}
    for row in (PipelineExecution.objects.filter(
            pipeline=pipeline, status__in=E.TERMINAL,
            started_at__date__gte=since.date()).order_by()
            .annotate(day=TruncDate("started_at")).values("day")
            .annotate(total=Count("id"), ok=Count("id", filter=Q(status=E.SUCCEEDED)))):
        days[row["day"]] = row
    rate = Chart("Success rate per day", "%", height=160)
    inner_w = rate.width - PAD_LEFT - PAD_RIGHT
    inner_h = rate.height - PAD_TOP - PAD_BOTTOM
    slot = inner_w / INSIGHTS_DAYS
    for i in range(INSIGHTS_DAYS):
        day = (since + timedelta(days=i)).date()
        row = days.get(day)
        label = day.strftime("%b %d")
        if row and row["total"]:
            pct = 100.0 * row["ok"] / row["total"]
            h = inner_h * pct / 100
            rate.bars.append({"x": round(PAD_LEFT + i * slot + 1, 1), "w": round(slot - 2, 1),
                              "y": round(PAD_TOP + inner_h - h, 1), "h": round(h, 1),
                              "label": label, "pct": round(pct), "ok": row["ok"],
                              "total": row["total"]})
        rate.labels.append(label)
    for i in range(5):
        rate.ticks.append({"y": round(PAD_TOP + inner_h - inner_h * i / 4, 1),
                           "label": f"{25 * i}%"})
    total = sum(r["total"] for r in days.values())
    ok = sum(r["ok"] for r in days.values())
    context = {
        "pipeline": pipeline, "charts": [execution_chart, stage_chart], "rate": rate,
        "total": total, "succeeded": ok, "success_rate": round(100 * ok / total) if total else None,
        "median": sorted(durations)[len(durations) // 2] if durations else None,
        "days": INSIGHTS_DAYS, "count": len(recent), "now": now,
        "chart_left": PAD_LEFT, "chart_bottom": 180 - PAD_BOTTOM,
    }
    return render(request, "executions/insights.html", context)
