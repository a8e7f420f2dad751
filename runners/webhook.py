"""Invoke ``Webhook``: POST a signed job to a URL; the answer, or a later report, ends it.

Configuration: ``Url`` (http or https), ``Secret`` (the HMAC key; or
``SecretName``, a secret looked up like the Shell runner's SECRETS_MANAGER
variables, so the key need not sit in the definition), ``TimeoutSeconds``
(how long to wait for the HTTP answer, default ``"30"``). Other keys are
passed on in the job's ``configuration``.

The job is a JSON object::

    {"job": {"id", "token", "resultUrl", "expiresAt"},
     "pipeline": {"name", "version"}, "execution": {"id", "number"},
     "stage": {"name"}, "action": {"name", "category", "provider", "attempt"},
     "configuration": {...}, "variables": {...},
     "inputArtifacts": [{"name", "url"}]}

sent with ``Content-Type: application/json`` and ``X-Conveyor-Signature-256:
sha256=<hex HMAC-SHA256 of the body with the secret>`` (GitHub's scheme), so
the receiver can tell the job came from this Conveyor.

- A 2xx answer whose JSON has ``"status": "Succeeded"`` or ``"Failed"`` (with
  optional ``summary``, ``outputVariables``, ``externalExecutionUrl``) ends
  the action at once.
- Any other 2xx answer (202 Accepted, say) leaves the action waiting: the
  receiver reports later with ``POST /api/jobs/{token}/result`` and the same
  body. The token is good for one report and expires with the action's
  timeout (then the sweeper fails the action as timed out).
- A non-2xx answer, a redirect, no answer within ``TimeoutSeconds`` or no
  connection at all fails the action with the reason.

Job tokens are ``<action execution id hex><HMAC of it with SECRET_KEY>``:
the result endpoint can check one before the action's waiting state is even
stored, so a receiver that answers 202 and reports in the same millisecond
is not turned away.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import urllib.error
import urllib.request
import uuid

from django.conf import settings

from runners import register
from runners.base import ActionFailed, Result, RunContext, Runner, Waiting
from runners.checks import configuration_of
from runners.shell import SECRET_NAME_RE, secret_value

CONFIG_KEYS_USED = ("Url", "Secret", "SecretName", "TimeoutSeconds")
MAX_ANSWER_BYTES = 1 << 20
SIGNATURE_HEADER = "X-Conveyor-Signature-256"


# --- job tokens ------------------------------------------------------------------


def _token_mac(action_execution_id: str) -> str:
    key = hashlib.sha256(("conveyor.job-token:" + settings.SECRET_KEY).encode()).digest()
    return hmac.new(key, action_execution_id.encode(), hashlib.sha256).hexdigest()[:32]


def job_token(action_execution_id: str) -> str:
    """The token a receiver presents to report the result of this action execution."""
    hex_id = uuid.UUID(action_execution_id).hex
    return hex_id + _token_mac(hex_id)


def job_token_action_id(token: str) -> uuid.UUID | None:
    """The action execution id a genuine token names; None for anything else."""
    if len(token) != 64:
        return None
    hex_id, mac = token[:32], token[32:]
    try:
        action_execution_id = uuid.UUID(hex_id)
    except ValueError:
        return None
    if not hmac.compare_digest(mac, _token_mac(action_execution_id.hex)):
        return None
    return action_execution_id


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ReportInvalid(ValueError):
    """A result report that is not one; ``path`` names the offending field."""

    def __init__(self, path: str, message: str):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


def parse_report(data) -> tuple[str, str, dict[str, str], str]:
    """A result report (inline answer or later POST) as (status, summary, variables, url).

    Raises ``ReportInvalid`` naming the field that is wrong.
    """
    if not isinstance(data, dict):
        raise ReportInvalid("", "the report must be a JSON object")
    status = data.get("status")
    if status not in ("Succeeded", "Failed"):
        raise ReportInvalid("status", 'must be "Succeeded" or "Failed"')
    summary = data.get("summary", "")
    variables = data.get("outputVariables") or {}
    url = data.get("externalExecutionUrl") or ""
    if not isinstance(summary, str):
        raise ReportInvalid("summary", "must be a string")
    if not isinstance(variables, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int | float | bool)
            for k, v in variables.items()):
        raise ReportInvalid("outputVariables", "must be an object of names to strings")
    if not isinstance(url, str) or (url and not url.startswith(("https://", "http://"))):
        raise ReportInvalid("externalExecutionUrl", "must be an http(s) URL")
    return status, summary[:2000], {k: str(v) for k, v in variables.items()}, url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is answered as it is: not a 2xx, so a failure


_opener = urllib.request.build_opener(_NoRedirect)


@register
class WebhookInvokeRunner(Runner):
    provider = "Webhook"
    categories = ("Invoke",)
    description = ("POSTs a signed JSON job to a URL; the answer or a later report through "
                   "/api/jobs/{token}/result ends the action.")
    runs_processes = False
    default_timeout_minutes = 60

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        config = configuration_of(action_doc)
        problems: list[tuple[str, str]] = []
        url = config.get("Url")
        if not url:
            problems.append(("configuration.Url", "is required"))
        elif "#{" not in url and not url.startswith(("https://", "http://")):
            problems.append(("configuration.Url", f'"{url}" is not an http(s) URL'))
        if config.get("Secret") and config.get("SecretName"):
            problems.append(("configuration.SecretName", "give Secret or SecretName, not both"))
        name = config.get("SecretName")
        if name and "#{" not in name and not SECRET_NAME_RE.match(name.partition(":")[0]):
            problems.append(("configuration.SecretName", f'"{name}" is not a secret name'))
        timeout = config.get("TimeoutSeconds", "30")
        if "#{" not in timeout and not (timeout.isdigit() and 1 <= int(timeout) <= 3600):
            problems.append(("configuration.TimeoutSeconds",
                             f'"{timeout}" is not a whole number of seconds from 1 to 3600'))
        return problems

    def job(self, ctx: RunContext, token: str) -> dict:
        base = settings.CONVEYOR_BASE_URL.rstrip("/")
        config = {k: v for k, v in ctx.configuration.items() if k not in CONFIG_KEYS_USED}
        return {
            "job": {
                "id": ctx.action_execution_id,
                "token": token,
                "resultUrl": f"{base}/api/jobs/{token}/result",
                "expiresAt": ctx.deadline.isoformat() if ctx.deadline else None,
            },
            "pipeline": {"name": ctx.pipeline_name, "version": ctx.pipeline_version},
            "execution": {"id": ctx.pipeline_execution_id, "number": ctx.execution_number},
            "stage": {"name": ctx.stage_name},
            "action": {"name": ctx.action_name, "category": ctx.category,
                       "provider": ctx.provider, "attempt": ctx.attempt},
            "configuration": config,
            "variables": ctx.variables,
            "inputArtifacts": [
                {"name": name,
                 "url": f"{base}/api/executions/{ctx.pipeline_execution_id}/artifacts/{name}/"}
                for name in ctx.input_dirs
            ],
        }

    def run(self, ctx: RunContext) -> Result | Waiting:
        config = ctx.configuration
        url = config.get("Url", "")
        if not url.startswith(("https://", "http://")):
            raise ActionFailed(f'Url "{url}" is not an http(s) URL')
        secret = config.get("Secret", "")
        if config.get("SecretName"):
            secret = secret_value(config["SecretName"])
        timeout_raw = config.get("TimeoutSeconds", "30")
        timeout = float(timeout_raw) if timeout_raw.isdigit() else 30.0
        remaining = ctx.remaining_seconds()
        if remaining is not None:
            timeout = max(1.0, min(timeout, remaining))
        token = job_token(ctx.action_execution_id)
        body = json.dumps(self.job(ctx, token)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Conveyor",
                   "X-Conveyor-Delivery": ctx.action_execution_id}
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
        ctx.log.line(f"POST {url} ({len(body)} bytes"
                     + (", signed)" if secret else ", unsigned: no Secret is configured)"))
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with _opener.open(request, timeout=timeout) as answer:
                code = answer.status
                text = answer.read(MAX_ANSWER_BYTES)
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace").strip()
            raise ActionFailed(f"{url} answered {exc.code} {exc.reason}"
                               + (f": {detail}" if detail else "")) from None
        except TimeoutError:
            raise ActionFailed(f"{url} did not answer within {timeout:g} s") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise ActionFailed(f"{url} did not answer within {timeout:g} s") from None
            raise ActionFailed(f"Cannot reach {url}: {exc.reason}") from None
        except OSError as exc:
            raise ActionFailed(f"Cannot reach {url}: {exc}") from None
        if ctx.should_stop():
            raise ActionFailed(f"Stopped: {ctx.stop_reason}")
        ctx.log.line(f"{url} answered {code}")
        try:
            data = json.loads(text) if text.strip() else None
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("status") in ("Succeeded", "Failed"):
            try:
                status, summary, variables, external_url = parse_report(data)
            except ReportInvalid as exc:
                raise ActionFailed(f"{url} answered with a result that is not one: "
                                   f"{exc}") from None
            if status == "Failed":
                raise ActionFailed(summary or f"{url} reported a failure",
                                   output_variables=variables, external_url=external_url)
            return Result(summary=summary or f"{url} reported success",
                          output_variables=variables, external_url=external_url)
        external_url = data.get("externalExecutionUrl", "") if isinstance(data, dict) else ""
        if not isinstance(external_url, str) or not external_url.startswith(
                ("https://", "http://")):
            external_url = ""
        return Waiting(summary=f"Waiting for {url} to report the result",
                       external_url=external_url, token=token)
