"""Reading an action's live log from a byte offset.

The worker appends timestamped lines to ``LOG_ROOT/<log_path>`` and flushes
each one, so the log can be read while the action runs: a client asks from
offset 0, then from each answer's ``nextOffset``. An answer holds whole UTF-8
characters only (a character cut by the read limit or by a write in progress is
left for the next answer), so ``nextOffset`` is always a character boundary.

``complete`` is True once nothing more will be written: the action has ended
and the answer reaches the end of the file. An action that ended otherwise
than by its own worker's report (abandoned, timed out or lost) may still get
its worker's last line ("Stopped: ...") a moment later, so for an action that
did not succeed ``complete`` waits ``SETTLE_SECONDS`` after its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from executions.choices import ActionExecutionStatus
from executions.models import ActionExecution

DEFAULT_LIMIT = 256 * 1024
MAX_LIMIT = 1024 * 1024
MIN_LIMIT = 1024
SETTLE_SECONDS = 3


class OffsetBeyondEnd(Exception):
    def __init__(self, size: int):
        self.size = size
        super().__init__(size)


@dataclass(frozen=True)
class LogPiece:
    offset: int
    next_offset: int
    size: int
    text: str
    complete: bool


def log_file(ae: ActionExecution) -> Path | None:
    """The log file of an action execution, or None before a worker started it."""
    if not ae.log_path:
        return None
    return under_log_root(ae.log_path)


def under_log_root(relative: str) -> Path | None:
    """``LOG_ROOT/relative``, or None if that leads outside ``LOG_ROOT``."""
    root = Path(settings.LOG_ROOT).resolve()
    path = (root / relative).resolve()
    # Log paths are made from names and UUIDs; refuse anything outside anyway.
    if root not in path.parents:
        return None
    return path


def whole_characters(data: bytes) -> int:
    """The length of ``data`` without a UTF-8 sequence cut at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)          # ASCII: nothing cut
        if byte >= 0xC0:              # a lead byte: does its sequence fit?
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= needed else len(data) - back
    return len(data)


def log_read(ae: ActionExecution, *, offset: int = 0, limit: int = DEFAULT_LIMIT) -> LogPiece:
    """Read the log of ``ae`` from byte ``offset`` (at most ``limit`` bytes)."""
    # The status is read before the file: an action seen ended has written its
    # last line (modulo SETTLE_SECONDS), so ``complete`` is never claimed early.
    ended = settled(ae.status, ae.ended_at, terminal=ActionExecutionStatus.TERMINAL,
                    succeeded=ActionExecutionStatus.SUCCEEDED)
    return log_read_file(log_file(ae), ended=ended, offset=offset, limit=limit)


def settled(status: str, ended_at, *, terminal, succeeded: str) -> bool:
    """Whether a log's writer has written its last line: it ended ``succeeded`` (its own
    report), or ended otherwise at least ``SETTLE_SECONDS`` ago."""
    return status in terminal and (
        status == succeeded or ended_at is None
        or ended_at <= timezone.now() - timedelta(seconds=SETTLE_SECONDS))


def log_read_file(path: Path | None, *, ended: bool, offset: int = 0,
                  limit: int = DEFAULT_LIMIT) -> LogPiece:
    """Read the log file at ``path`` (None: not started) from byte ``offset``; ``ended``:
    its writer has finished (read before the file, so ``complete`` is never early)."""
    limit = max(MIN_LIMIT, min(limit, MAX_LIMIT))
    data = b""
    size = 0
    if path is not None and path.exists():
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if offset > size:
                raise OffsetBeyondEnd(size)
            f.seek(offset)
            data = f.read(min(limit, size - offset))
    elif offset > 0:
        raise OffsetBeyondEnd(0)
    data = data[:whole_characters(data)]
    next_offset = offset + len(data)
    return LogPiece(offset=offset, next_offset=next_offset, size=size,
                    text=data.decode("utf-8", errors="replace"),
                    complete=ended and next_offset >= size)
