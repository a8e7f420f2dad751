"""Stage conditions on the dashboard: each condition a gate before (beforeEntry) or after
(onSuccess, onFailure) its stage, drawn from the definition before any evaluation and
from the newest ConditionExecution and its RuleExecutions once there is one; an Override
button on a held gate for those who may; the override POST.

The pipelines run through the engine (the execution tests' ``driver``); the condition
records are made directly here, as the engine would leave them, so that each state a
person may see (in progress, failed, overridden) is drawn on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
import time_machine
from django.utils import timezone

from conditions.choices import CONDITION_TYPES
from conditions.models import ConditionExecution, RuleExecution
from dashboard.gates import KINDS, stage_gates
from executions.models import PipelineExecution, StageExecution
from observability.models import AuditEntry
from pipelines.services import pipeline_save
from tests.conditions.conftest import check, condition, gated_pipeline
from tests.conditions.conftest import rule as crule
from tests.executions.conftest import simple_pipeline

pytestmark = pytest.mark.django_db


def rule(name: str, provider: str, **fields) -> dict:
    out = {"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                        "provider": provider, "version": "1"}}
    if provider == "VariableCheck":
        out["configuration"] = {"Variable": "#{variables.Ring}", "Value": "prod",
                                "Operator": "EQ"}
    elif provider == "DeploymentWindow":
        # Open every minute of every day: the test never waits for a window.
        out["configuration"] = {"Cron": "0 * * ? * * *", "TimeZone": "UTC"}
    elif provider == "Commands":
        out["commands"] = ["true"]
    out.update(fields)
    return out


GATED = {
    "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
        rule("OfficeHours", "DeploymentWindow"), rule("RingIsProd", "VariableCheck")]}]},
    "onSuccess": {"conditions": [{"result": "ROLLBACK", "rules": [
        rule("SmokeAfterRelease", "Commands")]}]},
    "onFailure": {"result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}},
}


def gate_pipeline(name: str = "gated"):
    """Source → Build → Deploy; Deploy is guarded by GATED's three conditions."""
    pipeline = simple_pipeline(name, variables=[{"name": "Ring", "defaultValue": "prod"}])
    return pipeline, _with_gates(pipeline)


def _with_gates(pipeline):
    doc = dict(pipeline.document)
    doc["stages"] = [dict(s) for s in doc["stages"]]
    doc["stages"][2].update(GATED)
    return pipeline_save(document=doc).pipeline


def ran(driver, name: str = "gated", runs: int = 1):
    """A pipeline that ran (``runs`` times) without conditions, then gained GATED's (a new
    version): its stage executions are where the condition records below hang, and
    the engine evaluates none of them."""
    pipeline = simple_pipeline(name, variables=[{"name": "Ring", "defaultValue": "prod"}])
    executions = []
    for _ in range(runs):
        executions.append(driver.start(pipeline))
        driver.run()
    for ex in executions:
        ex.refresh_from_db()
    return _with_gates(pipeline), *executions


def evaluation(ex: PipelineExecution, kind: str, status: str, rules: list[tuple], *,
               stage: str = "Deploy", result: str = "FAIL", summary: str = "",
               **fields) -> ConditionExecution:
    se = StageExecution.objects.filter(execution=ex, stage_name=stage).latest("attempt")
    now = timezone.now()
    ce = ConditionExecution.objects.create(
        stage_execution=se, kind=kind, result=result, status=status, summary=summary,
        started_at=now - timedelta(seconds=5),
        ended_at=None if status == "InProgress" else now, **fields)
    for position, (rule_name, provider, rule_status, rule_summary) in enumerate(rules):
        RuleExecution.objects.create(
            condition_execution=ce, position=position, rule_name=rule_name,
            provider=provider, status=rule_status, summary=rule_summary,
            started_at=now - timedelta(seconds=5),
            ended_at=None if rule_status == "InProgress" else now)
    return ce


class Gates(HTMLParser):
    """The gates of a page, in document order: kind, status, text, Override form."""

    def __init__(self, html: str):
        super().__init__()
        self.gates: list[dict] = []
        self.depth = 0
        self.stage_seen: list[str] = []   # the order of gates and stages: "gate:kind"/"stage"
        self.feed(html)
        for gate in self.gates:
            gate["text"] = " ".join(gate["text"].split())

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if self.depth:
            self.depth += tag not in ("input", "br", "img")
            if tag == "form" and "override" in (attrs.get("action") or ""):
                self.gates[-1]["override"] = attrs["action"]
            return
        if tag == "section" and "gate" in classes:
            self.gates.append({"kind": attrs.get("data-kind"), "status": attrs.get("data-status"),
                               "text": "", "override": None})
            self.stage_seen.append(f"gate:{attrs.get('data-kind')}")
            self.depth = 1
        elif tag == "section" and "stage" in classes:
            self.stage_seen.append(attrs.get("aria-label", "stage"))

    def handle_endtag(self, tag):
        if self.depth and tag not in ("input", "br", "img"):
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.gates[-1]["text"] += " ".join(data.split()) + " "


def page_gates(client, url: str) -> Gates:
    response = client.get(url)
    assert response.status_code == 200
    return Gates(response.content.decode())


# --- drawn from the definition ---------------------------------------------------------


def test_a_stage_s_conditions_are_drawn_as_gates_before_any_evaluation(client, viewer):
    pipeline, _ = gate_pipeline()
    client.force_login(viewer)
    found = page_gates(client, f"/pipelines/{pipeline.name}/")
    # beforeEntry is drawn before its stage, onSuccess and onFailure after it.
    assert found.stage_seen == ["Stage Source", "Stage Build", "gate:beforeEntry",
                                "Stage Deploy", "gate:onSuccess", "gate:onFailure"]
    before, success, failure = found.gates
    assert before["status"] == "None"
    assert "Before entry FAIL not evaluated" in before["text"]
    assert "OfficeHours DeploymentWindow" in before["text"]
    assert "RingIsProd VariableCheck" in before["text"]
    assert "On success ROLLBACK not evaluated SmokeAfterRelease Commands" in success["text"]
    assert "On failure RETRY Retry all actions once (ALL_ACTIONS)" in failure["text"]
    assert all(g["override"] is None for g in found.gates)


# --- drawn from the evaluation -----------------------------------------------------------


def test_a_gate_shows_the_newest_evaluation_and_each_rule_s_result(client, viewer, driver):
    pipeline, ex = ran(driver)
    evaluation(ex, "beforeEntry", "Failed", [
        ("OfficeHours", "DeploymentWindow", "Succeeded", "Inside the window (Mon 10:00 UTC)"),
        ("RingIsProd", "VariableCheck", "Failed", '"staging" EQ "prod" is false'),
    ], summary="Rule RingIsProd failed")
    client.force_login(viewer)
    before = page_gates(client, f"/pipelines/{pipeline.name}/").gates[0]
    assert before["kind"] == "beforeEntry" and before["status"] == "Failed"
    text = before["text"]
    assert "Before entry FAIL Failed" in text
    assert "OfficeHours DeploymentWindow Succeeded Inside the window (Mon 10:00 UTC)" in text
    assert 'RingIsProd VariableCheck Failed "staging" EQ "prod" is false' in text
    assert f"#{ex.number} · Rule RingIsProd failed" in text


def test_the_pipeline_page_shows_the_newest_evaluation_of_each_kind(client, viewer, driver):
    pipeline, first, second = ran(driver, runs=2)
    evaluation(first, "beforeEntry", "Failed", [("RingIsProd", "VariableCheck", "Failed",
                                                 "old")])
    evaluation(second, "beforeEntry", "InProgress", [
        ("OfficeHours", "DeploymentWindow", "InProgress", "Waiting for the window: opens at "
                                                         "Mon 09:00 UTC")])
    client.force_login(viewer)
    before = page_gates(client, f"/pipelines/{pipeline.name}/").gates[0]
    assert before["status"] == "InProgress"
    assert f"#{second.number}" in before["text"] and "old" not in before["text"]
    assert "Waiting for the window: opens at Mon 09:00 UTC" in before["text"]
    # A rule not reached yet keeps its place from the definition, without a status.
    assert "RingIsProd VariableCheck" in before["text"]


def test_an_overridden_gate_says_who_and_why(client, viewer, operator, driver):
    pipeline, ex = ran(driver)
    evaluation(ex, "onSuccess", "Overridden", [
        ("SmokeAfterRelease", "Commands", "Abandoned", "")], result="ROLLBACK",
        overridden_by=operator, override_reason="Hotfix for the outage, checked by hand")
    client.force_login(viewer)
    success = page_gates(client, f"/pipelines/{pipeline.name}/").gates[1]
    assert success["status"] == "Overridden"
    assert (f"Overridden by {operator.username}: Hotfix for the outage, checked by hand"
            in success["text"])


def test_the_live_part_of_a_stage_carries_its_gates(client, viewer, driver):
    """The browser refreshes ``stage:Deploy`` when a condition event of Deploy arrives:
    the part carries the gates, rendered by the same partial as the first paint."""
    pipeline, ex = ran(driver)
    evaluation(ex, "beforeEntry", "InProgress", [
        ("OfficeHours", "DeploymentWindow", "InProgress", "Waiting for the window")])
    client.force_login(viewer)
    part = client.get(f"/pipelines/{pipeline.name}/?parts=stage:Deploy").json()["parts"]
    found = Gates(part["stage:Deploy"])
    assert [g["kind"] for g in found.gates] == ["beforeEntry", "onSuccess", "onFailure"]
    assert found.gates[0]["status"] == "InProgress"
    full = page_gates(client, f"/pipelines/{pipeline.name}/")
    assert [g["text"] for g in full.gates] == [g["text"] for g in found.gates]


# --- Override -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind, status, result, offered", [
    ("beforeEntry", "InProgress", "FAIL", True),
    ("onSuccess", "InProgress", "ROLLBACK", True),
    ("onFailure", "InProgress", "ROLLBACK", True),
    ("beforeEntry", "InProgress", "SKIP", False),      # a SKIP condition cannot be overridden
    ("beforeEntry", "Failed", "FAIL", False),          # it no longer holds anything
    ("beforeEntry", "Succeeded", "FAIL", False),
    ("beforeEntry", "Overridden", "FAIL", False),
])
def test_the_override_button_is_on_a_held_gate_for_operators_only(
        client, viewer, operator, driver, kind, status, result, offered):
    """Held: the conditions app's ``override_refusal`` has no objection (docs/conditions.md)."""
    pipeline, ex = ran(driver)
    evaluation(ex, kind, status, [("RingIsProd", "VariableCheck", status
                                   if status != "Overridden" else "Abandoned", "")],
               result=result)
    index = KINDS.index(kind)
    client.force_login(operator)
    gate = page_gates(client, f"/pipelines/{pipeline.name}/").gates[index]
    expected = override_url(pipeline, ex, CONDITION_TYPES[kind])
    assert gate["override"] == (expected if offered else None)
    client.force_login(viewer)
    assert [g["override"] for g in page_gates(
        client, f"/pipelines/{pipeline.name}/").gates] == [None, None, None]


def override_url(pipeline, ex, condition_type="BEFORE_ENTRY") -> str:
    return (f"/pipelines/{pipeline.name}/executions/{ex.number}/stages/Deploy/conditions/"
            f"{condition_type}/override/")


def test_a_viewer_may_not_override(client, viewer, driver):
    pipeline, ex = ran(driver)
    ce = evaluation(ex, "beforeEntry", "Failed", [("RingIsProd", "VariableCheck", "Failed",
                                                   "")])
    client.force_login(viewer)
    response = client.post(override_url(pipeline, ex), {"reason": "I want it"})
    assert response.status_code == 403
    ce.refresh_from_db()
    assert ce.status == "Failed" and ce.overridden_by is None


def test_an_override_without_a_reason_is_refused_with_a_message(client, operator, driver):
    pipeline, ex = ran(driver)
    ce = evaluation(ex, "beforeEntry", "Failed", [("RingIsProd", "VariableCheck", "Failed",
                                                   "")])
    client.force_login(operator)
    response = client.post(override_url(pipeline, ex), {"reason": "   "}, follow=True)
    assert "An override needs a reason" in response.content.decode()
    ce.refresh_from_db()
    assert ce.status == "Failed" and ce.overridden_by is None


# --- with the conditions engine (the conditions tests' ``cdriver``) ------------------------

SATURDAY = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


@pytest.fixture
def saturday():
    """Outside the working-hours window of ``window()``: its rule waits."""
    with time_machine.travel(SATURDAY, tick=False) as traveller:
        yield traveller


def window() -> dict:
    return crule("DeploymentWindow", {"Cron": "0 0 9-17 ? * MON-FRI *", "TimeZone": "UTC"},
                 name="Window")


def test_an_operator_overrides_a_held_gate_from_the_dashboard_and_the_stage_runs(
        client, operator, cdriver, saturday):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", window(), check("#{variables.gate}",
                                                                             name="Go")))
    ex = cdriver.start(pipeline)
    cdriver.run()
    client.force_login(operator)
    before = page_gates(client, f"/pipelines/{pipeline.name}/").gates[0]
    assert before["status"] == "InProgress"
    assert "opens at 2026-12-07 09:00 UTC" in before["text"]
    assert before["override"] == override_url(pipeline, ex)
    # The POST commits as a request does; its on-commit work reaches the driver's queue.
    response = cdriver.call(client.post, override_url(pipeline, ex), {
        "reason": " Hotfix for INC-7 ", "next": f"/pipelines/{pipeline.name}/"}, follow=True)
    assert "the before entry condition of &quot;Deploy&quot; is overridden" in (
        response.content.decode())
    cdriver.run()
    ex.refresh_from_db()
    assert ex.status == "Succeeded"
    ce = ConditionExecution.objects.get(stage_execution__execution=ex, kind="beforeEntry")
    assert (ce.status, ce.overridden_by, ce.override_reason) == (
        "Overridden", operator, "Hotfix for INC-7")
    assert AuditEntry.objects.get(action="condition.override").surface == "dashboard"
    before = page_gates(client, f"/pipelines/{pipeline.name}/").gates[0]
    assert before["status"] == "Overridden" and before["override"] is None
    assert f"Overridden by {operator.username}: Hotfix for INC-7" in before["text"]


def test_an_override_of_a_gate_that_no_longer_holds_is_refused_with_the_reason(
        client, operator, cdriver):
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", check("#{variables.gate}")))
    ex = cdriver.start(pipeline)
    cdriver.run()
    client.force_login(operator)
    response = client.post(override_url(pipeline, ex), {"reason": "late"}, follow=True)
    assert ("has already ended (Succeeded): there is nothing to override"
            in response.content.decode())
    assert not AuditEntry.objects.filter(action="condition.override").exists()


def test_the_execution_page_draws_the_evaluated_gates_on_its_timeline(client, viewer,
                                                                      cdriver):
    pipeline = gated_pipeline(
        beforeEntry=condition("FAIL", check("#{variables.gate}", name="Go")),
        onSuccess=condition("FAIL", check("#{variables.gate}", "stop", name="NotStopped")),
        onFailure={"result": "ROLLBACK"})
    ex = cdriver.start(pipeline)
    cdriver.run()
    ex.refresh_from_db()
    assert ex.status == "Failed"   # onSuccess FAIL: its rule failed
    client.force_login(viewer)
    url = f"/pipelines/{pipeline.name}/executions/{ex.number}/"
    found = page_gates(client, url)
    assert [(g["kind"], g["status"]) for g in found.gates] == [
        ("beforeEntry", "Succeeded"), ("onSuccess", "Failed"), ("onFailure", "None")]
    assert "Go VariableCheck Succeeded" in found.gates[0]["text"]
    assert "NotStopped VariableCheck Failed" in found.gates[1]["text"]
    page = client.get(url).content.decode()
    assert page.count('class="g-bar gate-bar"') == 2   # the two evaluations, on the time axis
    # Its live part (every event of the execution refreshes the timeline) carries them.
    part = client.get(url + "?parts=timeline").json()["parts"]["timeline"]
    assert [g["status"] for g in Gates(part).gates] == ["Succeeded", "Failed", "None"]
    # A stage not entered shows its gates from the definition.
    assert "Verify" in page and "not entered" in page


# --- shaping alone (no database) ---------------------------------------------------------


def _evaluation(kind: str, status: str, rules: list[tuple[str, str, str]], result="FAIL"):
    """A ConditionExecution-shaped object as the reads above hand it to ``stage_gates``."""
    runs = [SimpleNamespace(pk=n, position=n, rule_name=name, provider=provider,
                            status=rule_status, summary="")
            for n, (name, provider, rule_status) in enumerate(rules)]
    return SimpleNamespace(kind=kind, status=status, result=result, summary="",
                           rule_executions=SimpleNamespace(all=lambda: runs),
                           stage_execution=SimpleNamespace(
                               stage_name="Deploy", execution=SimpleNamespace(number=7)))


def test_an_on_failure_condition_is_drawn_with_its_rules_and_a_plain_one_in_words():
    with_rules = {"onFailure": {"conditions": [{"result": "ROLLBACK", "rules": [
        rule("ErrorBudget", "Commands")]}]}}
    [gate] = stage_gates(with_rules, {})
    assert (gate.kind, gate.result, [(r.name, r.provider) for r in gate.rules]) == (
        "onFailure", "ROLLBACK", [("ErrorBudget", "Commands")])
    assert [g.effect for g in stage_gates({"onFailure": {"result": "FAIL"}}, {})] == ["fail"]
    assert [g.effect for g in stage_gates({"onFailure": {"result": "RETRY"}}, {})] == [
        "retry failed actions once"]
    assert stage_gates({"name": "Build", "actions": []}, {}) == []


def test_a_rule_evaluated_but_gone_from_the_definition_is_still_shown():
    [gate] = stage_gates({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
        rule("Kept", "VariableCheck")]}]}}, {"beforeEntry": _evaluation(
            "beforeEntry", "InProgress", [("Removed", "Commands", "Failed"),
                                          ("Kept", "VariableCheck", "InProgress")])})
    assert [(r.name, r.provider, r.status) for r in gate.rules] == [
        ("Kept", "VariableCheck", "InProgress"), ("Removed", "Commands", "Failed")]
    assert gate.overridable and gate.number == 7
