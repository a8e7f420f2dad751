"""The Approval category's ``Manual`` provider (registered when the approvals app starts).

Running it opens an ``ApprovalRequest`` and answers ``Waiting``: the action
stays InProgress, held by no worker, until ``approvals.services`` completes it
(enough approvals, one rejection) or the engine ends it (timeout → "approval
expired", stop and abandon, docs/semantics.md §10). The owner in ``actionTypeId`` may be
``AWS`` (documents exported from CodePipeline) or ``Custom``: the registry
keys providers by (category, provider) only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.urls import reverse

from approvals import configuration
from approvals.configuration import ConfigurationError
from executions.models import ActionExecution
from runners.base import ActionFailed, RunContext, Runner, Waiting


class ManualApprovalRunner(Runner):
    provider = "Manual"
    categories = ("Approval",)
    description = ("A manual approval: reviewers approve or reject from the inbox, the API, a "
                   "signed link in their email, or the AWS-compatible endpoint.")
    # The engine uses this when the action sets no timeoutInMinutes (7 days).
    default_timeout_minutes = configuration.DEFAULT_TIMEOUT_MINUTES
    # It waits for people, not for a process.
    runs_processes = False
    # The action's summary when its timeout passes (the engine's sweeper ends it).
    timeout_summary = "approval expired"
    # A stop (even stop-and-wait) closes a pending approval at once: it waits for
    # people, and nobody should approve a release that was stopped.
    stop_waits_for_it = False

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        return configuration.check(action_doc)

    def run(self, ctx: RunContext) -> Waiting:
        from approvals import services

        try:
            config = configuration.parse(ctx.configuration)
        except ConfigurationError as exc:
            raise ActionFailed(f"Invalid approval configuration: {exc}") from None
        ae = ActionExecution.objects.select_related("execution", "execution__pipeline").get(
            action_execution_id=ctx.action_execution_id)
        # CodePipeline's ApprovalToken is a UUID (its model's pattern), and SDKs that
        # check patterns refuse anything else; uuid4 draws 122 bits from os.urandom.
        token = str(uuid.uuid4())
        request = services.approval_request_open(action_execution=ae, config=config,
                                                 token=token)
        who = config.reviewers.spec().replace(",", ", ") or "any reviewer"
        needed = config.required_approvals
        summary = f"Waiting for {needed} approval{'s' if needed != 1 else ''} from {who}"
        ctx.log.line(f"{summary}; expires {ae.deadline_at:%Y-%m-%d %H:%M} UTC"
                     if ae.deadline_at else summary)
        base = settings.CONVEYOR_BASE_URL.rstrip("/")
        return Waiting(summary=summary, token=request.token, external_id=str(request.pk),
                       external_url=base + reverse("approvals:inbox") + f"#approval-{request.pk}")
