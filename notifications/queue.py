"""Putting notifications tasks on the django-q2 queue.

The task adapters live in ``notifications.tasks``; this module imports neither them nor the
services, so the services may import it without an import cycle."""

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
