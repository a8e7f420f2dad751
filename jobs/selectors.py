"""Reads of jobs that the surfaces share (the dashboard's action cards and page)."""

from __future__ import annotations

from dataclasses import dataclass

from jobs.models import Job
from jobs.services import _url


@dataclass(frozen=True)
class JobView:
    """What a person sees of an action run by a job worker."""

    status: str            # the latest job's JobStatus
    attempt: int           # its number (1 + continuations)
    percent: int | None    # executionDetails.percentComplete, latest reported
    entity_url: str        # the type's entityUrlTemplate, filled from the configuration
    execution_url: str     # its executionUrlTemplate with the externalExecutionId


def action_job_views(action_executions) -> dict[int, JobView]:
    """The JobView of each action execution that has jobs, by its pk (one query)."""
    ids = [ae.pk for ae in action_executions if ae is not None]
    if not ids:
        return {}
    jobs: dict[int, list[Job]] = {}
    for job in (Job.objects.filter(action_execution_id__in=ids).select_related("action_type")
                .order_by("action_execution_id", "attempt")
                .only("action_execution_id", "attempt", "status", "execution_details", "data",
                      "action_type__entity_url_template",
                      "action_type__execution_url_template")):
        jobs.setdefault(job.action_execution_id, []).append(job)
    views = {}
    for pk, found in jobs.items():
        latest = found[-1]
        reported = [j.execution_details for j in found if j.execution_details]
        details = reported[-1] if reported else {}
        config = latest.data.get("actionConfiguration", {}).get("configuration", {})
        t = latest.action_type
        percent = details.get("percentComplete")
        views[pk] = JobView(
            status=latest.status, attempt=latest.attempt,
            percent=percent if isinstance(percent, int) else None,
            entity_url=_url(t.entity_url_template, config) if t else "",
            execution_url=_url(t.execution_url_template, config,
                               str(details.get("externalExecutionId") or ""))
            if t and details.get("externalExecutionId") else "")
    return views
