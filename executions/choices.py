"""The execution vocabulary, in CodePipeline's own strings.

Each status set has its ``TERMINAL`` and ``ACTIVE`` groups and the table of
allowed status changes beside it; ``executions.engine`` refuses any move the
table does not list. The sets and tables hold plain strings: an Enum member
hashes by its *name*, so ``"InProgress" in {member}`` would be False.
"""

from django.db import models


class PipelineExecutionStatus(models.TextChoices):
    IN_PROGRESS = "InProgress", "In progress"
    STOPPING = "Stopping", "Stopping"
    STOPPED = "Stopped", "Stopped"
    SUCCEEDED = "Succeeded", "Succeeded"
    SUPERSEDED = "Superseded", "Superseded"
    FAILED = "Failed", "Failed"


PipelineExecutionStatus.ACTIVE = frozenset({"InProgress", "Stopping"})
PipelineExecutionStatus.TERMINAL = frozenset({"Stopped", "Succeeded", "Superseded", "Failed"})
PipelineExecutionStatus.TRANSITIONS = {
    "InProgress": frozenset({"Stopping", "Stopped", "Succeeded", "Superseded", "Failed"}),
    "Stopping": frozenset({"Stopped"}),
    # Retrying a stage makes a Failed or Stopped execution InProgress again (docs/semantics.md §8).
    "Stopped": frozenset({"InProgress"}),
    "Failed": frozenset({"InProgress"}),
    "Succeeded": frozenset(),
    "Superseded": frozenset(),
}


class StageExecutionStatus(models.TextChoices):
    IN_PROGRESS = "InProgress", "In progress"
    STOPPING = "Stopping", "Stopping"
    STOPPED = "Stopped", "Stopped"
    SUCCEEDED = "Succeeded", "Succeeded"
    FAILED = "Failed", "Failed"
    # A beforeEntry condition with result SKIP engaged: no action ran (docs/conditions.md).
    SKIPPED = "Skipped", "Skipped"


# ACTIVE is also the set of statuses that hold the stage lock (docs/semantics.md §1).
StageExecutionStatus.ACTIVE = frozenset({"InProgress", "Stopping"})
StageExecutionStatus.TERMINAL = frozenset({"Stopped", "Succeeded", "Failed", "Skipped"})
# The statuses an execution moves on from (the next stage is entered).
StageExecutionStatus.PASSED = frozenset({"Succeeded", "Skipped"})
StageExecutionStatus.TRANSITIONS = {
    "InProgress": frozenset({"Stopping", "Stopped", "Succeeded", "Failed", "Skipped"}),
    "Stopping": frozenset({"Stopped"}),
    # A retry is a new StageExecution row (attempt + 1): an ended one never reopens.
    "Stopped": frozenset(),
    "Succeeded": frozenset(),
    "Failed": frozenset(),
    "Skipped": frozenset(),
}


class ActionExecutionStatus(models.TextChoices):
    IN_PROGRESS = "InProgress", "In progress"
    ABANDONED = "Abandoned", "Abandoned"
    SUCCEEDED = "Succeeded", "Succeeded"
    FAILED = "Failed", "Failed"


ActionExecutionStatus.ACTIVE = frozenset({"InProgress"})
ActionExecutionStatus.TERMINAL = frozenset({"Abandoned", "Succeeded", "Failed"})
ActionExecutionStatus.TRANSITIONS = {
    "InProgress": frozenset({"Abandoned", "Succeeded", "Failed"}),
    # A retry is a new ActionExecution row (attempt + 1).
    "Abandoned": frozenset(),
    "Succeeded": frozenset(),
    "Failed": frozenset(),
}


class ExecutionType(models.TextChoices):
    STANDARD = "STANDARD", "Standard"
    ROLLBACK = "ROLLBACK", "Rollback"


class TriggerType(models.TextChoices):
    """What started an execution (CodePipeline's ``trigger.triggerType``)."""

    CREATE_PIPELINE = "CreatePipeline", "Pipeline created"
    START_PIPELINE_EXECUTION = "StartPipelineExecution", "Started by a person or a client"
    POLL_FOR_SOURCE_CHANGES = "PollForSourceChanges", "Source change found by polling"
    WEBHOOK = "Webhook", "Push webhook"
    WEBHOOK_V2 = "WebhookV2", "Push webhook (trigger filters)"
    CLOUDWATCH_EVENT = "CloudWatchEvent", "Event rule"
    PUT_ACTION_REVISION = "PutActionRevision", "Revision put by a client"
    MANUAL_ROLLBACK = "ManualRollback", "Manual rollback"
    AUTOMATED_ROLLBACK = "AutomatedRollback", "Automated rollback"


class RetryMode(models.TextChoices):
    FAILED_ACTIONS = "FAILED_ACTIONS", "Failed actions"
    ALL_ACTIONS = "ALL_ACTIONS", "All actions"


class RetryTrigger(models.TextChoices):
    """Who retried a stage (CodePipeline's ``retryStageMetadata.latestRetryTrigger``)."""

    AUTOMATED = "AutomatedStageRetry", "Automatic retry (onFailure RETRY)"
    MANUAL = "ManualStageRetry", "Retried by a person or a client"


class WaitingReason(models.TextChoices):
    """Why an inbound execution waits at the gate of a stage (docs/semantics.md §2)."""

    STAGE_LOCKED = "StageLocked", "The stage is in use by another execution"
    TRANSITION_DISABLED = "TransitionDisabled", "The transition into the stage is disabled"
    QUEUED_BEHIND = "QueuedBehind", "An earlier execution is waiting to enter first"


class EventKind(models.TextChoices):
    """What an ExecutionEvent records."""

    PIPELINE_EXECUTION = "PipelineExecution", "Execution status change"
    STAGE_EXECUTION = "StageExecution", "Stage status change"
    ACTION_EXECUTION = "ActionExecution", "Action status change"
    INBOUND = "Inbound", "Execution waits at a stage"
    TRANSITION = "Transition", "Transition enabled or disabled"
    # A stage condition's or one of its rules' status change (conditions.records says
    # what its data holds).
    CONDITION = "condition", "Condition or rule status change"
