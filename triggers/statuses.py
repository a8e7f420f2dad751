"""Commit statuses back to the forge (GitHub, GitLab, Gitea) for executions' commits.

A pipeline with a ``CommitStatusTarget`` reports, for the commit its Git
source built, one status for the pipeline (context ``conveyor/<pipeline>``)
and, with ``per_stage``, one per stage (``conveyor/<pipeline>/<stage>``):
pending while in progress, then success, failure, or error (stopped,
superseded), each linking to the execution's page.

1. The engine rings ``events_appended`` after its commit; ``on_events_appended``
   queues ``statuses_sync`` for the executions concerned, only for pipelines
   that have an enabled target (a per-process cache), and never waits.
2. ``statuses_sync`` compares what each context should say now with what the
   forge accepted last (``CommitStatusReport``) and sends only the
   differences. It reports the current state, so late or repeated syncs are
   harmless. The commit is the source revision (or the commit the execution
   was started for); before it is known nothing is sent.
3. A refused or failed report is logged and retried with backoff (a one-off
   django-q2 schedule), up to ``CONVEYOR_STATUS_ATTEMPTS``; it never changes
   the execution.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from executions.models import PipelineExecution, SourceRevision, StageExecution
from notifications import outbound
from pipelines.models import CommitStatusTarget, ForgeProvider
from triggers.models import CommitStatusReport

logger = logging.getLogger("conveyor.statuses")

# Conveyor's status → the state each forge's API takes.
_STATES = {
    ForgeProvider.GITHUB: {"pending": "pending", "success": "success", "failure": "failure",
                           "error": "error"},
    ForgeProvider.GITEA: {"pending": "pending", "success": "success", "failure": "failure",
                          "error": "error"},
    ForgeProvider.GITLAB: {"pending": "running", "success": "success", "failure": "failed",
                           "error": "canceled"},
}
_FROM_STATUS = {"InProgress": "pending", "Stopping": "pending", "Succeeded": "success",
                "Failed": "failure", "Stopped": "error", "Superseded": "error"}


def state_of(status: str) -> str:
    """pending / success / failure / error for an execution or stage status."""
    return _FROM_STATUS.get(status, "pending")


def request_for(target: CommitStatusTarget, *, commit: str, state: str, context: str,
                link: str, description: str) -> tuple[str, bytes, dict[str, str]]:
    """(URL, body, headers) of one status, as each forge's REST API documents it.

    GitHub ``POST /repos/{owner}/{repo}/statuses/{sha}`` (Bearer token);
    GitLab ``POST /projects/{url-encoded path}/statuses/{sha}`` (``PRIVATE-TOKEN``,
    the context as ``name``); Gitea ``POST /repos/{owner}/{repo}/statuses/{sha}``
    (``Authorization: token …``).
    """
    api = target.api_url.rstrip("/")
    wire = _STATES[target.provider][state]
    if target.provider == ForgeProvider.GITLAB:
        project = urllib.parse.quote(target.repository, safe="")
        url = f"{api}/projects/{project}/statuses/{commit}"
        body = {"state": wire, "name": context, "target_url": link,
                "description": description}
        headers = {"Private-Token": target.token_value}  # GitLab's PRIVATE-TOKEN (any case)
    else:
        url = f"{api}/repos/{target.repository}/statuses/{commit}"
        body = {"state": wire, "context": context, "target_url": link,
                "description": description}
        headers = ({"Authorization": f"Bearer {target.token_value}",
                    "Accept": "application/vnd.github+json"}
                   if target.provider == ForgeProvider.GITHUB
                   else {"Authorization": f"token {target.token_value}"})
    headers.update({"Content-Type": "application/json", "User-Agent": "Conveyor"})
    return url, json.dumps(body).encode(), headers


# --- from events to syncs --------------------------------------------------------

_targets_cache: dict[str, tuple[float, frozenset[int]]] = {}
_TTL = 5.0


def pipelines_with_targets() -> frozenset[int]:
    now = time.monotonic()
    cached = _targets_cache.get("ids")
    if cached is None or now - cached[0] > _TTL:
        cached = (now, frozenset(CommitStatusTarget.objects.filter(enabled=True)
                                 .values_list("pipeline_id", flat=True)))
        _targets_cache["ids"] = cached
    return cached[1]


def on_events_appended(sender, *, pipeline_id: int, execution_ids=(), **kwargs) -> None:
    """The engine's doorbell: queue a sync of these executions' statuses (nothing else)."""
    if pipeline_id not in pipelines_with_targets() or not execution_ids:
        return
    from triggers import queue as tasks

    try:
        tasks.enqueue("statuses_sync", list(execution_ids))
    except Exception:  # a lost status is a pity; a failed engine step would be worse
        logger.exception("could not queue a commit status sync")


def _commit(execution: PipelineExecution) -> str | None:
    revision = (SourceRevision.objects.filter(execution=execution)
                .order_by("id").values_list("revision_id", flat=True).first())
    if revision:
        return revision
    for item in execution.source_revision_overrides or []:
        if isinstance(item, dict) and item.get("revisionValue"):
            return item["revisionValue"]
    return None


def wanted(execution: PipelineExecution, target: CommitStatusTarget) -> dict[str, tuple]:
    """Each context's (state, description) for the execution as it stands now."""
    name = execution.pipeline.name
    states = {f"conveyor/{name}": (state_of(execution.status),
                                   f"#{execution.number} {execution.status}")}
    if target.per_stage:
        for stage_name, status in (StageExecution.objects.filter(execution=execution)
                                   .order_by("id").values_list("stage_name", "status")):
            states[f"conveyor/{name}/{stage_name}"] = (
                state_of(status), f"#{execution.number} {stage_name} {status}")
    return states


def max_attempts() -> int:
    return int(getattr(settings, "CONVEYOR_STATUS_ATTEMPTS", 5))


def statuses_sync(*, execution_ids: list[int]) -> list[CommitStatusReport]:
    """Send each context whose wanted state the forge has not accepted yet; the rows sent."""
    sent = []
    executions = PipelineExecution.objects.filter(pk__in=execution_ids).select_related(
        "pipeline__commit_status_target")
    for execution in executions:
        target = getattr(execution.pipeline, "commit_status_target", None)
        if target is None or not target.enabled:
            continue
        commit = _commit(execution)
        if commit is None:
            continue  # the source has not resolved its commit yet
        link = settings.CONVEYOR_BASE_URL.rstrip("/") + reverse(
            "dashboard:execution", args=[execution.pipeline.name, execution.number])
        for context, (state, description) in wanted(execution, target).items():
            report = _report_row(execution, context, commit)
            if report.reported_state == state:
                continue
            if report.wanted_state != state:
                # A new state: a fresh round of attempts.
                CommitStatusReport.objects.filter(pk=report.pk).update(
                    wanted_state=state, attempts=0, description=description,
                    next_attempt_at=None)
                report.wanted_state, report.attempts, report.next_attempt_at = state, 0, None
            if report.attempts >= max_attempts() or (
                    report.next_attempt_at is not None
                    and report.next_attempt_at > timezone.now()):
                continue  # given up, or waiting for its backoff
            _send(target, report, link, description)
            sent.append(report)
    return sent


def _report_row(execution, context: str, commit: str) -> CommitStatusReport:
    try:
        with transaction.atomic():
            return CommitStatusReport.objects.get_or_create(
                execution=execution, context=context,
                defaults={"commit": commit, "wanted_state": ""})[0]
    except IntegrityError:  # a concurrent sync made it
        return CommitStatusReport.objects.get(execution=execution, context=context)


def _send(target, report: CommitStatusReport, link: str, description: str) -> None:
    url, body, headers = request_for(target, commit=report.commit, state=report.wanted_state,
                                     context=report.context, link=link,
                                     description=description[:140])
    answer = outbound.http_request(url, data=body, headers=headers,
                                   timeout=float(getattr(settings, "CONVEYOR_STATUS_TIMEOUT", 5)))
    report.attempts += 1
    report.last_answer = answer.describe()
    due = None
    if not answer.ok:
        base = float(getattr(settings, "CONVEYOR_STATUS_BACKOFF_SECONDS", 30))
        due = timezone.now() + timedelta(seconds=base * 4 ** (report.attempts - 1))
    else:
        report.reported_state = report.wanted_state
    report.next_attempt_at = due
    report.save(update_fields=["attempts", "last_answer", "reported_state",
                               "next_attempt_at", "updated_at"])
    if answer.ok:
        return
    logger.warning("commit status %s of %s to %s failed (attempt %s): %s", report.context,
                   report.commit[:12], target.provider, report.attempts, answer.describe())
    if report.attempts < max_attempts():
        from triggers import queue as tasks

        tasks.retry_at([report.execution_id], due)
