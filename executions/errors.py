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
