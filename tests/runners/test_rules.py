"""The stage-condition rule providers, evaluated alone (no database).

The Metrics and Webhook rules talk HTTP to a local server standing in for
Prometheus, Alertmanager and a decision service: the edge of the world. The
stand-in answers the documented shapes of Prometheus' HTTP API
(``GET /api/v1/query`` → ``{"status": "success", "data": {"resultType":
"vector", "result": [{"metric": {...}, "value": [ts, "1.5"]}]}}``) and of
Alertmanager's API v2 (``GET /api/v2/alerts`` → a list of alerts with
``labels`` and ``status.state``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from runners import cron, rules
from runners.base import LogWriter

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)  # a Thursday


def rule(provider: str, configuration: dict | None = None, **more) -> dict:
    return {"name": "r", "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                        "provider": provider, "version": "1"},
            "configuration": configuration or {}, **more}


def evaluate(doc: dict, now: datetime = NOW, started: datetime | None = None, **more):
    provider = rules.get(doc["ruleTypeId"]["provider"])
    return provider.evaluate(rules.RuleInput(rule=doc, now=now, started_at=started or now,
                                             **more))


# --- VariableCheck -------------------------------------------------------------------


@pytest.mark.parametrize(("operator", "value", "status"), [
    ("EQ", "main", "Succeeded"), ("EQ", "mai", "Failed"),
    ("NE", "release", "Succeeded"), ("NE", "main", "Failed"),
    ("CONTAINS", "ai", "Succeeded"), ("CONTAINS", "x", "Failed"),
    ("MATCHES", "ma.n", "Succeeded"), ("MATCHES", "ma", "Failed"),  # the whole value matches
])
def test_variable_check_compares_the_resolved_variable_with_each_operator(operator, value,
                                                                         status):
    outcome = evaluate(rule("VariableCheck", {"Variable": "main", "Value": value,
                                              "Operator": operator}))
    assert outcome.status == status
    assert operator in outcome.summary and "main" in outcome.summary


def test_variable_check_fails_when_the_variable_has_no_value():
    outcome = evaluate(rule("VariableCheck", {"Variable": "#{Source.Branch}", "Value": "main",
                                              "Operator": "EQ"}))
    assert outcome.status == "Failed"
    assert "#{Source.Branch} has no value" in outcome.summary


def test_variable_check_configuration_errors_name_the_key():
    problems = rules.get("VariableCheck").check(
        rule("VariableCheck", {"Variable": "x", "Operator": "LIKE", "Colour": "red"}))
    assert ("configuration.Value", "is required") in problems
    assert ("configuration.Operator", '"LIKE" is not an operator: use EQ, NE, CONTAINS, '
            "MATCHES") in problems
    assert any(p == "configuration.Colour" for p, _ in problems)


# --- cron and DeploymentWindow ----------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(("moment", "inside"), [
    ("2026-12-03T09:00", True), ("2026-12-03T17:59", True),  # the whole hour 17
    ("2026-12-03T18:00", False), ("2026-12-03T08:59", False),
    ("2026-12-05T10:00", False),  # Saturday
])
def test_the_aws_example_window_covers_working_hours_on_weekdays(moment, inside):
    assert cron.parse("0 0 9-17 ? * MON-FRI *").matches(at(moment)) is inside


@pytest.mark.parametrize(("expression", "moment", "inside"), [
    ("* 0-29 9 ? * * *", "2026-12-03T09:29", True),
    ("* 0-29 9 ? * * *", "2026-12-03T09:30", False),
    ("0 0 * L * ? *", "2026-12-31T12:00", True),       # last day of the month
    ("0 0 * L * ? *", "2026-12-30T12:00", False),
    ("0 0 * L-1 * ? *", "2026-12-30T12:00", True),
    ("0 0 * 5W * ? *", "2026-12-04T12:00", True),      # Dec 5 2026 is a Saturday: Friday 4
    ("0 0 * 5W * ? *", "2026-12-05T12:00", False),
    ("0 0 * 1W * ? *", "2026-08-03T12:00", True),      # Aug 1 2026 is a Saturday: Monday 3
    ("0 0 * LW * ? *", "2027-01-29T12:00", True),      # Jan 31 2027 is a Sunday: Friday 29
    ("0 0 * ? * 6L *", "2026-12-25T12:00", True),      # the last Friday of December
    ("0 0 * ? * 6L *", "2026-12-18T12:00", False),
    ("0 0 * ? * 2#1 *", "2026-12-07T12:00", True),     # the first Monday
    ("0 0 * ? * 2#1 *", "2026-12-14T12:00", False),
    ("0 0 * ? DEC-FEB * 2027", "2026-12-07T12:00", False),  # year
    ("0 0 22-5 ? * * *", "2026-12-07T02:10", True),   # overnight, wrapping around
    ("0 0 22-5 ? * * *", "2026-12-07T12:10", False),
    ("0 0 * ? * FRI-MON *", "2026-12-06T12:10", True),  # Sunday
    ("0 0 * ? * FRI-MON *", "2026-12-08T12:10", False),  # Tuesday
    ("0 0 */6 ? * * *", "2026-12-07T06:10", True),
    ("0 0 */6 ? * * *", "2026-12-07T07:10", False),
])
def test_cron_special_characters_select_the_right_days(expression, moment, inside):
    assert cron.parse(expression).matches(at(moment)) is inside


@pytest.mark.parametrize(("expression", "message"), [
    ("0 9 * * *", "has 5 fields: use 6 or 7"),
    ("0 0 9 * * MON *", 'one of Day-of-month and Day-of-week must be "?"'),
    ("0 0 25 ? * * *", "Hours: 25 is outside 0-23"),
    ("0 0 9 ? FOO * *", 'Month: "FOO" is not a number or a name'),
    ("0 0 9 ? * 2#6 *", "Day-of-week: \"2#6\" needs 1-5 after #"),
    ("0 0 9 ? * * 2030-2027", "Year: \"2030-2027\" is a range that ends before it starts"),
])
def test_a_bad_cron_expression_is_refused_naming_the_field(expression, message):
    with pytest.raises(cron.CronError, match=message.replace("(", r"\(")):
        cron.parse(expression)


def test_deployment_window_succeeds_inside_the_window_in_its_time_zone():
    # 10:30 UTC is 11:30 in Paris: inside 11:00-11:59 there, outside in UTC.
    doc = rule("DeploymentWindow", {"Cron": "0 0 11 ? * * *", "TimeZone": "Europe/Paris"})
    assert evaluate(doc).status == "Succeeded"
    assert evaluate(rule("DeploymentWindow", {"Cron": "0 0 11 ? * * *"})).status != "Succeeded"
    assert evaluate(rule("DeploymentWindow", {"Cron": "0 0 16 ? * * *",
                                              "TimeZone": "UTC+05:30"})).status == "Succeeded"


def test_outside_the_window_the_rule_waits_for_the_next_opening():
    doc = rule("DeploymentWindow", {"Cron": "0 0 9-17 ? * MON-FRI *"})
    friday_night = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    outcome = evaluate(doc, now=friday_night, deadline=friday_night + timedelta(days=7))
    assert outcome.status == "InProgress"
    assert outcome.recheck_at == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday 09:00
    assert "opens at 2026-12-07 09:00 UTC" in outcome.summary


def test_a_window_that_opens_after_the_rule_timeout_fails_at_once():
    doc = rule("DeploymentWindow", {"Cron": "0 0 9-17 ? * MON-FRI *"})
    friday_night = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    outcome = evaluate(doc, now=friday_night, deadline=friday_night + timedelta(hours=1))
    assert outcome.status == "Failed"
    assert "after the rule's timeout" in outcome.summary


def test_deployment_window_checks_cron_and_time_zone_at_validation():
    problems = rules.get("DeploymentWindow").check(
        rule("DeploymentWindow", {"Cron": "0 9 * * *", "TimeZone": "Mars/Olympus"}))
    assert [p for p, _ in problems] == ["configuration.Cron", "configuration.TimeZone"]


# --- a local HTTP server standing in for Prometheus, Alertmanager, a decider -------------


class StandIn:
    def __init__(self):
        self.routes: dict[str, tuple[int, object]] = {}
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                time.sleep(outer.delay)
                code, data = outer.routes.get(urllib.parse.urlsplit(self.path).path,
                                              (404, {"error": "no route"}))
                raw = data if isinstance(data, bytes) else json.dumps(data).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except BrokenPipeError:  # the timeout test's client has gone
                    pass

            do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def query(self, index: int = -1) -> dict:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.requests[index][1]).query)


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.server.shutdown()
    server.server.server_close()


def vector(*samples: tuple[dict, str]) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1764757800.0, value]} for labels, value in samples]}}


def prometheus_rule(url: str, **config) -> dict:
    return rule("Metrics", {"PrometheusUrl": url, "Query": "sum(rate(http_errors[5m]))",
                            "Operator": "LT", "Threshold": "0.05", **config})


def test_metrics_rule_succeeds_when_every_sample_is_under_the_threshold(stand_in):
    stand_in.routes["/api/v1/query"] = (200, vector(({"job": "api"}, "0.01"),
                                                   ({"job": "web"}, "0.02")))
    outcome = evaluate(prometheus_rule(stand_in.url))
    assert outcome.status == "Succeeded", outcome.summary
    assert stand_in.query()["query"] == ["sum(rate(http_errors[5m]))"]


def test_metrics_rule_fails_naming_the_sample_over_the_threshold(stand_in):
    stand_in.routes["/api/v1/query"] = (200, vector(({"job": "api"}, "0.01"),
                                                   ({"job": "web"}, "0.2")))
    outcome = evaluate(prometheus_rule(stand_in.url))
    assert outcome.status == "Failed"
    assert "1 of 2 sample(s) not < 0.05: job=web = 0.2" in outcome.summary


def test_metrics_rule_without_samples_follows_no_data(stand_in):
    stand_in.routes["/api/v1/query"] = (200, vector())
    assert evaluate(prometheus_rule(stand_in.url)).status == "Failed"
    assert evaluate(prometheus_rule(stand_in.url, NoData="SUCCEED")).status == "Succeeded"


def test_metrics_rule_within_wait_time_checks_again_then_fails(stand_in):
    stand_in.routes["/api/v1/query"] = (200, vector(({}, "0.5")))
    doc = prometheus_rule(stand_in.url, WaitTime="5")
    waiting = evaluate(doc, now=NOW + timedelta(minutes=1), started=NOW)
    assert waiting.status == "InProgress"
    assert waiting.recheck_at == NOW + timedelta(minutes=2)
    assert evaluate(doc, now=NOW + timedelta(minutes=5), started=NOW).status == "Failed"


def test_metrics_rule_fails_when_prometheus_cannot_answer(stand_in):
    stand_in.routes["/api/v1/query"] = (503, {"status": "error", "error": "overloaded"})
    outcome = evaluate(prometheus_rule(stand_in.url))
    assert outcome.status == "Failed" and "answered 503" in outcome.summary
    outcome = evaluate(prometheus_rule("http://127.0.0.1:9"))
    assert outcome.status == "Failed" and "Cannot reach" in outcome.summary


def test_metrics_rule_fails_while_a_matching_alert_fires(stand_in):
    stand_in.routes["/api/v2/alerts"] = (200, [
        {"labels": {"alertname": "HighLatency", "service": "api", "severity": "page"},
         "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
        {"labels": {"alertname": "DiskFull", "service": "db", "severity": "page"},
         "status": {"state": "active", "silencedBy": [], "inhibitedBy": []}},
    ])
    doc = rule("Metrics", {"AlertmanagerUrl": stand_in.url,
                           "Matchers": "service=api, severity=~page|ticket"})
    outcome = evaluate(doc)
    assert outcome.status == "Failed"
    assert "1 alert(s) firing" in outcome.summary and "HighLatency" in outcome.summary
    assert stand_in.query()["filter"] == ['service="api"', 'severity=~"page|ticket"']
    assert stand_in.query()["active"] == ["true"] and stand_in.query()["silenced"] == ["false"]
    quiet = rule("Metrics", {"AlertmanagerUrl": stand_in.url, "Matchers": "service=web"})
    assert evaluate(quiet).status == "Succeeded"


def test_metrics_rule_configuration_needs_one_source():
    problems = rules.get("Metrics").check(rule("Metrics", {"Query": "up"}))
    assert problems[0][0] == "configuration"
    problems = rules.get("Metrics").check(rule("Metrics", {
        "AlertmanagerUrl": "ftp://x", "Matchers": "service"}))
    assert ("configuration.AlertmanagerUrl", '"ftp://x" is not an http(s) URL') in problems
    assert any(p == "configuration.Matchers" for p, _ in problems)


# --- Webhook -------------------------------------------------------------------------


def test_webhook_rule_posts_a_signed_context_and_its_answer_decides(stand_in):
    stand_in.routes["/decide"] = (200, {"status": "Failed", "summary": "change freeze"})
    doc = rule("Webhook", {"Url": stand_in.url + "/decide", "Secret": "s3cret",
                           "UserParameters": "prod"})
    outcome = evaluate(doc, pipeline_name="shop", stage_name="Prod", rule_execution_id="re-1",
                       condition_type="BEFORE_ENTRY", variables={"Source.CommitId": "abc"})
    assert (outcome.status, outcome.summary) == ("Failed", "change freeze")
    _, _, headers, body = stand_in.requests[-1]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Conveyor-Signature-256"] == expected
    sent = json.loads(body)
    assert sent["stage"] == {"name": "Prod"} and sent["userParameters"] == "prod"
    assert sent["rule"]["conditionType"] == "BEFORE_ENTRY"
    stand_in.routes["/decide"] = (200, {"status": "Succeeded"})
    assert evaluate(doc).status == "Succeeded"


@pytest.mark.parametrize(("answer", "reason"), [
    ((200, {"ok": True}), 'has no "status"'),
    ((200, b"not json"), 'has no "status"'),
    ((500, {"status": "Succeeded"}), "answered 500"),
])
def test_webhook_rule_fails_on_an_answer_that_does_not_decide(stand_in, answer, reason):
    stand_in.routes["/decide"] = answer
    outcome = evaluate(rule("Webhook", {"Url": stand_in.url + "/decide"}))
    assert outcome.status == "Failed" and reason in outcome.summary


def test_webhook_rule_times_out_on_a_slow_answer(stand_in):
    stand_in.routes["/decide"] = (200, {"status": "Succeeded"})
    stand_in.delay = 2.5
    outcome = evaluate(rule("Webhook", {"Url": stand_in.url + "/decide",
                                        "TimeoutSeconds": "1"}))
    assert outcome.status == "Failed" and "did not answer within 1 s" in outcome.summary


# --- Commands ------------------------------------------------------------------------


def commands_input(tmp_path, commands: list[str], deadline: datetime | None = None,
                   now: datetime | None = None):
    doc = rule("Commands", commands=commands)
    now = now or datetime.now(UTC)
    log = LogWriter(tmp_path / "rule.log")
    return doc, dict(now=now, workspace=tmp_path / "ws", log=log, deadline=deadline,
                     variables={"Source.Branch": "main"})


def test_commands_rule_succeeds_when_every_command_exits_zero(tmp_path):
    doc, more = commands_input(tmp_path, ["test \"#{Source.Branch}\" = main", "true"])
    outcome = evaluate(doc, **more)
    assert (outcome.status, outcome.summary) == ("Succeeded", "2 commands succeeded")


def test_commands_rule_fails_naming_the_failing_command(tmp_path):
    doc, more = commands_input(tmp_path, ["true", "exit 3", "touch never"])
    outcome = evaluate(doc, **more)
    assert outcome.status == "Failed"
    assert outcome.summary == "Command 2 of 3 failed with exit code 3: exit 3"
    assert not (tmp_path / "ws" / "never").exists()


def test_commands_rule_is_killed_at_its_timeout(tmp_path):
    now = datetime.now(UTC)
    doc, more = commands_input(tmp_path, ["sleep 30"], deadline=now + timedelta(seconds=1),
                               now=now)
    started = time.monotonic()
    outcome = evaluate(doc, **more)
    assert outcome.status == "Failed"
    assert "timed out" in outcome.summary
    assert time.monotonic() - started < 10


def test_commands_rule_takes_commands_not_configuration():
    problems = rules.get("Commands").check(rule("Commands", {"X": "1"}))
    assert ("configuration", "a Commands rule takes no configuration: its commands are in "
            "commands") in problems
    assert any(p == "commands" for p, _ in problems)
