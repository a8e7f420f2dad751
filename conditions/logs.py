"""A Commands rule's log (docs/conditions.md §2): written by ``conditions.evaluation``
beside its execution's action logs under ``LOG_ROOT``, named by its rule execution id;
read by the REST API and the dashboard as an action's log is (``executions.api.logs``)."""

from __future__ import annotations

from pathlib import Path

from conditions.choices import RuleExecutionStatus
from conditions.models import RuleExecution
from executions.api import logs


def rule_log_name(*, pipeline_name: str, execution_id, rule_execution_id) -> str:
    """The log's path under ``LOG_ROOT``."""
    return f"{pipeline_name}/{execution_id}/rule-{rule_execution_id}.log"


def rule_log_file(rule: RuleExecution) -> Path | None:
    """The log file of ``rule`` (it may not exist: only a Commands rule that started
    its commands has one)."""
    execution = rule.condition_execution.stage_execution.execution
    return logs.under_log_root(rule_log_name(
        pipeline_name=execution.pipeline.name, execution_id=execution.execution_id,
        rule_execution_id=rule.rule_execution_id))


def rule_log_exists(rule: RuleExecution) -> bool:
    path = rule_log_file(rule)
    return path is not None and path.exists()


def rule_log_read(rule: RuleExecution, *, offset: int = 0,
                  limit: int = logs.DEFAULT_LIMIT) -> logs.LogPiece:
    """Read ``rule``'s log from byte ``offset``; ``complete`` once the rule has ended and
    its evaluation has written its last line."""
    ended = logs.settled(rule.status, rule.ended_at, terminal=RuleExecutionStatus.TERMINAL,
                         succeeded=RuleExecutionStatus.SUCCEEDED)
    return logs.log_read_file(rule_log_file(rule), ended=ended, offset=offset, limit=limit)
