"""Errors of the condition services (REST answers 409 / 400 through ``executions.errors``)."""

from executions.errors import ExecutionConflict


class ConditionNotOverridable(ExecutionConflict):
    """Nothing to override: no such condition is being evaluated, or it is a SKIP
    condition (CodePipeline's ConditionNotOverridableException)."""
