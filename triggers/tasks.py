"""django-q2 task adapters of the triggers app (commit statuses)."""

from __future__ import annotations


def statuses_sync(execution_ids: list[int]) -> str:
    from triggers import statuses

    sent = statuses.statuses_sync(execution_ids=execution_ids)
    return f"{len(sent)} status(es) sent"
