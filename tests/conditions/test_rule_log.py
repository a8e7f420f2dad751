"""A Commands rule's log is served as an action's log is: REST from a byte offset
(``/api/executions/{id}/stages/{stage}/conditions/{conditionType}/rules/{rule}/log/``),
plain text on the dashboard, and a "log" link on the gate — to anyone who may view the
pipeline. The rule really runs, in the sandbox (CONVEYOR_SANDBOX=required).

Rules take no secrets (a rule declaration has no ``environmentVariables``; the sandbox
shows the commands none), so there is no secret for a rule's log to mask."""

from __future__ import annotations

import pytest
from django.test import Client

from conditions import logs
from conditions.models import RuleExecution
from tests.conditions.conftest import condition, gated_pipeline, rule


def _ran(cdriver, settings, *commands: str):
    settings.CONVEYOR_SANDBOX = "required"
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", rule(
        "Commands", name="Checks", commands=list(commands),
        inputArtifacts=[{"name": "Src"}])))
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    return execution


def _log_path(execution) -> str:
    return (f"/api/executions/{execution.execution_id}/stages/Deploy/conditions/"
            "BEFORE_ENTRY/rules/Checks/log/")


def test_a_viewer_reads_a_commands_rules_log_from_an_offset(cdriver, settings, viewer, api):
    execution = _ran(cdriver, settings, "echo checked-the-release", "echo second line")
    assert execution.status == "Succeeded"
    rule_row = RuleExecution.objects.get()
    client = api(viewer)

    whole = client.get(_log_path(execution))
    assert whole.status_code == 200, whole.content
    body = whole.json()
    assert body["ruleExecutionId"] == str(rule_row.rule_execution_id)
    assert body["status"] == "Succeeded" and body["complete"] is True
    assert "checked-the-release" in body["text"] and "second line" in body["text"]
    assert body["nextOffset"] == body["size"] > 0

    # Offsets count bytes of the stored log (the output as printed; the timestamps are
    # kept beside it, runners.logfile): a reader resumes at a line's first byte.
    start = logs.rule_log_file(rule_row).read_bytes().index(b"\nsecond line\n") + 1
    rest = client.get(_log_path(execution), {"offset": start}).json()
    first = rest["text"].splitlines()[0]
    assert first.endswith("Z second line") and rest["offset"] == start
    assert "checked-the-release" not in rest["text"]
    named = client.get(_log_path(execution), {"ruleExecutionId": str(rule_row.rule_execution_id)})
    assert named.json()["text"] == body["text"]


def test_a_failing_rules_log_holds_the_failing_commands_output(cdriver, settings, viewer, api):
    execution = _ran(cdriver, settings, "echo about to fail >&2", "exit 3")
    assert execution.status == "Failed"
    body = api(viewer).get(_log_path(execution)).json()
    assert body["status"] == "Failed"
    assert "about to fail" in body["text"]


def test_the_rule_log_answers_404_naming_what_is_missing_and_400_for_a_bad_offset(
        cdriver, settings, viewer, api):
    execution = _ran(cdriver, settings, "true")
    client = api(viewer)
    base = f"/api/executions/{execution.execution_id}/stages/Deploy/conditions/"
    unknown_type = client.get(base + "BEFORE_EVERYTHING/rules/Checks/log/")
    assert unknown_type.status_code == 404
    assert "BEFORE_ENTRY" in unknown_type.json()["detail"]
    no_rule = client.get(base + "ON_SUCCESS/rules/Checks/log/")
    assert no_rule.status_code == 404
    assert 'Rule "Checks" of the ON_SUCCESS condition of stage "Deploy"' in \
        no_rule.json()["detail"]
    assert client.get(_log_path(execution), {"ruleExecutionId": "nope"}).status_code == 404
    beyond = client.get(_log_path(execution), {"offset": 10**9})
    assert beyond.status_code == 400
    assert beyond.json()["errors"][0]["path"] == "offset"


@pytest.mark.parametrize("who", ["viewer", "outsider"])
def test_the_gate_links_the_rules_log_for_those_who_may_view_it(cdriver, settings, who,
                                                               request):
    execution = _ran(cdriver, settings, "echo on-the-dashboard")
    user = request.getfixturevalue(who)
    client = Client()
    client.force_login(user)
    page = client.get(f"/pipelines/gated/executions/{execution.number}/")
    log = client.get(f"/pipelines/gated/executions/{execution.number}/stages/Deploy/"
                     "conditions/BEFORE_ENTRY/rules/Checks/log/")
    if who == "outsider":
        assert page.status_code == 403 and log.status_code == 403
        return
    rule_row = RuleExecution.objects.get()
    link = (f'href="/pipelines/gated/executions/{execution.number}/stages/Deploy/conditions/'
            f'BEFORE_ENTRY/rules/Checks/log/?ruleExecutionId={rule_row.rule_execution_id}"')
    assert link in page.content.decode()
    assert log.status_code == 200
    assert "on-the-dashboard" in b"".join(log.streaming_content).decode()


def test_a_rule_that_never_ran_commands_has_no_log_link(cdriver, settings, viewer):
    from tests.conditions.conftest import check

    pipeline = gated_pipeline(beforeEntry=condition("FAIL", check("#{variables.gate}")))
    execution = cdriver.start(pipeline)
    cdriver.run()
    client = Client()
    client.force_login(viewer)
    page = client.get(f"/pipelines/gated/executions/{execution.number}/").content.decode()
    assert 'class="rule"' in page and "rule-log" not in page
