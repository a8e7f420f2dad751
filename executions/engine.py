"""The execution state machine (DESIGN.md "Execution semantics").

This commit holds the public signatures the other helpers build on; the
implementation follows in the next commit.
"""

from __future__ import annotations

from executions.models import ActionExecution, PipelineExecution, StageExecution

_PENDING = "executions.engine is being written: the implementation lands in the next commit"


def execution_create(*, pipeline, version, user, trigger_type, trigger_detail, variables,
                     source_revision_overrides, client_request_token,
                     execution_type="STANDARD", rollback_target=None,
                     rollback_stage_name="") -> PipelineExecution:
    raise NotImplementedError(_PENDING)


def execution_stop(execution, *, abandon, reason, user) -> PipelineExecution:
    raise NotImplementedError(_PENDING)


def stage_retry(execution, *, stage_name, mode, user) -> StageExecution:
    raise NotImplementedError(_PENDING)


def transition_changed(pipeline, *, stage_name, user) -> None:
    raise NotImplementedError(_PENDING)


def action_complete(action_execution_pk, *, succeeded, summary="", output_variables=None,
                    external_url="") -> bool:
    raise NotImplementedError(_PENDING)


def action_claim(action_execution_pk, *, worker) -> ActionExecution | None:
    raise NotImplementedError(_PENDING)
