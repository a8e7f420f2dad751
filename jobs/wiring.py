"""What the jobs app plugs in when it starts (``JobsConfig.ready``).

- ``runners.set_router``: actions that ``jobs.routing.job_route`` sends to workers
  get the ``JobRunner`` (executions never imports jobs);
- ``pipelines.providers.set_custom_resolver``: validation and secret sealing know
  custom action types (``jobs.validation``);
- ``executions.signals.sweeping``: the sweeper times jobs out;
- ``executions.signals.action_ended``: an action that ended elsewhere ends its jobs;
- ``executions.signals.agent_action_started``: an action routed to agents becomes a Job
  carrying its labels, in the engine's transaction.
"""

from django.utils import timezone


def _sweeping(sender, now=None, **kwargs) -> None:
    from jobs.services import jobs_sweep

    jobs_sweep(now=now)


def _action_ended(sender, action_execution=None, status="", summary="", **kwargs) -> None:
    from pipelines import providers

    if action_execution is None or providers.get(action_execution.category,
                                                  action_execution.provider) is not None:
        # A built-in provider never becomes a job (jobs.routing.custom_type): no query for
        # the jobs of every Shell or Source action that ends.
        return
    from jobs.services import jobs_end_for_action

    deadline = getattr(action_execution, "deadline_at", None)
    jobs_end_for_action(action_execution=action_execution, status=status, summary=summary,
                        timed_out=deadline is not None and deadline <= timezone.now())


def _agent_action(sender, action_execution=None, action=None, **kwargs) -> None:
    from jobs.routing import agent_route
    from jobs.services import job_create

    route = agent_route(action or {})
    if route is not None:
        job_create(action_execution_id=str(action_execution.action_execution_id),
                   action_doc=action, route=route, action_execution=action_execution)


def connect() -> None:
    import runners
    from executions import signals
    from jobs import validation
    from jobs.runner import job_runner
    from pipelines import providers

    runners.set_router(job_runner)
    providers.set_custom_resolver(validation.custom_spec)
    signals.sweeping.connect(_sweeping, dispatch_uid="jobs.sweeping")
    signals.action_ended.connect(_action_ended, dispatch_uid="jobs.action_ended")
    signals.agent_action_started.connect(_agent_action, dispatch_uid="jobs.agent_action")
