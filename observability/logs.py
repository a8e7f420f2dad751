"""Structured logs: ``LOG_FORMAT=json`` writes one JSON object per line.

The worker sets the ids of the action it runs in a context variable
(``log_context``) around the action; ``ContextFilter`` copies them onto every
log record made meanwhile, in that thread or in a thread started with the
context copied (the Python runner does), so a line says which pipeline,
execution, stage and action it is about without every call passing them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from datetime import UTC, datetime

# The fields a record may carry, in the order they are written.
CONTEXT_FIELDS = ("pipeline", "execution_id", "execution_number", "stage",
                  "stage_execution_id", "action", "action_execution_id", "attempt")

_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "conveyor_log_context", default=None)


@contextlib.contextmanager
def log_context(**fields):
    """Within the block, log records carry these fields (added to any already set)."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> dict:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    """Copies the current ``log_context`` fields onto the record (never filters out)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the
    context fields the record carries, and ``exception`` (the traceback) if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)
