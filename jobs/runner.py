"""The remote runner: hands an action to job workers and waits (docs/job-workers.md).

``for_action`` in ``runners`` returns this runner for every action
``jobs.routing.job_route`` sends to workers. ``run`` makes the action's first
Job (Queued) and answers ``Waiting``: the django-q2 worker is free at once, the
action stays InProgress until a worker's result completes it through
``jobs.services``, or the sweeper times it out.
"""

from __future__ import annotations

from runners.base import RunContext, Runner, Waiting


class JobRunner(Runner):
    provider = "(job worker)"
    description = "Runs on a job worker that polls for it (PollForJobs)"
    remote = True
    runs_processes = False

    def __init__(self, route=None):
        self.route = route

    def run(self, ctx: RunContext) -> Waiting:
        from jobs import services

        job = services.job_create(action_execution_id=ctx.action_execution_id,
                                  action_doc=ctx.action, route=self.route)
        ctx.log.line(f"Queued job {job.job_id} for a job worker polling for "
                     f"{job.category}/{job.owner}/{job.provider}/{job.version}")
        return Waiting(summary="Waiting for a job worker", external_id="")

    def cancel(self, ctx: RunContext) -> None:
        return None


def job_runner(action_doc: dict) -> JobRunner | None:
    """``runners.set_router`` target: a JobRunner for actions that become jobs of job
    workers. An action routed to agents keeps its own runner (the agent runs it; the
    engine never hands it to a django-q2 worker)."""
    from jobs.routing import job_route

    route = job_route(action_doc)
    return JobRunner(route) if route is not None and not route.for_agents else None
