"""Errors of the execution services, each a sentence a person can act on.

The REST layer maps them: ``ExecutionConflict`` → 409, ``ExecutionInvalid`` →
400 (with ``problems``: (path, message) pairs), ``ExecutionNotFound`` → 404.
"""


class ExecutionError(Exception):
    """Base class; ``detail`` is the message shown to people."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)


class ExecutionConflict(ExecutionError):
    """The request conflicts with the current state (e.g. retrying a superseded execution)."""


class ExecutionInvalid(ExecutionError):
    """The request itself is wrong (unknown variable, bad retry mode, ...)."""

    def __init__(self, detail: str, problems: list[tuple[str, str]] | None = None):
        self.problems = problems or []
        super().__init__(detail)


class ExecutionNotFound(ExecutionError):
    """A stage, execution or action execution named by the request does not exist."""


# --- the kinds of conflict a caller may want to tell apart --------------------------------
# Each is an ExecutionConflict (the REST API answers all of them 409); the AWS
# endpoint names each with CodePipeline's own exception.


class ExecutionNotStoppable(ExecutionConflict):
    """Stopping an execution that has already ended."""


class StopAlreadyRequested(ExecutionConflict):
    """Stop and wait, again, for an execution that is already Stopping."""


class StageNotRetryable(ExecutionConflict):
    """The stage cannot be retried: the execution is running or succeeded, or the
    stage's latest attempt did not fail or stop, or the execution never entered it."""


class ExecutionNotLatest(ExecutionConflict):
    """A newer execution has passed this one: it was superseded, or a newer one has
    entered the stage since, so this one can no longer be retried there."""


class RollbackTargetInvalid(ExecutionConflict):
    """The target execution did not succeed in the stage to roll back."""


class RollbackTargetOutdated(ExecutionConflict):
    """The target execution ran on another version of the pipeline than the current one."""
