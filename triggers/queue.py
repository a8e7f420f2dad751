"""Putting triggers tasks on the django-q2 queue.

The task adapters live in ``triggers.tasks``; this module imports neither them nor the
services, so the services may import it without an import cycle."""

from __future__ import annotations

from datetime import datetime


def enqueue(name: str, *args) -> None:
    from django_q.tasks import async_task

    async_task(f"triggers.tasks.{name}", *args, save=False)


def retry_at(execution_ids: list[int], when: datetime) -> None:
    from django_q.models import Schedule
    from django_q.tasks import schedule

    schedule("triggers.tasks.statuses_sync", execution_ids, schedule_type=Schedule.ONCE,
             next_run=when)
