"""The vocabulary of stage conditions, in CodePipeline's own strings (docs/conditions.md).

Each status set has its ``TERMINAL`` and ``ACTIVE`` groups and the table of allowed
status changes beside it; ``conditions.records`` refuses any move the table does not
list (a compare-and-set, as ``executions.statuses`` does for executions). The sets hold
plain strings (an Enum member hashes by its name).
"""

from django.db import models


class ConditionKind(models.TextChoices):
    """Which of a stage's conditions (the pipeline structure's member names)."""

    BEFORE_ENTRY = "beforeEntry", "Before entry"
    ON_SUCCESS = "onSuccess", "On success"
    ON_FAILURE = "onFailure", "On failure"


# CodePipeline's ``conditionType`` (OverrideStageCondition) for each kind, and back.
CONDITION_TYPES = {"beforeEntry": "BEFORE_ENTRY", "onSuccess": "ON_SUCCESS",
                   "onFailure": "ON_FAILURE"}
KINDS_BY_TYPE = {value: key for key, value in CONDITION_TYPES.items()}
# GetPipelineState's member for each kind.
STATE_MEMBERS = {"beforeEntry": "beforeEntryConditionState",
                 "onSuccess": "onSuccessConditionState",
                 "onFailure": "onFailureConditionState"}


class ConditionResult(models.TextChoices):
    """What a condition does when it engages (CodePipeline's ``Result``)."""

    FAIL = "FAIL", "Fail"
    SKIP = "SKIP", "Skip"
    ROLLBACK = "ROLLBACK", "Roll back"
    RETRY = "RETRY", "Retry"


class ConditionExecutionStatus(models.TextChoices):
    """CodePipeline's ConditionExecutionStatus.

    Succeeded: every rule succeeded. Failed: a rule failed. Errored: a rule could not
    be evaluated (a crash, not an answer). Cancelled: the execution was stopped while
    the condition was evaluated. Abandoned: a newer execution superseded the one
    waiting for it. Overridden: a person let the stage proceed.
    """

    IN_PROGRESS = "InProgress", "In progress"
    FAILED = "Failed", "Failed"
    ERRORED = "Errored", "Errored"
    SUCCEEDED = "Succeeded", "Succeeded"
    CANCELLED = "Cancelled", "Cancelled"
    ABANDONED = "Abandoned", "Abandoned"
    OVERRIDDEN = "Overridden", "Overridden"


ConditionExecutionStatus.ACTIVE = frozenset({"InProgress"})
ConditionExecutionStatus.TERMINAL = frozenset({"Failed", "Errored", "Succeeded", "Cancelled",
                                               "Abandoned", "Overridden"})
ConditionExecutionStatus.TRANSITIONS = {
    "InProgress": frozenset({"Failed", "Errored", "Succeeded", "Cancelled", "Abandoned",
                             "Overridden"}),
    **{status: frozenset() for status in ConditionExecutionStatus.TERMINAL},
}


class RuleExecutionStatus(models.TextChoices):
    """CodePipeline's RuleExecutionStatus. Abandoned: its condition ended before the rule
    decided (overridden, stopped, superseded)."""

    IN_PROGRESS = "InProgress", "In progress"
    ABANDONED = "Abandoned", "Abandoned"
    SUCCEEDED = "Succeeded", "Succeeded"
    FAILED = "Failed", "Failed"


RuleExecutionStatus.ACTIVE = frozenset({"InProgress"})
RuleExecutionStatus.TERMINAL = frozenset({"Abandoned", "Succeeded", "Failed"})
RuleExecutionStatus.TRANSITIONS = {
    # InProgress -> InProgress: a waiting rule evaluated again (new summary, recheck time).
    "InProgress": frozenset({"InProgress", "Abandoned", "Succeeded", "Failed"}),
    "Abandoned": frozenset(),
    "Succeeded": frozenset(),
    "Failed": frozenset(),
}
