"""Starting pipelines on their schedules (``pipelines.models.PipelineSchedule``).

django-q2's scheduler runs ``schedules_task`` every minute (the schedule
``conveyor-pipeline-schedules``, made at ``migrate``). For each enabled
schedule it takes the latest tick at or before now; a tick not acted on yet,
and not older than ``CONVEYOR_SCHEDULE_GRACE_SECONDS`` (1 hour: a server down
overnight does not start last night's build in the morning), starts an
execution of the latest commit of every source.

Never twice for one tick: the tick is first inserted as a ``ScheduleTick``,
unique per (schedule, tick) in the database; of several clusters (or a
retried task) ticking at once, one insert wins and only its caller starts.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from executions.choices import TriggerType
from executions.errors import ExecutionError
from pipelines import schedules as rules
from pipelines.models import PipelineSchedule, ScheduleTick

logger = logging.getLogger("conveyor.schedules")

SCHEDULE_NAME = "conveyor-pipeline-schedules"


def grace() -> timedelta:
    return timedelta(seconds=float(getattr(settings, "CONVEYOR_SCHEDULE_GRACE_SECONDS", 3600)))


def schedules_run(*, now: datetime | None = None) -> list[ScheduleTick]:
    """Start what is due; the ticks this call acted on (started or refused)."""
    from executions import services

    now = now or timezone.now()
    acted = []
    for schedule in PipelineSchedule.objects.filter(enabled=True).select_related("pipeline"):
        tick = rules.latest_tick(schedule.cron, schedule.timezone, now)
        if tick < schedule.created_at or now - tick > grace():
            continue
        try:
            with transaction.atomic():
                record = ScheduleTick.objects.create(schedule=schedule, tick=tick)
        except IntegrityError:
            continue  # this tick was acted on (here earlier, or by another cluster)
        detail = (f"Schedule {schedule.name} ({schedule.cron} {schedule.timezone}), tick "
                  f"{tick.isoformat()}")
        try:
            execution = services.execution_start(
                pipeline=schedule.pipeline, trigger_type=TriggerType.CLOUDWATCH_EVENT,
                trigger_detail=detail)
        except ExecutionError as exc:
            record.outcome = f"not started: {exc.detail}"
        except Exception as exc:  # one broken pipeline must not stop the other schedules
            logger.exception("schedule %s could not start its pipeline", schedule.pk)
            record.outcome = f"not started: {exc}"
        else:
            record.execution_id = execution.execution_id
            record.outcome = f"started execution #{execution.number}"
        record.save(update_fields=["execution_id", "outcome"])
        acted.append(record)
    return acted


def schedules_task() -> str:
    """The django-q2 scheduled task."""
    acted = schedules_run()
    return "; ".join(t.outcome for t in acted) or "nothing due"


def next_runs(pipeline, *, now: datetime | None = None) -> list[tuple[PipelineSchedule,
                                                                      datetime]]:
    """Each enabled schedule of a pipeline with its next tick (for the pipeline page)."""
    now = now or timezone.now()
    return [(s, rules.next_tick(s.cron, s.timezone, now))
            for s in pipeline.schedules.filter(enabled=True)]


def schedule_ensure(**kwargs) -> None:
    """Create django-q2's every-minute schedule that runs ``schedules_task`` (post_migrate)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": "triggers.schedules.schedules_task",
                  "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1})
