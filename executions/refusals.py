"""Why not: the rules that refuse a command on executions, as pure functions.

Each answers ``None`` (allowed) or a ``Refusal`` — the error the services raise and
the sentence a person reads — from values the caller has already read, so every
surface asks the same question without a query of its own: the engine and the
services raise ``refusal.error()``, the dashboard shows a button only where the
answer is None (in the style of ``approvals.services.approval_refusal``). Each rule
and its messages are listed in docs/semantics.md §13.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from executions.choices import PipelineExecutionStatus, StageExecutionStatus
from executions.errors import (
    ExecutionError,
    ExecutionInvalid,
    ExecutionNotFound,
    ExecutionNotLatest,
    ExecutionNotStoppable,
    RollbackTargetInvalid,
    RollbackTargetOutdated,
    StageNotRetryable,
    StopAlreadyRequested,
)

E = PipelineExecutionStatus
S = StageExecutionStatus


@dataclass(frozen=True)
class Refusal:
    """A refused command: the error class the services raise and its message."""

    kind: type[ExecutionError]
    message: str
    problems: list[tuple[str, str]] = field(default_factory=list)

    def error(self) -> ExecutionError:
        if issubclass(self.kind, ExecutionInvalid):
            return self.kind(self.message, list(self.problems))
        return self.kind(self.message)

    def __str__(self) -> str:
        return self.message


def stop_refusal(*, number: int, status: str, abandon: bool) -> Refusal | None:
    """Why execution #``number`` (``status``) may not be stopped (docs/semantics.md §7)."""
    if status in E.TERMINAL:
        return Refusal(ExecutionNotStoppable,
                       f"Execution #{number} has already ended ({status}): it cannot be stopped.")
    if status == E.STOPPING and not abandon:
        return Refusal(StopAlreadyRequested,
                       f"Execution #{number} is already stopping; stop and abandon to end its "
                       "running actions at once.")
    return None


def stage_retry_refusal(*, number: int, status: str, stage_name: str,
                        latest_stage_status: str | None, superseded_by: int | None = None,
                        newer_number: int | None = None) -> Refusal | None:
    """Why stage ``stage_name`` of execution #``number`` may not be retried (§8).

    ``status``: the execution's; ``latest_stage_status``: its latest attempt at that
    stage (None: it never entered it); ``superseded_by``: the number of the execution
    that superseded it, if known; ``newer_number``: the first newer execution that
    has entered that stage since (None: none has).
    """
    if status == E.SUPERSEDED:
        by = f" by #{superseded_by}" if superseded_by else ""
        return Refusal(ExecutionNotLatest,
                       f"Execution #{number} was superseded{by}: it cannot be retried.")
    if status in E.ACTIVE:
        return Refusal(StageNotRetryable,
                       f"Execution #{number} is {status}: only a Failed or Stopped execution "
                       "can be retried.")
    if status == E.SUCCEEDED:
        return Refusal(StageNotRetryable,
                       f"Execution #{number} succeeded: there is nothing to retry.")
    if latest_stage_status is None:
        return Refusal(StageNotRetryable,
                       f'Execution #{number} never entered stage "{stage_name}": it cannot be '
                       "retried there.")
    if latest_stage_status not in (S.FAILED, S.STOPPED):
        return Refusal(StageNotRetryable,
                       f'Stage "{stage_name}" of execution #{number} is {latest_stage_status}: '
                       "only a Failed or Stopped stage can be retried.")
    if newer_number is not None:
        return Refusal(ExecutionNotLatest,
                       f'Execution #{newer_number} has entered stage "{stage_name}" since: '
                       f"execution #{number} can no longer be retried there.")
    return None


def rollback_refusal(*, pipeline_name: str, pipeline_version: int, stage_name: str,
                     stage_index: int, target_number: int, target_execution_id,
                     target_on_pipeline: bool, target_version: int,
                     target_stage_status: str | None) -> Refusal | None:
    """Why stage ``stage_name`` (at ``stage_index``) may not be rolled back to execution
    #``target_number`` (§12): the source stage never; the target must be an execution of
    this pipeline, on its current version, whose latest attempt at the stage succeeded.
    """
    if stage_index == 0:
        return Refusal(ExecutionInvalid,
                       f'"{stage_name}" is the source stage: it cannot be rolled back.',
                       [("stageName", "the source stage cannot be rolled back")])
    if not target_on_pipeline:
        return Refusal(ExecutionNotFound,
                       f"Execution {target_execution_id} is not an execution of "
                       f'"{pipeline_name}".')
    if target_version != pipeline_version:
        return Refusal(RollbackTargetOutdated,
                       f"Execution #{target_number} ran on version {target_version} of the "
                       f"pipeline, not on the current version {pipeline_version}: it cannot "
                       "be a rollback target.")
    if target_stage_status != S.SUCCEEDED:
        return Refusal(RollbackTargetInvalid,
                       f'Execution #{target_number} did not succeed in stage "{stage_name}": '
                       "only a successful execution can be a rollback target.")
    return None


def transition_refusal(*, pipeline_name: str, stage_name: str, stage_position: int | None,
                       enabled: bool, reason: str = "") -> Refusal | None:
    """Why the transition into ``stage_name`` (at ``stage_position``; None: no such
    stage) may not be enabled or disabled (§4): the first stage has none, and
    disabling needs a reason."""
    if stage_position is None:
        return Refusal(ExecutionNotFound,
                       f'Pipeline "{pipeline_name}" has no stage "{stage_name}".')
    if stage_position == 0:
        return Refusal(ExecutionInvalid,
                       f'"{stage_name}" is the first stage: there is no transition into it.',
                       [("stageName", "the first stage has no inbound transition")])
    if not enabled and not (reason or "").strip():
        return Refusal(ExecutionInvalid, "A reason is required to disable a transition.",
                       [("reason", "a reason is required to disable a transition")])
    return None
