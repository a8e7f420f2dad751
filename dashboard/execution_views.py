"""The dashboard's execution, action and insights pages (see ``dashboard.views`` for how
a page renders and stays live)."""


import difflib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone

from dashboard import live, review
from dashboard.consumers import read_log
from dashboard.gates import Gate, StageGates, of_stage_executions, stage_gates
from dashboard.labels import automatic_retries
from dashboard.views import (
    INSIGHTS_DAYS,
    INSIGHTS_EXECUTIONS,
    LOG_TAIL_BYTES,
    E,
    _now,
    _render,
    execution_for,
    pipeline_for,
    seconds,
    viewer_required,
)
from executions import dora, selectors
from executions.choices import (
    ActionExecutionStatus,
    RetryMode,
)
from executions.models import (
    ActionExecution,
    Artifact,
    PipelineExecution,
    SourceRevision,
    StageExecution,
)
from executions.refusals import stage_retry_refusal
from jobs.selectors import action_job_views
from pipelines import secrets
from teams.access import pipeline_allows, pipelines_visible
from teams.choices import Act
from teams.models import PipelineGroup

# --- Execution -----------------------------------------------------------------------


@dataclass
class Bar:
    ae: ActionExecution
    left: float
    width: float
    seconds: float
    review: dict | None = None


@dataclass
class GateBar:
    gate: Gate
    left: float = 0.0
    width: float = 0.0


@dataclass
class StageRow:
    se: StageExecution
    bars: list[Bar]
    left: float
    width: float
    retry_why: str = ""
    gates_before: list[GateBar] = field(default_factory=list)
    gates_after: list[GateBar] = field(default_factory=list)


def _gantt(ex: PipelineExecution, stage_executions, action_executions, now) -> tuple:
    """Stages and actions as bars on one time axis (percent of the execution's span):
    (rows, span, ``place(start, end)`` giving any other bar's left and width)."""
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
    return rows, span, place


def _timeline_gates(ex: PipelineExecution, rows: list[StageRow], stages: list[dict],
                    place) -> dict[str, StageGates]:
    """Each stage's gates on the timeline: its beforeEntry gates above its first attempt,
    its onSuccess/onFailure gates below its last, with the newest evaluation of each kind
    among its attempts. Stages not entered get theirs from the definition (returned)."""
    evaluations = of_stage_executions([row.se for row in rows])
    by_stage: dict[str, dict] = {}
    for row in rows:   # by stage, then attempt: the newest evaluation of a kind wins
        by_stage.setdefault(row.se.stage_name, {}).update(evaluations.get(row.se.pk, {}))
    first: dict[str, StageRow] = {}
    last: dict[str, StageRow] = {}
    for row in rows:
        first.setdefault(row.se.stage_name, row)
        last[row.se.stage_name] = row
    pending = {}
    for doc in stages:
        gates = StageGates.of(stage_gates(doc, by_stage.get(doc["name"], {})))
        if doc["name"] not in first:
            pending[doc["name"]] = gates
            continue
        first[doc["name"]].gates_before = [_gate_bar(g, place) for g in gates.before]
        last[doc["name"]].gates_after = [_gate_bar(g, place) for g in gates.after]
    return pending


def _gate_bar(gate: Gate, place) -> GateBar:
    evaluation = gate.evaluation
    if evaluation is None or evaluation.started_at is None:
        return GateBar(gate)
    left, width = place(evaluation.started_at, evaluation.ended_at)
    return GateBar(gate, left, width)


def _document_diff(old: dict, new: dict, old_label: str, new_label: str) -> list[tuple[str, str]]:
    """A unified diff of two definition documents as (css class, line) pairs."""
    a = json.dumps(secrets.mask(old), indent=2, sort_keys=True).splitlines()
    b = json.dumps(secrets.mask(new), indent=2, sort_keys=True).splitlines()
    lines = []
    for line in difflib.unified_diff(a, b, old_label, new_label, lineterm="", n=3):
        kind = ("head" if line.startswith(("---", "+++", "@@"))
                else "add" if line.startswith("+") else "del" if line.startswith("-") else "")
        lines.append((kind, line))
    return lines


def _retryable(ex: PipelineExecution, stage_executions) -> set[str]:
    """The stages of ``ex`` whose Retry button is offered: where the engine would accept
    it (docs/semantics.md §8). A query per stage that passes every other check."""
    latest = {se.stage_name: se.status for se in stage_executions}   # by attempt: last wins
    offered = set()
    for name, status in latest.items():
        ask = {"number": ex.number, "status": ex.status, "stage_name": name,
               "latest_stage_status": status}
        if stage_retry_refusal(**ask) is None and stage_retry_refusal(
                **ask, newer_number=selectors.stage_entered_since(ex, name)) is None:
            offered.add(name)
    return offered


@viewer_required
def execution_detail(request, name: str, number: int):
    """One execution: timeline of its actions, variables, artifacts, the version it ran."""
    ex = execution_for(request, name, number, "pipeline_version", "superseded_by", "triggered_by",
                    "rollback_target")
    seq = live.last_sequence(live.execution_key(ex.pk))
    now = _now()
    stage_executions = list(StageExecution.objects.filter(execution=ex)
                            .order_by("stage_index", "attempt"))
    action_executions = list(ActionExecution.objects.filter(execution=ex)
                             .order_by("stage_execution_id", "run_order", "id"))
    rows, span, place = _gantt(ex, stage_executions, action_executions, now)
    retries = {(r.stage_name, r.attempt): r.why
               for r in automatic_retries([ex.pk]).get(ex.pk, [])}
    for row in rows:
        row.retry_why = retries.get((row.se.stage_name, row.se.attempt), "")
    found = review.review_forms(request, action_executions)
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
    pending = _timeline_gates(ex, rows, version.document.get("stages", []), place)
    entered = {se.stage_name for se in stage_executions}
    planned = [(s["name"], pending.get(s["name"])) for s in version.document.get("stages", [])
               if s["name"] not in entered]
    operates = pipeline_allows(request.user, pipeline, Act.OPERATE)
    context = {
        "pipeline": pipeline, "ex": ex, "rows": rows, "span": span, "seq": seq, "now": now,
        "artifacts": artifacts, "revisions": revisions, "version": version, "diff": diff,
        "not_entered": planned, "document": json.dumps(secrets.mask(version.document), indent=2),
        "can_stop": operates, "can_retry": operates,
        "can_override": operates, "retry_modes": RetryMode.choices,
        "retryable": _retryable(ex, stage_executions),
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


def _action(request, name: str, number: int, stage: str, action: str, attempt: str | None):
    ex = execution_for(request, name, number)
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
    ex, attempts, ae = _action(request, name, number, stage, action,
                       request.GET.get("attempt"))
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
        text, offset, _ = read_log(ae.log_path, start, limit=LOG_TAIL_BYTES,
                                   final=ae.status in ActionExecutionStatus.TERMINAL)
        if truncated:  # begin at a whole line
            cut = text.find("\n")
            text = text[cut + 1:] if cut >= 0 else text
    reviews = review.review_forms(request, [ae])
    context = {
        "pipeline": ex.pipeline, "ex": ex, "ae": ae, "attempts": attempts, "seq": seq,
        "now": _now(), "log": text, "log_offset": offset, "log_truncated": truncated,
        "report": test_report(ae.summary) if ae.category == "Test" else None,
        # Secret values as "****" (pipelines.secrets).
        "configuration": (json.dumps(secrets.mask(ae.configuration), indent=2)
                          if ae.configuration else ""),
        "review": reviews.get(ae.pk),
        "job": action_job_views([ae]).get(ae.pk),
    }
    return _render(request, "executions/action.html", context, {
        "header": "executions/_partials/action_header.html",
    })


@viewer_required
def action_log(request, name: str, number: int, stage: str, action: str):
    """The whole log as plain text (for reading without JavaScript, or saving)."""
    _, _, ae = _action(request, name, number, stage, action,
                       request.GET.get("attempt"))
    from pathlib import Path

    from django.conf import settings

    return _log_text(Path(settings.LOG_ROOT) / ae.log_path if ae.log_path else None)


def _log_text(path):
    """A log file as plain text, each line with its timestamp as the log API and the
    live view show it (None or missing: empty)."""
    from runners import logfile

    if path is None or not path.exists():
        return HttpResponse("", content_type="text/plain; charset=utf-8")
    if not logfile.index_path(path).exists():   # stamped line by line as it was written
        return FileResponse(open(path, "rb"), content_type="text/plain; charset=utf-8")  # noqa: SIM115
    return StreamingHttpResponse(logfile.chunks(path), content_type="text/plain; charset=utf-8")


@viewer_required
def rule_log(request, name: str, number: int, stage: str, condition_type: str, rule: str):
    """A Commands rule's whole log as plain text (its latest evaluation in the execution's
    stage, or ``?ruleExecutionId=``), as ``action_log`` serves an action's."""
    from conditions import logs
    from conditions.choices import KINDS_BY_TYPE
    from conditions.selectors import rule_execution_named

    ex = execution_for(request, name, number)
    kind = KINDS_BY_TYPE.get(condition_type)
    wanted = request.GET.get("ruleExecutionId")
    try:
        wanted = uuid.UUID(wanted) if wanted else None
    except ValueError:
        raise Http404("No such rule execution.") from None
    found = rule_execution_named(ex, stage_name=stage, kind=kind, rule=rule,
                                 rule_execution_id=wanted) if kind else None
    if found is None:
        raise Http404("No such rule evaluated in this execution.")
    return _log_text(logs.rule_log_file(found))


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
    # The x-axis's labels under the plot: {"x", "text", "anchor"} (_x_axis).
    axis: list[dict] = field(default_factory=list)


PALETTE = ["#0073bb", "#ec7211", "#1d8102", "#8d6605", "#6b40c4", "#d13212", "#00838f"]
PAD_LEFT, PAD_BOTTOM, PAD_TOP, PAD_RIGHT = 48, 22, 10, 10


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200):
        if value <= step * 4:
            return step * 4
    return value


def _x_axis(chart: Chart, single_x: float) -> list[dict]:
    """The first and last labels at the ends of the x-axis; a lone label under its point
    (``single_x``), not twice (a pipeline's first execution read "#1 … #1"); none without."""
    if len(chart.labels) == 1:
        return [{"x": round(single_x, 1), "text": chart.labels[0], "anchor": "middle"}]
    if not chart.labels:
        return []
    return [{"x": PAD_LEFT, "text": chart.labels[0], "anchor": "start"},
            {"x": chart.width - PAD_RIGHT, "text": chart.labels[-1], "anchor": "end"}]


def _line_chart(title: str, unit: str, labels: list[str], series: dict[str, list]) -> Chart:
    chart = Chart(title, unit, labels=labels)
    values = [v for vs in series.values() for v in vs if v is not None]
    chart.y_max = _nice_max(max(values, default=0))
    inner_w = chart.width - PAD_LEFT - PAD_RIGHT
    inner_h = chart.height - PAD_TOP - PAD_BOTTOM
    n = max(len(labels) - 1, 1)
    # One point stands in the middle of the plot, under its label, not at its left edge.
    first_x = PAD_LEFT + (inner_w / 2 if len(labels) == 1 else 0)
    chart.axis = _x_axis(chart, first_x)
    for i in range(5):
        value = chart.y_max * i / 4
        chart.ticks.append({"y": round(PAD_TOP + inner_h - inner_h * i / 4, 1),
                            "label": _short(value) if unit == "s" else f"{value:g}"})
    for k, (name, vs) in enumerate(series.items()):
        points = []
        for i, v in enumerate(vs):
            if v is None:
                continue
            x = first_x + inner_w * i / n
            y = PAD_TOP + inner_h - inner_h * min(v, chart.y_max) / chart.y_max
            points.append({"x": round(x, 1), "y": round(y, 1), "v": v, "label": labels[i],
                           "text": _short(v) if unit == "s" else (
                               f"{v:.0f}%" if unit == "%" else f"{v:g}")})
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


DORA_WEEKS = 12
# The periods the insights pages offer (?weeks=); the default is about 90 days.
DORA_PERIODS = (4, 12, 26, 52)


def _dora_weeks(request) -> tuple[int, str]:
    """The period asked for with ``?weeks=`` (DORA_WEEKS when absent), and a warning
    naming the parameter when it is not one of DORA_PERIODS (the default is shown)."""
    given = request.GET.get("weeks", "").strip()
    if not given:
        return DORA_WEEKS, ""
    if given.isdigit() and int(given) in DORA_PERIODS:
        return int(given), ""
    choices = ", ".join(str(p) for p in DORA_PERIODS)
    return DORA_WEEKS, (f"weeks: {given!r} is not one of {choices}; "
                        f"showing the last {DORA_WEEKS} weeks.")


def _dora_context(request, pipelines, now: datetime) -> dict:
    """The DORA figures of these pipelines (a Pipeline queryset or ids) over the period the
    request chose, with weekly charts."""
    weeks, problem = _dora_weeks(request)
    since = now - timedelta(weeks=weeks)
    figures = dora.dora(pipelines, since=since, until=now)
    labels = [w.start.strftime("%b %d") for w in figures.weeks]
    charts = [
        _line_chart("Deployments per week", "", labels,
                    {"Deployments": [w.deployments for w in figures.weeks]}),
        _line_chart("Lead time for changes (median per week)", "s", labels,
                    {"Lead time": [w.lead_time for w in figures.weeks]}),
        _line_chart("Change failure rate per week", "%", labels,
                    {"Change failure rate": [w.failure_rate for w in figures.weeks]}),
        _line_chart("Time to restore (median per week)", "s", labels,
                    {"Time to restore": [w.restore for w in figures.weeks]}),
    ]
    return {"dora": figures, "dora_charts": charts, "dora_weeks": weeks,
            "dora_periods": DORA_PERIODS, "dora_problem": problem,
            "dora_definitions": dora.DEFINITIONS}


@viewer_required
def insights_overview(request):
    """The DORA figures of every pipeline one may view together, or of one pipeline group
    (``?group=NAME``), over the chosen period (``?weeks=``)."""
    now = _now()
    visible = pipelines_visible(request.user)
    groups = list(PipelineGroup.objects.filter(pk__in=visible.values("group_id"))
                  .values_list("name", flat=True))
    group = request.GET.get("group", "")
    if group:
        if group not in groups:
            raise Http404(f'No pipeline group is named "{group}".')
        visible = visible.filter(group__name=group)
    ids = list(visible.values_list("pk", flat=True))
    return render(request, "executions/insights_overview.html", {
        "now": now, "pipeline_count": len(ids), "chart_left": PAD_LEFT,
        "groups": groups, "group": group, **_dora_context(request, ids, now)})


@viewer_required
def pipeline_insights(request, name: str):
    """Duration trends of executions and stages, and the success rate per day, as SVG."""
    pipeline = pipeline_for(request, name)
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
    # Superseded and Stopped executions are neither successes nor failures: the rate
    # is of those that ran to a verdict (one superseded execution once read "0 %").
    # The first day's midnight as a time, not "the date of started_at >= the first
    # day": a bound on the column lets the (pipeline, ended_at) index find the rows
    # (an execution ends after it starts) instead of every execution of the pipeline.
    first = timezone.make_aware(datetime.combine(since.date(), time.min))
    for row in (PipelineExecution.objects.filter(
            pipeline=pipeline, status__in=E.TERMINAL,
            ended_at__gte=first, started_at__gte=first).order_by()
            .annotate(day=TruncDate("started_at")).values("day")
            .annotate(total=Count("id", filter=Q(status__in=[E.SUCCEEDED, E.FAILED])),
                      ok=Count("id", filter=Q(status=E.SUCCEEDED)),
                      other=Count("id", filter=Q(status__in=[E.STOPPED, E.SUPERSEDED])))):
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
    rate.axis = _x_axis(rate, PAD_LEFT + inner_w / 2)
    for i in range(5):
        rate.ticks.append({"y": round(PAD_TOP + inner_h - inner_h * i / 4, 1),
                           "label": f"{25 * i}%"})
    total = sum(r["total"] for r in days.values())
    ok = sum(r["ok"] for r in days.values())
    context = {
        "pipeline": pipeline, "charts": [execution_chart, stage_chart], "rate": rate,
        "total": total, "succeeded": ok, "success_rate": round(100 * ok / total) if total else None,
        "not_counted": sum(r["other"] for r in days.values()),
        **_dora_context(request, [pipeline.pk], now),
        "median": sorted(durations)[len(durations) // 2] if durations else None,
        "days": INSIGHTS_DAYS, "count": len(recent), "now": now,
        "chart_left": PAD_LEFT, "chart_bottom": 180 - PAD_BOTTOM,
    }
    return render(request, "executions/insights.html", context)
