"""Reading an action's live log from a byte offset.

The worker appends the action's output to ``LOG_ROOT/<log_path>`` as it
arrives, with the time of each write in an index beside it (``runners.logfile``),
so the log can be read while the action runs: a client asks from offset 0, then
from each answer's ``nextOffset`` (byte offsets into the stored log). An answer
holds whole lines, each with its timestamp, unless a line is longer than the
limit (a piece of it, cut at a UTF-8 character) or the action ended (its last
line even without a new line); a line still being written is left for the next
answer.

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
from runners import logfile
from runners.logfile import OffsetBeyondEnd, whole_characters  # noqa: F401 (the API's names)

DEFAULT_LIMIT = 256 * 1024
MAX_LIMIT = 1024 * 1024
MIN_LIMIT = 1024
SETTLE_SECONDS = 3


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
    if path is None:
        if offset > 0:
            raise OffsetBeyondEnd(0)
        return LogPiece(offset=0, next_offset=0, size=0, text="", complete=ended)
    piece = logfile.read(path, offset, limit, final=ended)
    return LogPiece(offset=offset, next_offset=piece.next_offset, size=piece.size,
                    text=piece.text, complete=ended and piece.at_end)
