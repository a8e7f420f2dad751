"""Stage-condition rule providers: pure evaluation of one rule, tested alone.

A provider answers ``evaluate(inp) -> Outcome``; it touches no database. The
engine records the outcome as a rule execution and, when ``status`` is
``InProgress``, evaluates again at ``recheck_at`` (a deployment window not
open yet, a metric not good yet within its WaitTime) until the rule's timeout
(``timeoutInMinutes``, default ``DEFAULT_TIMEOUT_MINUTES``) fails it.

Providers (category ``Rule``, owner ``AWS``, version ``1``, as CodePipeline):

- ``VariableCheck``: ``Variable`` (a ``#{Namespace.Name}`` reference, resolved
  before evaluation), ``Value``, ``Operator`` ``EQ`` | ``NE`` | ``CONTAINS`` |
  ``MATCHES`` (the whole value matches the regular expression, as Java's
  ``String.matches``).
- ``DeploymentWindow``: ``Cron`` (AWS's form, see ``runners.cron``),
  ``TimeZone``. Outside the window the rule waits for the next opening
  (re-checked at that minute) until its timeout, default 7 days.
- ``Metrics`` (Conveyor's stand-in for ``CloudWatchAlarm``): either
  ``PrometheusUrl`` + ``Query`` (an instant PromQL query) + ``Operator``
  (``LT`` ``LE`` ``GT`` ``GE`` ``EQ`` ``NE``) + ``Threshold``: every sample
  must compare true (no sample: ``NoData``, ``FAIL`` by default or
  ``SUCCEED``); or ``AlertmanagerUrl`` + ``Matchers`` (``name=value``,
  ``name!=value``, ``name=~re``, ``name!~re``, comma separated): succeeds
  when no firing (active, unsilenced, uninhibited) alert matches. ``WaitTime``
  (minutes, like CloudWatchAlarm's): while the check fails it is re-checked
  every minute until WaitTime has passed. ``TimeoutSeconds`` bounds each HTTP
  request (default 10).
- ``Webhook`` (Conveyor's stand-in for ``LambdaInvoke``): POSTs the rule's
  context as JSON, signed like the Webhook action (``X-Conveyor-Signature-256``,
  HMAC-SHA256 with ``Secret`` or ``SecretName``); a 2xx answer
  ``{"status": "Succeeded" | "Failed", "summary": "..."}`` decides; anything
  else fails the rule with the reason. ``UserParameters`` is passed on.
- ``Commands``: the rule's ``commands`` run by the Commands action's runner
  (``runners.commands``: one shell session, the same sandbox and limits), in a fresh
  workspace holding the rule's first input artifact; exit status 0 of every command
  succeeds.
"""

from __future__ import annotations

import json
import math
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from config import outbound
from pipelines import providers
from runners import cron
from runners.base import ActionFailed, LogWriter, RunContext
from runners.checks import configuration_of

SUCCEEDED, FAILED, IN_PROGRESS = "Succeeded", "Failed", "InProgress"
DEFAULT_TIMEOUT_MINUTES = 60
MAX_ANSWER_BYTES = 1 << 20
SIGNATURE_HEADER = "X-Conveyor-Signature-256"
WATCH_SECONDS = 1.0


@dataclass
class Outcome:
    """One evaluation: Succeeded, Failed, or InProgress (evaluate again at ``recheck_at``)."""

    status: str
    summary: str
    recheck_at: datetime | None = None


@dataclass
class RuleInput:
    """What a rule may use. ``rule`` is its declaration with references resolved."""

    rule: dict[str, Any]
    now: datetime
    started_at: datetime
    pipeline_name: str = ""
    stage_name: str = ""
    pipeline_execution_id: str = ""
    rule_execution_id: str = ""
    condition_type: str = ""  # BEFORE_ENTRY | ON_SUCCESS | ON_FAILURE
    variables: dict[str, str] = field(default_factory=dict)
    workspace: Path | None = None
    input_dirs: dict[str, Path] = field(default_factory=dict)
    log: LogWriter | None = None
    deadline: datetime | None = None
    # True once the rule's condition has ended elsewhere: a running rule stops.
    should_abandon: Callable[[], bool] | None = None

    @property
    def configuration(self) -> dict[str, str]:
        return configuration_of(self.rule)


class RuleProvider:
    provider: ClassVar[str] = ""
    description: ClassVar[str] = ""
    can_skip: ClassVar[bool] = False
    default_timeout_minutes: ClassVar[int] = DEFAULT_TIMEOUT_MINUTES
    required: ClassVar[tuple[str, ...]] = ()
    allowed: ClassVar[tuple[str, ...]] = ()

    def check(self, rule: dict) -> list[tuple[str, str]]:
        """(relative path, message) pairs for the rule's configuration; no network."""
        config = configuration_of(rule)
        problems = [(f"configuration.{k}", "is required") for k in self.required
                    if not config.get(k)]
        for key in config:
            if self.allowed and key not in self.allowed:
                problems.append((f"configuration.{key}", f'"{key}" is not a setting of '
                                 f"{self.provider}: use " + ", ".join(self.allowed)))
        if "commands" in rule and self.provider != "Commands":
            problems.append(("commands", f"only a Commands rule runs commands, not "
                             f"{self.provider}"))
        return problems + self.check_more(config, rule)

    def check_more(self, config: dict[str, str], rule: dict) -> list[tuple[str, str]]:
        return []

    def evaluate(self, inp: RuleInput) -> Outcome:
        raise NotImplementedError


_registry: dict[str, RuleProvider] = {}


def register(cls: type[RuleProvider]) -> type[RuleProvider]:
    instance = cls()
    _registry[cls.provider] = instance
    providers.register_rule(cls.provider, instance.check, cls.description, cls.can_skip)
    return cls


def get(provider: str) -> RuleProvider | None:
    return _registry.get(provider)


def registered() -> list[str]:
    return sorted(_registry)


def timeout_minutes(rule: dict) -> int:
    """The rule's timeout: its ``timeoutInMinutes``, else its provider's default."""
    value = rule.get("timeoutInMinutes")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    provider = get((rule.get("ruleTypeId") or {}).get("provider", ""))
    return provider.default_timeout_minutes if provider else DEFAULT_TIMEOUT_MINUTES


def _unresolved(text: str) -> bool:
    return "#{" in text


# --- VariableCheck ---------------------------------------------------------------

OPERATORS = ("EQ", "NE", "CONTAINS", "MATCHES")


@register
class VariableCheck(RuleProvider):
    provider = "VariableCheck"
    description = "Compares a variable with a value: EQ, NE, CONTAINS, MATCHES."
    can_skip = True
    required = ("Variable", "Value", "Operator")
    allowed = ("Variable", "Value", "Operator")

    def check_more(self, config, rule):
        problems = []
        op = config.get("Operator")
        if op and op not in OPERATORS:
            problems.append(("configuration.Operator",
                             f'"{op}" is not an operator: use ' + ", ".join(OPERATORS)))
        if op == "MATCHES" and config.get("Value") and not _unresolved(config["Value"]):
            try:
                re.compile(config["Value"])
            except re.error as exc:
                problems.append(("configuration.Value", f"is not a regular expression: {exc}"))
        return problems

    def evaluate(self, inp: RuleInput) -> Outcome:
        config = inp.configuration
        actual, expected, op = config.get("Variable", ""), config.get("Value", ""), \
            config.get("Operator", "")
        if _unresolved(actual):
            return Outcome(FAILED, f"Variable {actual} has no value in this execution")
        if op == "EQ":
            ok = actual == expected
        elif op == "NE":
            ok = actual != expected
        elif op == "CONTAINS":
            ok = expected in actual
        elif op == "MATCHES":
            try:
                ok = re.fullmatch(expected, actual) is not None
            except re.error as exc:
                return Outcome(FAILED, f'Value "{expected}" is not a regular expression: {exc}')
        else:
            return Outcome(FAILED, f'"{op}" is not an operator: use ' + ", ".join(OPERATORS))
        shown = actual if len(actual) <= 200 else actual[:200] + "…"
        if ok:
            return Outcome(SUCCEEDED, f'"{shown}" {op} "{expected}": true')
        return Outcome(FAILED, f'"{shown}" {op} "{expected}": false')


# --- DeploymentWindow ---------------------------------------------------------------


@register
class DeploymentWindow(RuleProvider):
    provider = "DeploymentWindow"
    description = ("Succeeds inside a cron window (AWS's 6/7-field form); outside it, waits "
                   "for the next opening until the rule's timeout.")
    required = ("Cron",)
    allowed = ("Cron", "TimeZone")
    default_timeout_minutes = 7 * 24 * 60  # a weekend and a holiday fit in it

    def check_more(self, config, rule):
        problems = []
        if config.get("Cron"):
            try:
                cron.parse(config["Cron"])
            except cron.CronError as exc:
                problems.append(("configuration.Cron", str(exc)))
        if config.get("TimeZone"):
            try:
                cron.zone(config["TimeZone"])
            except cron.CronError as exc:
                problems.append(("configuration.TimeZone", str(exc)))
        return problems

    def evaluate(self, inp: RuleInput) -> Outcome:
        config = inp.configuration
        try:
            window = cron.parse(config.get("Cron", ""))
            tz = cron.zone(config.get("TimeZone"))
        except cron.CronError as exc:
            return Outcome(FAILED, str(exc))
        local = inp.now.astimezone(tz)
        where = config.get("TimeZone") or "UTC"
        if window.matches(local):
            return Outcome(SUCCEEDED, f"{local:%Y-%m-%d %H:%M} {where} is inside the window "
                           f"{config['Cron']}")
        opening = window.next_opening(local.replace(tzinfo=None))
        if opening is None:
            return Outcome(FAILED, f"The window {config['Cron']} does not open in the next "
                           "two years")
        opens_at = opening.replace(tzinfo=tz)
        if inp.deadline is not None and opens_at > inp.deadline:
            return Outcome(FAILED, f"Outside the window {config['Cron']}: it opens at "
                           f"{opening:%Y-%m-%d %H:%M} {where}, after the rule's timeout")
        return Outcome(IN_PROGRESS, f"Waiting for the window {config['Cron']}: it opens at "
                       f"{opening:%Y-%m-%d %H:%M} {where}", recheck_at=opens_at)


# --- HTTP helpers -------------------------------------------------------------------


class _Unanswered(Exception):
    """No usable HTTP answer; the message says why."""


def _http(url: str, *, timeout: float, data: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET (or POST ``data``) through ``config.outbound``: the server's one outbound policy
    (private addresses refused unless CONVEYOR_OUTBOUND_ALLOW lists them, no redirects)."""
    try:
        answer = outbound.request("POST" if data is not None else "GET", url, body=data,
                                  headers={"User-Agent": "Conveyor", **(headers or {})},
                                  timeout=timeout, max_bytes=MAX_ANSWER_BYTES)
    except outbound.OutboundRefused as exc:
        raise _Unanswered(f"Refused to call {url}: {exc}") from None
    except TimeoutError:
        raise _Unanswered(f"{url} did not answer within {timeout:g} s") from None
    except (OSError, ValueError) as exc:
        raise _Unanswered(f"Cannot reach {url}: {exc}") from None
    if answer.status >= 400:
        detail = outbound.excerpt(answer.body, 300)
        raise _Unanswered(f"{url} answered {answer.status} {answer.reason}"
                          + (f": {detail}" if detail else ""))
    return answer.status, answer.body


def _http_url_problem(key: str, value: str | None) -> list[tuple[str, str]]:
    if value and not _unresolved(value) and not value.startswith(("http://", "https://")):
        return [(f"configuration.{key}", f'"{value}" is not an http(s) URL')]
    return []


def _seconds(config: dict[str, str], key: str, default: float) -> float:
    raw = config.get(key, "")
    return float(raw) if raw.isdigit() and 1 <= int(raw) <= 300 else default


# --- Metrics ------------------------------------------------------------------------

COMPARISONS = {"LT": (math.isfinite, lambda a, b: a < b, "<"),
               "LE": (math.isfinite, lambda a, b: a <= b, "<="),
               "GT": (math.isfinite, lambda a, b: a > b, ">"),
               "GE": (math.isfinite, lambda a, b: a >= b, ">="),
               "EQ": (math.isfinite, lambda a, b: a == b, "=="),
               "NE": (math.isfinite, lambda a, b: a != b, "!=")}
MATCHER_RE = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


def parse_matchers(text: str) -> list[tuple[str, str, str]]:
    """``a=b, c=~d.*`` as [(label, op, value)]; raises ValueError naming the bad one."""
    out = []
    for part in [p for p in text.split(",") if p.strip()]:
        m = MATCHER_RE.match(part)
        if not m:
            raise ValueError(f'"{part.strip()}" is not a matcher: use label=value, '
                             "label!=value, label=~regex or label!~regex")
        label, op, value = m.groups()
        out.append((label, op, value.strip('"')))
    if not out:
        raise ValueError("names no matcher")
    return out


def _matches(labels: dict, matchers: list[tuple[str, str, str]]) -> bool:
    for label, op, value in matchers:
        actual = str(labels.get(label, ""))
        if op == "=" and actual != value or op == "!=" and actual == value:
            return False
        if op == "=~" and not re.fullmatch(value, actual):
            return False
        if op == "!~" and re.fullmatch(value, actual):
            return False
    return True


@register
class Metrics(RuleProvider):
    provider = "Metrics"
    description = ("A Prometheus instant query compared with a threshold, or no firing "
                   "Alertmanager alert matching labels (Conveyor's CloudWatchAlarm).")
    allowed = ("PrometheusUrl", "Query", "Operator", "Threshold", "NoData",
               "AlertmanagerUrl", "Matchers", "WaitTime", "TimeoutSeconds")

    def check_more(self, config, rule):
        problems = []
        prom, am = config.get("PrometheusUrl"), config.get("AlertmanagerUrl")
        if bool(prom) == bool(am):
            problems.append(("configuration", "give PrometheusUrl (with Query, Operator, "
                             "Threshold) or AlertmanagerUrl (with Matchers), one of them"))
        problems += _http_url_problem("PrometheusUrl", prom)
        problems += _http_url_problem("AlertmanagerUrl", am)
        if prom:
            for key in ("Query", "Operator", "Threshold"):
                if not config.get(key):
                    problems.append((f"configuration.{key}", "is required with PrometheusUrl"))
            op = config.get("Operator")
            if op and op not in COMPARISONS:
                problems.append(("configuration.Operator", f'"{op}" is not an operator: use '
                                 + ", ".join(COMPARISONS)))
            threshold = config.get("Threshold")
            if threshold and not _unresolved(threshold):
                try:
                    float(threshold)
                except ValueError:
                    problems.append(("configuration.Threshold", f'"{threshold}" is not a number'))
            if config.get("NoData", "FAIL") not in ("FAIL", "SUCCEED"):
                problems.append(("configuration.NoData", "use FAIL or SUCCEED"))
        if am:
            if not config.get("Matchers"):
                problems.append(("configuration.Matchers", "is required with AlertmanagerUrl"))
            else:
                try:
                    parse_matchers(config["Matchers"])
                except ValueError as exc:
                    problems.append(("configuration.Matchers", str(exc)))
        wait = config.get("WaitTime")
        if wait and not (wait.isdigit() and int(wait) <= 86400):
            problems.append(("configuration.WaitTime", f'"{wait}" is not a whole number of '
                             "minutes"))
        seconds = config.get("TimeoutSeconds")
        if seconds and not (seconds.isdigit() and 1 <= int(seconds) <= 300):
            problems.append(("configuration.TimeoutSeconds", "is a whole number of seconds "
                             "from 1 to 300"))
        return problems

    def evaluate(self, inp: RuleInput) -> Outcome:
        config = inp.configuration
        timeout = _seconds(config, "TimeoutSeconds", 10.0)
        try:
            if config.get("PrometheusUrl"):
                ok, summary = self.prometheus(config, timeout)
            else:
                ok, summary = self.alertmanager(config, timeout)
        except _Unanswered as exc:
            ok, summary = False, str(exc)
        if ok:
            return Outcome(SUCCEEDED, summary)
        wait = int(config["WaitTime"]) if config.get("WaitTime", "").isdigit() else 0
        until = inp.started_at + timedelta(minutes=wait)
        if inp.now < until:
            recheck = min(inp.now + timedelta(minutes=1), until)
            return Outcome(IN_PROGRESS, f"{summary}; checking again until "
                           f"{until:%H:%M:%S} UTC (WaitTime {wait} min)", recheck_at=recheck)
        return Outcome(FAILED, summary)

    def prometheus(self, config: dict[str, str], timeout: float) -> tuple[bool, str]:
        base = config["PrometheusUrl"].rstrip("/")
        query = config.get("Query", "")
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        _, body = _http(url, timeout=timeout)
        try:
            data = json.loads(body)
            assert data.get("status") == "success"
            result_type = data["data"]["resultType"]
            result = data["data"]["result"]
        except (ValueError, KeyError, TypeError, AssertionError, AttributeError):
            raise _Unanswered(f"{base} did not answer a Prometheus query result") from None
        if result_type in ("scalar", "string"):
            samples = [({}, result[1])]
        elif result_type == "vector":
            samples = [(s.get("metric") or {}, s["value"][1]) for s in result]
        else:
            raise _Unanswered(f"the query gives a {result_type}, not an instant vector or "
                              "scalar")
        op = config.get("Operator", "")
        _, compare, symbol = COMPARISONS[op]
        threshold = float(config.get("Threshold", "nan"))
        if not samples:
            good = config.get("NoData", "FAIL") == "SUCCEED"
            return good, f"{query} returned no sample (NoData {config.get('NoData', 'FAIL')})"
        bad = []
        for labels, raw in samples:
            value = float(raw)
            if not compare(value, threshold):
                name = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or query
                bad.append(f"{name} = {value:g}")
        if bad:
            return False, (f"{query}: {len(bad)} of {len(samples)} sample(s) not {symbol} "
                           f"{threshold:g}: " + "; ".join(bad[:5]))
        values = ", ".join(f"{float(raw):g}" for _, raw in samples[:5])
        return True, f"{query} = {values} ({symbol} {threshold:g})"

    def alertmanager(self, config: dict[str, str], timeout: float) -> tuple[bool, str]:
        base = config["AlertmanagerUrl"].rstrip("/")
        matchers = parse_matchers(config.get("Matchers", ""))
        params = [("active", "true"), ("silenced", "false"), ("inhibited", "false")]
        params += [("filter", f'{label}{op}"{value}"') for label, op, value in matchers]
        _, body = _http(f"{base}/api/v2/alerts?" + urllib.parse.urlencode(params),
                        timeout=timeout)
        try:
            alerts = json.loads(body)
            assert isinstance(alerts, list)
        except (ValueError, AssertionError):
            raise _Unanswered(f"{base} did not answer a list of alerts") from None
        # Filter again here: the answer decides only through what it says, and a server
        # that ignores a filter must not let a firing alert through.
        firing = [a for a in alerts if isinstance(a, dict)
                  and (a.get("status") or {}).get("state", "active") == "active"
                  and _matches(a.get("labels") or {}, matchers)]
        shown = config.get("Matchers", "")
        if firing:
            names = ", ".join(sorted({str((a.get("labels") or {}).get("alertname", "?"))
                                      for a in firing}))
            return False, f"{len(firing)} alert(s) firing matching {shown}: {names}"
        return True, f"No alert firing matching {shown}"


# --- Webhook ------------------------------------------------------------------------


@register
class WebhookRule(RuleProvider):
    provider = "Webhook"
    description = ("POSTs the rule's context, signed; the answer's status decides "
                   "(Conveyor's LambdaInvoke).")
    can_skip = True
    required = ("Url",)
    allowed = ("Url", "Secret", "SecretName", "TimeoutSeconds", "UserParameters")

    def check_more(self, config, rule):
        problems = _http_url_problem("Url", config.get("Url"))
        if config.get("Secret") and config.get("SecretName"):
            problems.append(("configuration.SecretName", "give Secret or SecretName, not both"))
        seconds = config.get("TimeoutSeconds")
        if seconds and not (seconds.isdigit() and 1 <= int(seconds) <= 300):
            problems.append(("configuration.TimeoutSeconds", "is a whole number of seconds "
                             "from 1 to 300"))
        return problems

    def body(self, inp: RuleInput) -> dict:
        return {
            "rule": {"name": inp.rule.get("name"), "provider": self.provider,
                     "ruleExecutionId": inp.rule_execution_id,
                     "conditionType": inp.condition_type},
            "pipeline": {"name": inp.pipeline_name},
            "execution": {"id": inp.pipeline_execution_id},
            "stage": {"name": inp.stage_name},
            "userParameters": inp.configuration.get("UserParameters", ""),
            "variables": inp.variables,
        }

    def evaluate(self, inp: RuleInput) -> Outcome:
        from runners.shell import secret_value
        from runners.webhook import sign

        config = inp.configuration
        url = config.get("Url", "")
        if not url.startswith(("http://", "https://")):
            return Outcome(FAILED, f'Url "{url}" is not an http(s) URL')
        try:
            secret = secret_value(config["SecretName"]) if config.get("SecretName") \
                else config.get("Secret", "")
        except ActionFailed as exc:
            return Outcome(FAILED, exc.summary)
        body = json.dumps(self.body(inp)).encode()
        headers = {"Content-Type": "application/json",
                   "X-Conveyor-Delivery": inp.rule_execution_id}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        try:
            _, text = _http(url, timeout=_seconds(config, "TimeoutSeconds", 30.0), data=body,
                            headers=headers)
        except _Unanswered as exc:
            return Outcome(FAILED, str(exc))
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        status = data.get("status") if isinstance(data, dict) else None
        if status not in (SUCCEEDED, FAILED):
            return Outcome(FAILED, f'{url} did not decide: its answer has no "status" of '
                           '"Succeeded" or "Failed"')
        summary = data.get("summary")
        summary = summary[:2000] if isinstance(summary, str) and summary else \
            f"{url} answered {status}"
        return Outcome(status, summary)


# --- Commands -----------------------------------------------------------------------


@register
class CommandsRule(RuleProvider):
    provider = "Commands"
    description = "Runs the rule's commands like the Commands action; exit status decides."
    allowed = ()

    def check(self, rule: dict) -> list[tuple[str, str]]:
        problems = []
        config = rule.get("configuration")
        if isinstance(config, dict) and config:
            problems.append(("configuration", "a Commands rule takes no configuration: its "
                             "commands are in commands"))
        commands = rule.get("commands")
        if not commands:
            problems.append(("commands", "is required: the commands to run"))
        elif isinstance(commands, list):
            for i, command in enumerate(commands):
                if isinstance(command, str) and "\n" in command:
                    problems.append((f"commands[{i}]", "is one line: write each command as "
                                     "its own item"))
        return problems

    def evaluate(self, inp: RuleInput) -> Outcome:
        # The Commands action's runner: one shell session in the same sandbox, with the
        # same environment and limits (its default compute type), so a rule's commands
        # are exactly as isolated as a Commands action's (docs/conditions.md §2).
        from runners.commands import CommandsRunner

        if inp.workspace is None or inp.log is None:
            return Outcome(FAILED, "No workspace to run the commands in")
        inp.workspace.mkdir(parents=True, exist_ok=True)
        action = {"name": inp.rule.get("name", ""), "commands": inp.rule.get("commands") or [],
                  "configuration": {}}
        ctx = RunContext(
            pipeline_name=inp.pipeline_name, pipeline_execution_id=inp.pipeline_execution_id,
            execution_number=0, pipeline_version=0, stage_name=inp.stage_name,
            action_name=inp.rule.get("name", ""), action_execution_id=inp.rule_execution_id,
            attempt=1, category="Rule", provider="Commands", action=action,
            variables=inp.variables, input_dirs=inp.input_dirs, output_dirs={},
            workspace=inp.workspace, log=inp.log, deadline=inp.deadline,
        )
        done = threading.Event()

        def watch() -> None:
            # The rule's timeout, and its condition ending meanwhile (a stop, an override,
            # a newer execution): stop between commands and kill the running one.
            while not done.is_set():
                if inp.deadline is not None and datetime.now(inp.deadline.tzinfo) >= \
                        inp.deadline:
                    ctx.request_stop(f"the rule timed out after {timeout_minutes(inp.rule)} min")
                elif inp.should_abandon is not None and inp.should_abandon():
                    ctx.request_stop("its condition ended while the rule ran")
                if ctx.should_stop():
                    ctx.kill_process_groups()
                    return
                done.wait(WATCH_SECONDS)

        watcher = threading.Thread(target=watch, name="conveyor-rule-watch", daemon=True)
        watcher.start()
        try:
            result = CommandsRunner().run(ctx)
        except ActionFailed as exc:
            return Outcome(FAILED, exc.summary)
        finally:
            done.set()
            watcher.join(5)
        if ctx.should_stop():
            return Outcome(FAILED, f"Stopped: {ctx.stop_reason}")
        return Outcome(SUCCEEDED, result.summary)
