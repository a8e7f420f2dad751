"""django-q2 task adapters: they take ids and call ``notifications.services``."""

from __future__ import annotations

from datetime import datetime


def enqueue(name: str, *args) -> None:
    """Put a task of this module on the django-q2 queue (tests run it inline instead)."""
    from django_q.tasks import async_task

    # save=False: no result row per notification task in the database the
    # pipelines write to (the delivery row records what happened).
    async_task(f"notifications.tasks.{name}", *args, save=False,
               task_name=f"notify-{name}-{'-'.join(map(str, args))}")


def retry_at(delivery_id: int, when: datetime) -> None:
    """Attempt the delivery again at ``when`` (a one-off schedule, deleted once run)."""
    from django_q.models import Schedule
    from django_q.tasks import schedule

    schedule("notifications.tasks.delivery_send", delivery_id, schedule_type=Schedule.ONCE,
             next_run=when, name=f"notify-retry-{delivery_id}-{when.timestamp():.0f}")


def events_scan(pipeline_id: int, up_to: int) -> str:
    from notifications import services

    created = services.events_scan(pipeline_id=pipeline_id, up_to=up_to)
    return f"{len(created)} delivery(ies)"


def delivery_send(delivery_id: int) -> str:
    from notifications import services

    return services.delivery_send(delivery_id=delivery_id)
