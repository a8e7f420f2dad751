"""The read paths built without DRF's serializers or per-row template work answer the same.

GetPipelineState, the executions list API and the history page build their
answers directly (plain dicts, rows worked out in the view) because the
serializer machinery and per-row template tags were most of their CPU time
with a long history. Each is compared here, byte for byte, with what the
serializer (still the API's documented schema) or the former per-row template
makes of the same rows, on a history with every case the shapes branch on:
an inbound execution behind a disabled transition, source revisions (with
and without a URL, a long multi-line summary), a user-started execution, a
long trigger detail, a superseded execution and a rollback.
"""

import re

import pytest
from django.template import engines
from django.test import Client
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from executions import selectors, services
from executions.api.serializers import PipelineExecutionSummarySerializer
from executions.api.state import PipelineStateSerializer, pipeline_state_data
from executions.api.views import _summaries
from executions.choices import TriggerType
from executions.models import PipelineExecution, SourceRevision
from tests.executions.conftest import simple_pipeline

pytestmark = pytest.mark.django_db

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _json(data) -> bytes:
    return JSONRenderer().render(data)


def _varied_history(driver, operator):
    """Rollback, user start, long trigger detail, superseded, inbound, revisions."""
    pipeline = simple_pipeline("shapes")
    first = driver.start(pipeline, user=operator,
                         source_revisions=[{"actionName": "Checkout", "revisionValue": COMMIT}])
    driver.run()
    driver.call(services.stage_rollback, pipeline=pipeline, stage_name="Deploy",
                target_execution=first, user=operator)
    driver.run()
    driver.start(pipeline, trigger_type=TriggerType.WEBHOOK,
                 trigger_detail="push to main by a very long-named robot account " * 3)
    driver.start(pipeline)  # waits at Source
    driver.start(pipeline)  # supersedes the one waiting
    driver.run()
    driver.call(services.transition_set, pipeline=pipeline, stage_name="Deploy",
                enabled=False, reason="change freeze <b>", user=operator)
    driver.start(pipeline)
    driver.run()            # waits at Deploy: the inbound execution
    SourceRevision.objects.filter(execution__pipeline=pipeline).exclude(
        execution=first).update(revision_url="https://git.example/c?x=1&y=2",
                                revision_summary="  Fix the <login> form — naïve café\n\nbody")
    statuses = set(PipelineExecution.objects.filter(pipeline=pipeline)
                   .values_list("status", flat=True))
    assert {"Superseded", "Succeeded", "InProgress"} <= statuses
    assert PipelineExecution.objects.filter(pipeline=pipeline,
                                            execution_type="ROLLBACK").exists()
    return pipeline


def test_pipeline_state_data_is_the_serializers_json(driver, operator):
    pipeline = _varied_history(driver, operator)
    state = selectors.pipeline_state(pipeline)
    deploy = state["stageStates"][2]
    assert deploy["inboundExecution"] is not None
    assert deploy["inboundTransitionState"]["disabledReason"] == "change freeze <b>"
    assert "currentRevision" in state["stageStates"][0]["actionStates"][0]
    assert _json(pipeline_state_data(state)) == _json(PipelineStateSerializer(state).data)


def test_pipeline_state_data_of_a_pipeline_that_never_ran(db):
    state = selectors.pipeline_state(simple_pipeline("never"))
    assert all(stage["latestExecution"] is None for stage in state["stageStates"])
    assert _json(pipeline_state_data(state)) == _json(PipelineStateSerializer(state).data)


def test_execution_summaries_are_the_serializers_json(driver, operator):
    pipeline = _varied_history(driver, operator)
    executions = list(PipelineExecution.objects.filter(pipeline=pipeline).order_by("-number"))
    assert len(executions) == 6
    expected = PipelineExecutionSummarySerializer(executions, many=True).data
    assert _json(_summaries([ex.pk for ex in executions])) == _json(expected)
    assert any(row["rollbackMetadata"] for row in expected)
    assert any(row["sourceRevisions"] for row in expected)


# The history table's row as it was written before its rows were worked out in the
# view (dashboard.views._history_rows): filters, {% url %} and an include per row.
FORMER_ROW = """{% load dashboard %}{% for ex, revs in rows %}
    <tr id="execution-{{ ex.number }}">
      <td><a class="strong" href="{% url 'dashboard:execution' pipeline.name ex.number %}">#{{ ex.number }}</a>{% if ex.execution_type == "ROLLBACK" %} <span class="tag" title="{{ ex.trigger_detail }}">{% if ex.trigger_type == "AutomatedRollback" %}automatic {% endif %}rollback</span>{% endif %}</td>
      <td>{% include "executions/_partials/status.html" with status=ex.status %}
        {% if ex.superseded_by %}<div class="small">by <a href="{% url 'dashboard:execution' pipeline.name ex.superseded_by.number %}">#{{ ex.superseded_by.number }}</a></div>{% endif %}
        {% if ex.inbound_stage_name %}<div class="small muted">waiting at {{ ex.inbound_stage_name }}</div>{% endif %}</td>
      <td>{% if ex.triggered_by and ex.trigger_type == "StartPipelineExecution" %}Released{% else %}{{ ex.get_trigger_type_display }}{% endif %}{% if ex.triggered_by %}<div class="small muted">{{ ex.triggered_by.get_username }}</div>{% elif ex.trigger_detail %}<div class="small muted">{% if ex.execution_type == "ROLLBACK" %}{{ ex.trigger_detail|truncatechars:140 }}{% else %}{{ ex.trigger_detail|truncatechars:60 }}{% endif %}</div>{% endif %}</td>
      <td>{% for rev in revs %}<div class="revision">{% if rev.revision_url %}<a href="{{ rev.revision_url }}" rel="noopener"><code>{{ rev.revision_id|short_revision }}</code></a>{% else %}<code title="{{ rev.revision_id }}">{{ rev.revision_id|short_revision }}</code>{% endif %} {{ rev.revision_summary|first_line|truncatechars:72 }}</div>{% empty %}<span class="muted">–</span>{% endfor %}</td>
      <td>{% if ex.started_at %}<time datetime="{{ ex.started_at|date:'c' }}">{{ ex.started_at|date:"Y-m-d H:i:s" }}</time>{% else %}–{% endif %}</td>
      <td>{% elapsed ex.started_at ex.ended_at now %}</td>
    </tr>
{% endfor %}"""  # noqa: E501


def test_the_history_rows_are_what_the_former_per_row_template_made(driver, operator,
                                                                    viewer):
    pipeline = _varied_history(driver, operator)
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/pipelines/{pipeline.name}/executions/").content.decode()
    shown = re.search(r"<tbody>(.*)</tbody>", page, re.S).group(1)

    executions = list(PipelineExecution.objects.filter(pipeline=pipeline)
                      .select_related("superseded_by", "triggered_by").order_by("-number"))
    revisions = {ex.pk: list(SourceRevision.objects.filter(execution=ex).order_by("id"))
                 for ex in executions}
    former = engines["django"].from_string(FORMER_ROW).render({
        "pipeline": pipeline, "now": timezone.now(),
        "rows": [(ex, revisions[ex.pk]) for ex in executions]})

    def rows(html: str) -> list[str]:  # a running execution's duration ticks: not compared
        html = re.sub(r'(class="elapsed" data-start="[^"]+">)[^<]*', r"\1", html)
        return re.findall(r"<tr .*?</tr>", html, re.S)

    assert len(rows(shown)) == 6
    assert rows(shown) == rows(former)
    for expected in ("rollback</span>", "Released<div", "oscar", "Push webhook", "…",
                     "Fix the &lt;login&gt; form — naïve café", "https://git.example/c?x=1&amp;y=2",
                     f"<code title=\"{COMMIT}\">{COMMIT[:8]}</code>", 'class="small">by <a'):
        assert expected in shown, expected
