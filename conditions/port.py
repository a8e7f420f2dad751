"""The adapter the engine reaches stage conditions through (``executions.condition_port``),
and the sweeper's hook that evaluates waiting rules again."""

from __future__ import annotations

from conditions import records, selectors, tasks
from conditions.choices import ConditionExecutionStatus as C
from conditions.models import ConditionExecution


class Adapter:
    def start(self, fx, *, stage_execution, kind: str, condition: dict) -> None:
        n = len(condition.get("rules") or [])
        ce = records.condition_create(
            fx, stage_execution=stage_execution, kind=kind, result=condition.get("result", ""),
            summary=f"Evaluating {n} rule{'s' if n != 1 else ''}")
        # Rules may call out or run commands: never inside the engine's transaction.
        fx.after.append(lambda: tasks.enqueue(ce.pk))

    def active(self, stage_execution) -> str | None:
        return (ConditionExecution.objects
                .filter(stage_execution_id=stage_execution.pk, status=C.IN_PROGRESS)
                .values_list("kind", flat=True).first())

    def end(self, fx, *, stage_execution, status: str, reason: str) -> bool:
        ce = (ConditionExecution.objects.select_related("stage_execution")
              .filter(stage_execution_id=stage_execution.pk, status=C.IN_PROGRESS).first())
        if ce is None:
            return False
        return records.condition_end(fx, ce, status, summary=reason, rule_summary=reason)

    def states(self, stage_execution_pks: list[int]) -> dict[int, dict]:
        return selectors.condition_states_of(stage_execution_pks)


def connect() -> None:
    """Wire the adapter into the engine and the evaluation into the sweeper
    (``ConditionsConfig.ready``)."""
    from executions import condition_port, signals

    condition_port.wire(Adapter())
    signals.swept.connect(_on_swept, dispatch_uid="conveyor.conditions.sweep")


def _on_swept(sender, *, now, **kwargs) -> None:
    from conditions.evaluation import sweep

    sweep(enqueue=tasks.enqueue, now=now)
