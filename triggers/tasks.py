"""django-q2 task adapters of the triggers app (commit statuses)."""

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


def statuses_sync(execution_ids: list[int]) -> str:
    from triggers import statuses

    sent = statuses.statuses_sync(execution_ids=execution_ids)
    return f"{len(sent)} status(es) sent"
