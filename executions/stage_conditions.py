"""What a stage condition's outcome does to the stage and the execution (docs/conditions.md).

The ``conditions`` app evaluates the rules and records the condition; it calls
``condition_outcome`` in the same transaction (``condition_transaction``, the
pipeline's row locked) once the condition has ended, and the engine moves the stage
on through its one status helper. Re-exported by ``executions.engine``.
"""

from __future__ import annotations

from executions.models import StageExecution
from executions.stages import _stage_advance, _stage_ended, _stage_summary
from executions.statuses import E, S, _Effects, _fetch, _set_status, _Transaction


def condition_transaction(pipeline_id: int) -> _Transaction:
    """``with condition_transaction(pipeline_id) as fx:`` — the engine's transaction for a
    condition's records and the status changes its outcome causes."""
    return _Transaction(pipeline_id)


def condition_outcome(fx: _Effects, *, stage_execution: StageExecution, kind: str,
                      result: str, engaged: bool, summary: str,
                      retry_mode: str = "") -> bool:
    """Apply a condition that has ended to its stage execution (still InProgress).

    ``engaged``: the condition's ``result`` takes effect — a beforeEntry or onSuccess
    condition that failed, an onFailure condition whose rules all succeeded.

    - beforeEntry, not engaged (passed or overridden): the stage's actions start.
      FAIL: the stage and the execution are Failed. SKIP: the stage is Skipped, the
      execution goes on to the next stage.
    - onSuccess, not engaged: the stage Succeeded. FAIL: the stage and the execution are
      Failed. ROLLBACK: the same, and the stage rolls back (docs/semantics.md §15).
      The stage's own onFailure does not act on a stage an onSuccess condition failed.
    - onFailure, not engaged: the stage and the execution are Failed. ROLLBACK / RETRY:
      the failed stage rolls back / is retried once, as ``onFailure.result`` does.

    False when the stage execution is no longer InProgress (nothing changed).
    """
    se = StageExecution.objects.get(pk=stage_execution.pk)
    se.execution = _fetch(se.execution_id)
    if se.status != S.IN_PROGRESS or se.execution.status != E.IN_PROGRESS:
        return False
    if kind == "beforeEntry":
        if not engaged:
            _stage_advance(fx, se, fresh=se.attempt == 1)
            return True
        status = S.SKIPPED if result == "SKIP" else S.FAILED
        if not _set_status(fx, se, status, summary=summary):
            return False
        _stage_ended(fx, se, on_failure={})
        return True
    if kind == "onSuccess":
        if not engaged:
            if not _set_status(fx, se, S.SUCCEEDED, summary=summary):
                return False
            _stage_ended(fx, se)
            return True
        if not _set_status(fx, se, S.FAILED, summary=summary):
            return False
        _stage_ended(fx, se, on_failure={"result": result, "why": "onSuccess condition"}
                     if result == "ROLLBACK" else {})
        return True
    # The failed action first: the condition's summary says what followed.
    summary = " ".join(filter(None, [_stage_summary(se, S.FAILED), summary]))
    if not _set_status(fx, se, S.FAILED, summary=summary):
        return False
    _stage_ended(fx, se, on_failure={"result": result, "retryMode": retry_mode,
                                     "why": "onFailure condition"} if engaged else {})
    return True
