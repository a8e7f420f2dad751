"""django-q2 task adapters of condition evaluation: they take ids, the evaluation claims
its rule first (a second delivery changes nothing)."""

from __future__ import annotations

import logging

logger = logging.getLogger("conveyor.conditions")


def enqueue(condition_execution_pk: int) -> None:
    """Put a condition's evaluation on the queue (tests replace this). The broker being
    down does not fail the caller: the sweeper finds the condition again."""
    from django_q.tasks import async_task

    try:
        async_task("conditions.tasks.condition_evaluate", condition_execution_pk,
                   task_name=f"condition-execution-{condition_execution_pk}", save=False)
    except Exception:
        logger.warning("could not queue condition execution %s: the sweeper will",
                       condition_execution_pk, exc_info=True)


def condition_evaluate(condition_execution_pk: int) -> None:
    from conditions.evaluation import condition_evaluate as evaluate

    evaluate(condition_execution_pk)
