"""The operations behind the hook endpoints; the views only translate HTTP.

Errors are ``HookError`` with the HTTP status the view answers and a
sentence for the caller.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from config.bodies import json_loads
from executions import services
from executions.choices import ActionExecutionStatus
from executions.models import ActionExecution, HookDelivery
from observability.counters import WEBHOOK_DELIVERIES, counter_add
from pipelines.models import Pipeline
from runners import webhook
from triggers import changes, pull_requests


class HookError(Exception):
    """A refused hook call: ``status`` is the HTTP status, ``detail`` the reason."""

    def __init__(self, status: int, detail: str, path: str | None = None):
        self.status, self.detail, self.path = status, detail, path
        super().__init__(detail)


# The largest push body read (GitHub's push payloads stay well below; a body past
# it is refused with 413 before its signature is even computed).
DEFAULT_MAX_BYTES = 1024 * 1024
# Where each sender puts the id of a delivery (a redelivery from GitHub's own
# "Redeliver" button reuses it, and is refused too: start the execution by hand).
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery",
                    "X-Gitlab-Event-UUID", "X-Conveyor-Delivery")


def push_max_bytes() -> int:
    """The largest push body accepted (``CONVEYOR_HOOK_MAX_BYTES``, default 1 MiB)."""
    return int(getattr(settings, "CONVEYOR_HOOK_MAX_BYTES", DEFAULT_MAX_BYTES))


def delivery_id(headers: Mapping[str, str]) -> str:
    """The sender's id of this delivery ("" when it sends none, like the git hook script)."""
    for name in DELIVERY_HEADERS:
        value = (headers.get(name) or "").strip()
        if value:
            return value
    return ""


@dataclass
class PushOutcome:
    """What a push did: the decisions per Git source action (or a note, for a ping)."""

    decisions: list[changes.Decision]
    note: str = ""

    @property
    def started(self) -> list[changes.Decision]:
        return [d for d in self.decisions if d.started]


DELIVERY_RESULTS = {400: "invalid", 401: "unauthorized", 404: "not_found", 409: "replayed",
                    413: "too_large"}


def push_delivery_count(*, pipeline_name: str, result: str) -> None:
    """Count one push delivery for ``conveyor_webhook_deliveries_total``.

    The pipeline label is kept only for a pipeline that exists: a sender naming
    made-up pipelines must not grow the label set.
    """
    known = Pipeline.objects.filter(name=pipeline_name).exists()
    counter_add(WEBHOOK_DELIVERIES, {"pipeline": pipeline_name if known else "",
                                     "result": result})


def push_receive(*, pipeline_name: str, body: bytes, headers: Mapping[str, str]) -> PushOutcome:
    """Verify and act on a push webhook for one pipeline; count the delivery by result.

    See ``_push_receive`` for the steps; the result is "started" (an execution
    started), "ignored" (nothing started) or the refusal ("unauthorized", ...).
    """
    try:
        outcome = _push_receive(pipeline_name=pipeline_name, body=body, headers=headers)
    except HookError as error:
        push_delivery_count(pipeline_name=pipeline_name,
                            result=DELIVERY_RESULTS.get(error.status, "refused"))
        raise
    push_delivery_count(pipeline_name=pipeline_name,
                        result="started" if outcome.started else "ignored")
    return outcome


def _push_receive(*, pipeline_name: str, body: bytes, headers: Mapping[str, str]) -> PushOutcome:
    """Verify and act on a push webhook for one pipeline.

    1. The pipeline must exist (404) and have a webhook secret; the request
       must be signed with it (``X-Hub-Signature-256``, ``X-Gitea-Signature``
       or ``X-Gitlab-Token``, compared in constant time): otherwise 401 and
       nothing starts. A body over ``push_max_bytes()`` is 413.
    2. A delivery id the pipeline has received before is a replay: 409 and
       nothing starts (``HookDelivery``, unique per pipeline). The id is
       recorded only after the signature checks out, and forgotten again if
       handling the delivery fails, so the sender's retry is handled.
    3. A ping, or an event other than a push, is acknowledged and ignored.
    4. A push is parsed (400 if it is not one) and each Git source action
       decides by its repository, DetectChanges and the trigger filters;
       at most one execution starts per commit (``changes.change_start``).
    """
    if len(body) > push_max_bytes():
        raise HookError(413, f"The payload is larger than {push_max_bytes()} bytes.")
    pipeline = Pipeline.objects.filter(name=pipeline_name).first()
    if pipeline is None:
        raise HookError(404, f'No pipeline is named "{pipeline_name}".')
    if not pipeline.webhook_secret:
        raise HookError(401, f'Pipeline "{pipeline_name}" has no webhook secret: set one '
                             "before sending it webhooks.")
    if not changes.signature_valid(pipeline.webhook_secret, body, headers):
        raise HookError(401, "The webhook signature is missing or wrong.")
    return _once_per_delivery(pipeline, headers,
                              lambda: _push_handle(pipeline, body, headers))


def _once_per_delivery(pipeline: Pipeline, headers: Mapping[str, str],
                       handle: Callable[[], PushOutcome]) -> PushOutcome:
    """Run ``handle`` once per delivery id (GitHub's, GitLab's, Gitea's header): a replayed
    delivery answers 409 and starts nothing; a delivery whose handling fails is forgotten,
    so that the sender's retry is handled."""
    delivery = delivery_id(headers)
    if len(delivery) > 200:
        raise HookError(400, "The delivery id is longer than 200 characters.")
    recorded = None
    if delivery:
        try:
            with transaction.atomic():
                recorded = HookDelivery.objects.create(pipeline=pipeline, delivery_id=delivery)
        except IntegrityError:
            raise HookError(409, f'Delivery "{delivery}" was received before: a replayed '
                                 "delivery starts nothing.") from None
    try:
        return handle()
    except BaseException:
        if recorded is not None:
            HookDelivery.objects.filter(pk=recorded.pk).delete()
        raise


def _push_handle(pipeline: Pipeline, body: bytes, headers: Mapping[str, str]) -> PushOutcome:
    sender, event = changes.event_kind(headers)
    if event == "ping":
        return PushOutcome([], note="pong")
    pull_request = pull_requests.is_pull_request(sender, event)
    if event != "push" and not pull_request:
        return PushOutcome([], note=f'"{event}" events are ignored: only pushes and pull '
                                    "requests start executions")
    try:
        data = json_loads(body or b"null")
    except ValueError as exc:  # BodyRefused (nested too deeply) is one
        raise HookError(400, f"The payload is not JSON: {exc}") from None
    if pull_request:
        pr = pull_requests.parse(sender, data)
        if isinstance(pr, str):
            raise HookError(400, f"Not a pull request: {pr}.")
        return PushOutcome(pull_requests.decide(pipeline, pr))
    push = changes.push_parse(sender, data)
    if isinstance(push, str):
        raise HookError(400, f"Not a push: {push}.")
    return PushOutcome(changes.push_decide(pipeline, push))


def job_for_token(token: str) -> ActionExecution:
    """The waiting Webhook action execution a job token names; ``HookError`` 404/409/410."""
    action_execution_id = webhook.job_token_action_id(token)
    ae = (ActionExecution.objects.filter(action_execution_id=action_execution_id).first()
          if action_execution_id else None)
    if ae is None or ae.provider != "Webhook" or (
            ae.token and not hmac.compare_digest(ae.token, token)):
        raise HookError(404, "No job has this token.")
    if ae.status != ActionExecutionStatus.IN_PROGRESS:
        raise HookError(409, f"This job has already ended ({ae.status}): its token was good "
                             "for one report.")
    if ae.deadline_at is not None and ae.deadline_at <= timezone.now():
        raise HookError(410, f"This job's token expired at {ae.deadline_at.isoformat()}, "
                             "with the action's timeout.")
    return ae


def job_report(*, token: str, data) -> ActionExecution:
    """Complete a waiting Invoke Webhook action with the result its receiver reports.

    1. The token must be genuine (404 otherwise) and name a Webhook action.
    2. It is good for one report: an action that has ended answers 409.
    3. It expires with the action's timeout (410 after ``deadline_at``; the
       sweeper then fails the action as timed out).
    4. The report is ``{"status": "Succeeded"|"Failed", "summary",
       "outputVariables", "externalExecutionUrl"}`` (400 naming the wrong
       field); it ends the action through ``executions.services.action_complete``.

    ``data`` may be a callable giving the report: it is called only once the token
    passed 1-3, so an unknown caller's body is never parsed (the token is the
    caller's only credential).
    """
    ae = job_for_token(token)
    if callable(data):
        data = data()
    try:
        status, summary, variables, url = webhook.parse_report(data)
    except webhook.ReportInvalid as exc:
        raise HookError(400, str(exc), path=exc.path) from None
    succeeded = status == "Succeeded"
    done = services.action_complete(
        action_execution=ae, succeeded=succeeded,
        summary=summary or ("The receiver reported success" if succeeded
                            else "The receiver reported a failure"),
        output_variables=variables, external_url=url)
    if not done:
        ae.refresh_from_db(fields=["status"])
        raise HookError(409, f"This job has already ended ({ae.status}): its token was good "
                             "for one report.")
    ae.refresh_from_db()
    return ae


def aws_webhook_receive(*, url_token: str, body: bytes, headers: Mapping[str, str],
                        remote_addr: str) -> PushOutcome:
    """Verify and act on a delivery to a CodePipeline webhook (``PutWebhook``) URL.

    1. The token must name a webhook (404). The delivery must pass its
       ``authentication``: GITHUB_HMAC, a signature of the body with its
       SecretToken (``X-Hub-Signature-256: sha256=…`` or GitHub's older
       ``X-Hub-Signature: sha1=…``); IP, a sender address in AllowedIPRange;
       UNAUTHENTICATED, anyone with the URL. Otherwise 401, nothing starts.
    2. Delivery ids are de-duplicated per pipeline as for push hooks (409).
    3. Every filter rule must match (``pipelines.webhooks.filters_match``);
       otherwise 200 with the first rule that did not.
    4. A push payload starts its head commit through ``triggers.changes.change_start``
       (one execution per commit); any other payload starts the source
       action's configured branch head.
    """
    from pipelines import webhooks as rules
    from pipelines.models import Webhook, WebhookAuthentication

    if len(body) > push_max_bytes():
        raise HookError(413, f"The payload is larger than {push_max_bytes()} bytes.")
    webhook = Webhook.objects.select_related("pipeline").filter(url_token=url_token).first()
    if webhook is None:
        raise HookError(404, "No webhook has this URL.")
    if webhook.authentication == WebhookAuthentication.GITHUB_HMAC:
        ok = _github_hmac_valid(webhook.secret_token, body, headers)
    elif webhook.authentication == WebhookAuthentication.IP:
        ok = rules.address_allowed(remote_addr, webhook.allowed_ip_range)
    else:
        ok = webhook.authentication == WebhookAuthentication.UNAUTHENTICATED
    if not ok:
        raise HookError(401, f"The delivery does not pass the webhook's "
                             f"{webhook.authentication} authentication.")
    pipeline = webhook.pipeline
    return _once_per_delivery(pipeline, headers,
                              lambda: _aws_webhook_handle(webhook, body, headers))


def _github_hmac_valid(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    import hashlib

    if not secret:
        return False
    given = headers.get("X-Hub-Signature-256")
    if given is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.strip().encode(), f"sha256={digest}".encode())
    given = headers.get("X-Hub-Signature")
    if given is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        return hmac.compare_digest(given.strip().encode(), f"sha1={digest}".encode())
    return False


def _aws_webhook_handle(webhook, body: bytes, headers: Mapping[str, str]) -> PushOutcome:
    from executions.choices import TriggerType
    from executions.errors import ExecutionError
    from pipelines import webhooks as rules

    sender, event = changes.event_kind(headers)
    if event == "ping":
        return PushOutcome([], note="pong")
    try:
        data = json_loads(body or b"null")
    except ValueError as exc:
        raise HookError(400, f"The payload is not JSON: {exc}") from None
    pipeline, name = webhook.pipeline, webhook.target_action
    action = next((a for a in changes.git_sources(pipeline.document) if a["name"] == name),
                  None)
    if action is None:
        return PushOutcome([changes.Decision(name, reason=f'the pipeline has no Git source '
                                                           f'action "{name}" any more')])
    config = action.get("configuration") or {}
    ok, why = rules.filters_match(webhook.filters, data, config)
    if not ok:
        return PushOutcome([changes.Decision(name, reason=why)])
    type(webhook).objects.filter(pk=webhook.pk).update(last_triggered_at=timezone.now())
    push = changes.push_parse(sender, data)
    try:
        if isinstance(push, changes.Push) and not push.deleted:
            execution, started = changes.change_start(
                pipeline=pipeline, action_name=name, commit=push.after,
                branch=push.branch or push.tag or "", trigger_type=TriggerType.WEBHOOK,
                trigger_detail=f"Webhook {webhook.name}: {push.describe()}")
        else:
            execution, started = services.execution_start(
                pipeline=pipeline, trigger_type=TriggerType.WEBHOOK,
                trigger_detail=f"Webhook {webhook.name}"), True
    except ExecutionError as exc:
        return PushOutcome([changes.Decision(name, reason=exc.detail)])
    return PushOutcome([changes.Decision(
        name, started, execution,
        why if started else f"this commit was already started as execution "
                            f"#{execution.number}")])
