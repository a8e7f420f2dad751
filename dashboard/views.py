"""The dashboard's pages: server-rendered first, kept live by the page's script.

Every page renders completely on the server (readable without JavaScript);
its script then listens to a websocket (``dashboard.consumers``) and, when
events arrive, asks the same URL for the affected parts with ``?parts=a,b``
and receives ``{"a": "<html>", ...}`` rendered from the same ``_partials/``
templates as the first paint. Forms are plain POST + redirect with CSRF.

Views hold no rules: buttons call ``executions.services`` (and, through the
``dashboard.review``, the approvals services); a refusal (``ExecutionError``) becomes a
message on the page. Reading needs ``pipelines.view_pipeline``; each button is
shown and accepted only for users with its operator permission.

Each page costs a fixed number of queries whatever the number of executions
and actions (tests/dashboard/test_queries.py holds them to it).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import Truncator
from django.views.decorators.http import require_POST

from approvals import services as approval_services
from approvals.choices import ApprovalStatus, DecisionSurface
from approvals.errors import ApprovalError
from conditions import services as condition_services
from dashboard import live, review
from dashboard.gates import StageGates, latest_on_stages, stage_gates
from dashboard.labels import automatic_retries
from dashboard.templatetags.dashboard import elapsed, first_line, short_revision
from executions import selectors, services
from executions.choices import (
    PipelineExecutionStatus,
    RetryMode,
    StageExecutionStatus,
    TriggerType,
    WaitingReason,
)
from executions.models import (
    ActionExecution,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from executions.refusals import stage_retry_refusal
from jobs.selectors import action_job_views
from observability.models import AuditSurface
from pipelines.models import Pipeline
from pipelines.report import blocking as report_blocking
from pipelines.report import migration_report
from teams.access import holds_any_role, pipeline_allows, pipeline_require, pipelines_visible
from teams.choices import Act
from triggers import schedules

E = PipelineExecutionStatus
S = StageExecutionStatus
HISTORY_PAGE = 25
LOG_TAIL_BYTES = 256 * 1024
INSIGHTS_EXECUTIONS = 60
INSIGHTS_DAYS = 30



def viewer_required(view):
    """Signed in (else the login page) and holding a role on some pipeline group (else
    403); each view then asks ``teams.access`` about the pipeline it shows."""

    @login_required
    def wrapped(request, *args, **kwargs):
        if not holds_any_role(request.user):
            raise PermissionDenied("You may not view pipelines.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def pipeline_for(request, name: str, act: str = Act.VIEW) -> Pipeline:
    """The pipeline if the user may ``act`` with it: 404 not visible, 403 not allowed."""
    return pipeline_require(request.user, Pipeline.objects.filter(name=name).first(), act,
                            name=name)


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
    return selectors.latest_stage_executions(pipeline_ids, select=select)


def _latest_action_executions(pipeline_id: int) -> list[ActionExecution]:
    """The newest ActionExecution of every action of a pipeline: one query."""
    return selectors.latest_action_executions(pipeline_id)


def _revisions(execution_ids) -> dict[int, list[SourceRevision]]:
    """Each execution's source revisions (a rollback's are its target's): one query."""
    return selectors.source_revisions(execution_ids)


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
    pipelines = pipelines_visible(request.user).annotate(
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
    job: Any = None   # jobs.selectors.JobView of an action run by a job worker

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
    doc: dict = field(default_factory=dict)
    gates: StageGates = field(default_factory=StageGates)

    @property
    def transition_enabled(self) -> bool:
        return self.stage is None or self.stage.transition_enabled


def _why(ex: PipelineExecution, box: StageBox, position: int) -> str:
    """Why an inbound execution waits, in words (docs/semantics.md §2)."""
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
    evaluations = latest_on_stages(latest_se.values())
    boxes = []
    for index, doc in enumerate(pipeline.document.get("stages", [])):
        cards = [ActionCard(a, latest_ae.get((doc["name"], a["name"])))
                 for a in doc["actions"]]
        se = latest_se.get(doc["name"])
        box = StageBox(doc["name"], index, stages.get(doc["name"]), se, cards, doc=doc)
        # Offered only where the engine would accept it (docs/semantics.md §8): ``se`` is
        # the stage's newest attempt of all, so no newer execution has entered it since.
        box.retryable = se is not None and stage_retry_refusal(
            number=se.execution.number, status=se.execution.status, stage_name=se.stage_name,
            latest_stage_status=se.status) is None
        waiting = [ex for ex in inbound if ex.inbound_stage_name == doc["name"]]
        box.inbound = [Inbound(ex, _why(ex, box, k)) for k, ex in enumerate(waiting, 1)]
        box.gates = StageGates.of(stage_gates(
            doc, evaluations.get(doc["name"], {})))
        boxes.append(box)
    cards = [c for b in boxes for c in b.cards if c.ae is not None]
    found = review.review_forms(request, [c.ae for c in cards])
    jobs = action_job_views([c.ae for c in cards])
    for card in cards:
        if card.ae.pk in found:
            card.review = found[card.ae.pk]
        card.job = jobs.get(card.ae.pk)
    shown = {ex.pk for ex in active} | ({latest.pk} if latest else set())
    revisions = _revisions(shown)
    user = request.user
    operates = pipeline_allows(user, pipeline, Act.OPERATE)
    return {
        "pipeline": pipeline, "boxes": boxes, "active": active, "latest": latest,
        "revisions": revisions.get(latest.pk, []) if latest else [],
        "seq": seq, "now": _now(),
        "variables": pipeline.document.get("variables", []),
        "source_actions": (pipeline.document.get("stages") or [{"actions": []}])[0]["actions"],
        "can_start": operates, "can_stop": operates,
        "can_retry": operates, "can_toggle": operates,
        "can_override": operates,
        "retry_modes": RetryMode.choices,
        "schedules": schedules.next_runs(pipeline),
    }


@viewer_required
def pipeline_detail(request, name: str):
    """The CodePipeline-console view of one pipeline."""
    pipeline = pipeline_for(request, name)
    context = _pipeline_context(request, pipeline)
    # An imported pipeline that cannot start yet says why, before anyone tries; the
    # report's notes (a build project that does not exist, a connection used) come too.
    reports = migration_report(pipeline.document)
    context["not_ready"] = report_blocking(reports)
    context["readiness"] = [r for r in reports if r.blocking or r.notes]
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


def _refused(request, exc: services.ExecutionError | ApprovalError) -> None:
    """The dashboard's one answer to a refusal: its sentence, as a message on the page."""
    messages.error(request, str(getattr(exc, "detail", "") or exc))


@viewer_required
@require_POST
def pipeline_release(request, name: str):
    """Release change: start an execution, with variables and source revision overrides."""
    pipeline = pipeline_for(request, name, Act.OPERATE)
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
    pipeline = pipeline_for(request, name, Act.OPERATE)
    enabled = request.POST.get("enabled") == "true"
    try:
        services.transition_set(pipeline=pipeline, stage_name=stage, enabled=enabled,
                                reason=request.POST.get("reason", "").strip(), user=request.user)
    except services.ExecutionError as exc:
        _refused(request, exc)
    return _back(request, reverse("dashboard:pipeline", args=[name]))


def execution_for(request, name: str, number: int, *select,
                  act: str = Act.VIEW) -> PipelineExecution:
    """Execution #number of the pipeline, if the user may ``act`` with the pipeline
    (404 when the pipeline is not visible or has no such execution, 403 not allowed)."""
    pipeline_for(request, name, Act.VIEW)
    ex = (PipelineExecution.objects.select_related("pipeline", *select)
          .filter(pipeline__name=name, number=number).first())
    if ex is None:
        raise Http404(f'Pipeline "{name}" has no execution #{number}.')
    pipeline_require(request.user, ex.pipeline, act)
    return ex


@viewer_required
@require_POST
def execution_stop(request, name: str, number: int):
    """Stop and wait, or stop and abandon."""
    ex = execution_for(request, name, number, act=Act.OPERATE)
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
    ex = execution_for(request, name, number, act=Act.OPERATE)
    try:
        services.stage_retry(execution=ex, stage_name=stage,
                             mode=request.POST.get("mode", RetryMode.FAILED_ACTIONS),
                             user=request.user)
    except services.ExecutionError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f'Retrying stage "{stage}" of execution #{number}.')
    return _back(request, reverse("dashboard:pipeline", args=[name]))


@viewer_required
@require_POST
def condition_override(request, name: str, number: int, stage: str, condition_type: str):
    """Override a held beforeEntry/onSuccess condition, with the reason the form asks for."""
    ex = execution_for(request, name, number, act=Act.OPERATE)
    back = reverse("dashboard:pipeline", args=[name])
    reason = request.POST.get("reason", "").strip()
    if not reason:
        messages.error(request, "An override needs a reason: say why this change may go on.")
        return _back(request, back)
    try:
        ce = condition_services.stage_condition_override(
            execution=ex, stage_name=stage, condition_type=condition_type, user=request.user,
            reason=reason, surface=AuditSurface.DASHBOARD)
    except services.ExecutionError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Execution #{number}: the {ce.get_kind_display().lower()} "
                                  f'condition of "{stage}" is overridden.')
    return _back(request, back)


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
    executions = selectors.execution_rows(ids, _HISTORY_FIELDS)
    revisions = {
        pk: [{"url": revision_url, "id": revision_id, "short": short_revision(revision_id),
              "summary": _truncate(first_line(summary), 72)}
             for revision_url, revision_id, summary in rows]
        for pk, rows in selectors.revision_rows(
            [ex[0] for ex in executions],
            ("revision_url", "revision_id", "revision_summary")).items()}
    retried = automatic_retries(ex[0] for ex in executions)
    rows = []
    for (pk, number, execution_type, status, superseded, inbound_stage, trigger_type,
         trigger_detail, triggered_by, username, started_at, ended_at) in executions:
        started = timezone.localtime(started_at) if started_at else None
        rows.append({
            "number": number,
            "url": url(number),
            "rollback": execution_type == "ROLLBACK",
            "automatic": trigger_type == "AutomatedRollback",
            "reason": trigger_detail,
            "retried": retried.get(pk, []),
            "status": status,
            "superseded": superseded,
            "superseded_url": url(superseded) if superseded is not None else "",
            "inbound_stage_name": inbound_stage,
            "trigger": "Released" if triggered_by and trigger_type == "StartPipelineExecution"
            else _TRIGGER_LABELS.get(trigger_type, trigger_type),
            # A rollback's detail is its reason (which execution failed where): shown whole.
            "by": username if triggered_by else _truncate(
                trigger_detail, 140 if execution_type == "ROLLBACK" else 60),
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
    pipeline = pipeline_for(request, name)
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


# --- Review (an approval decided from a dashboard page) ------------------------------


@login_required
@require_POST
def review_decide(request, pk):
    """Approve or Reject from a dashboard page, then back to that page."""
    target = safe_next(request, reverse("home"))
    try:
        approval = approval_services.approval_get(approval_id=pk, user=request.user)
        approval_services.approval_decide(request=approval, user=request.user,
                                          status=request.POST.get("status", ""),
                                          summary=request.POST.get("summary", ""),
                                          surface=DecisionSurface.DASHBOARD)
    except ApprovalError as exc:
        _refused(request, exc)
        return redirect(target)
    approval.refresh_from_db()
    where = f"{approval.stage_name} / {approval.action_name}"
    if approval.status == ApprovalStatus.PENDING:
        messages.success(request, f"Your approval of {where} is recorded; it needs "
                                  f"{approval.required_approvals} in all.")
    else:
        messages.success(request, f"{where}: {approval.status}.")
    return redirect(target)


