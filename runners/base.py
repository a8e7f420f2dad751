"""The runner interface: how one action execution is carried out.

A runner is a small class registered by (category, provider). A worker claims
an action execution, builds a ``RunContext`` and calls ``run(ctx)``:

- return ``Result`` — the action Succeeded (summary, output variables, link,
  and for a source action the revision it resolved);
- raise ``ActionFailed(summary)`` — an expected failure (non-zero exit,
  rejection, bad input): the action Failed with that summary;
- return ``Waiting`` — the action stays InProgress and is completed later from
  outside through ``executions.engine.action_complete`` (an approval decision,
  a webhook callback); no worker holds it meanwhile;
- any other exception is a crash: the action Failed, the traceback stored.

``cancel(ctx)`` is called when the action is abandoned or times out while the
runner runs; the default kills the process group the runner recorded.
``check(action_doc)`` validates the action's configuration for pipeline
validation: it returns (relative path, message) pairs and must not touch the
database or the network. ``readiness(action_doc)`` says what the action still
needs from this installation before it can run (a connection, a build
project), or notes how it will run; it may read the database, never the
network.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from django.utils import timezone

from pipelines import secrets
from pipelines.providers import Readiness
from runners.logfile import RECORD, index_path, now_ms, stamp

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

__all__ = ["ActionFailed", "LogWriter", "Readiness", "Result", "Revision", "RunContext",
           "Runner", "Waiting", "file_lock", "kill_process_group"]


class ActionFailed(Exception):
    """An expected failure; ``summary`` is what a person reads on the action."""

    def __init__(self, summary: str, *, output_variables: dict | None = None,
                 external_url: str = ""):
        self.summary = summary
        self.output_variables = output_variables or {}
        self.external_url = external_url
        super().__init__(summary)


@dataclass
class Revision:
    """What a source action resolved (becomes a SourceRevision row)."""

    revision_id: str
    summary: str = ""
    url: str = ""
    change_identifier: str = ""
    artifact_name: str = ""
    # When the revision was committed (the lead time for changes starts there).
    committed_at: datetime | None = None


@dataclass
class Result:
    """A successful action: the engine stores it and the outputs in ``ctx.output_dirs``."""

    summary: str = ""
    output_variables: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    external_id: str = ""
    revision: Revision | None = None


@dataclass
class Waiting:
    """The action completes later from outside (see ``engine.action_complete``).

    ``token`` is the secret the outside party presents; the engine generates
    one when it is None.
    """

    summary: str = ""
    external_url: str = ""
    external_id: str = ""
    token: str | None = None


class LogWriter:
    """The action's live log under LOG_ROOT: the bytes as printed, and when (``runners.logfile``).

    Every write goes straight to the file and its index record follows it, so the
    log API can read it while the action runs. Thread-safe (a runner may pump
    stdout and stderr from two threads). ``inline=True`` writes the older format
    instead, a timestamp before every line in the file itself and no index: what
    an agent writes, because it ships its log to the server byte for byte. A log
    already holding lines without an index stays in that format.
    """

    def __init__(self, path: Path, *, inline: bool = False):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        index = index_path(path)
        # (not O_APPEND: os.splice refuses to write to such a file; the one writer of a
        # log is its LogWriter, which starts at its end)
        # (file objects own the descriptors: a writer nobody closed closes when collected)
        self._file = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0)
        self._fd = self._file.fileno()
        size = os.lseek(self._fd, 0, os.SEEK_END)
        self.inline = inline or (size > 0 and not index.exists())
        # (an empty log starts an empty index: records of a log deleted before are void)
        self._index_file = None if self.inline else os.fdopen(os.open(
            index, os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if not size else 0),
            0o644), "ab", buffering=0)
        self._index = -1 if self._index_file is None else self._index_file.fileno()
        self._size = size          # the log's size: where the next write goes
        self._indexed = size       # how far the index covers it
        self._lock = threading.Lock()
        self._partial = ""
        self._relay = None         # (read end, write end) of the pipe ``splice`` goes through
        self._splice_refused: OSError | None = None

    # --- the raw format (the default) ---------------------------------------------------

    def mark(self) -> None:
        """Record the time of what was written since the last record (the index's one write)."""
        if self._size > self._indexed:
            os.write(self._index, RECORD.pack(self._size, now_ms()))
            self._indexed = self._size

    def splice(self, fd: int, count: int) -> int:
        """Move up to ``count`` bytes from the pipe ``fd`` into the log, unseen (``os.splice``):
        the bytes moved, 0 at the pipe's end. Not recorded until ``mark``.

        Through a pipe of the writer's own (the *relay*): the kernel holds a pipe's
        lock while it writes a splice from it to a file, and a command writing into
        its pipe would wait that long (half a millisecond a MiB) — it would take turns
        with the pump where it runs beside ``cat``. Moving the pipe's pages to the relay
        takes microseconds (no copy); the relay's lock is held for the file's write.
        """
        with self._lock:
            if self._splice_refused:
                raise self._splice_refused
            if self._partial:
                self._append((self._partial + "\n").encode("utf-8", errors="replace"))
                self._partial = ""
            if self._relay is None:
                read, write = os.pipe()
                self._relay = (os.fdopen(read, "rb", buffering=0),
                               os.fdopen(write, "wb", buffering=0))
                with contextlib.suppress(OSError):   # not Linux: the pipe as it is
                    fcntl.fcntl(write, F_SETPIPE_SZ, count)
            relay_r, relay_w = (f.fileno() for f in self._relay)
            # (the relay is empty here: it takes at least as much as the pipe held)
            moved = left = os.splice(fd, relay_w, count)
            try:
                while left:
                    written = os.splice(relay_r, self._fd, left)
                    left -= written
                    self._size += written
            except OSError as exc:
                # The log's file system refuses splice: what the relay holds goes in as
                # bytes, and the next call says so before it takes anything (the caller
                # reads the pipe instead).
                while left:
                    data = os.read(relay_r, left)
                    left -= len(data)
                    self._append(data)
                self._splice_refused = exc
            return moved

    def write_raw(self, data: bytes) -> None:
        """Append bytes as they are, partial lines included (the pump's direct path without
        ``os.splice``). Not recorded until ``mark``."""
        with self._lock:
            if self._partial:
                self._append((self._partial + "\n").encode("utf-8", errors="replace"))
                self._partial = ""
            self._append(data)

    def end_line(self) -> None:
        """End an unfinished last line (a command that printed no final new line)."""
        with self._lock:
            if self._size and os.pread(self._fd, 1, self._size - 1) != b"\n":
                self._append(b"\n")
            self.mark()

    def _append(self, data) -> None:
        written = os.write(self._fd, data)
        while written < len(data):   # a short write (a full disk, a signal): finish it
            written += os.write(self._fd, memoryview(data)[written:])
        self._size += written

    def _stamp(self) -> str:
        return stamp(now_ms()).decode()

    def _lines(self, text: str) -> None:
        """Append complete lines of text (the lock held)."""
        if self.inline:
            stamp = self._stamp()
            text = "".join(f"{stamp}{line}\n" for line in text.split("\n")[:-1])
        self._append(text.encode("utf-8", errors="replace"))
        if not self.inline:
            self.mark()

    def write(self, text: str) -> None:
        """Append text; an unfinished last line waits for the rest of it."""
        with self._lock:
            text = self._partial + text
            cut = text.rfind("\n") + 1
            self._partial = text[cut:]
            if cut:
                self._lines(text[:cut])

    def write_block(self, data: bytes) -> None:
        """Append a block of whole lines (bytes ending in a new line) that arrived together.

        Invalid UTF-8 is replaced, as ``write`` does; a block not ending in a new
        line gets one.
        """
        if not data:
            return
        if not data.isascii():  # isascii is a fast scan; most logs are ASCII
            data = data.decode("utf-8", errors="replace").encode("utf-8")
        if not data.endswith(b"\n"):
            data += b"\n"
        self.write_lines(b"", data, len(data))

    def write_lines(self, head: bytes, data: bytes, cut: int) -> None:
        """Append the lines ``head + data[:cut]`` (``data[cut-1]`` is a new line, ``head``
        holds none); ASCII or valid UTF-8 only (the caller checks).

        The raw format writes them as they are with one ``writev``, then their index
        record. The inline format stamps them with the time of the write, in C: one
        ``bytes.replace`` over the whole of ``data`` (what follows ``cut`` holds no
        new line and is cut off again by a memoryview, not copied).
        """
        with self._lock:
            if self._partial:  # an unfinished line written before ends here
                self._lines(self._partial + "\n")
                self._partial = ""
            if self.inline:
                stamp = self._stamp().encode()
                stamped = data.replace(b"\n", b"\n" + stamp)
                end = len(stamped) - len(stamp) - (len(data) - cut)
                parts = [stamp, head, memoryview(stamped)[:end]]
            else:
                parts = [head, memoryview(data)[:cut]]
            total = sum(len(p) for p in parts)
            written = os.writev(self._fd, parts)
            if written < total:  # a short write: finish it
                rest = b"".join(parts)[written:]
                self._size += written
                self._append(rest)
            else:
                self._size += written
            if not self.inline:
                self.mark()

    def line(self, message: str) -> None:
        self.write(message.rstrip("\n") + "\n")

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            if self._partial:
                self._lines(self._partial + "\n")
                self._partial = ""
            if not self.inline:
                self.mark()
                self._index_file.close()
            self._file.close()
            for end in self._relay or ():
                end.close()
            self._relay = None
            self._fd = self._index = -1


@dataclass
class RunContext:
    """Everything a runner may use; the runner touches nothing else of the engine.

    ``action`` is the action document with every ``#{...}`` reference resolved
    (``configuration``, ``commands``, ``environmentVariables``, ...).
    ``variables`` holds the resolved variables by reference name
    (``"codepipeline.PipelineExecutionId"``, ``"variables.env"``,
    ``"SourceVariables.CommitId"``). ``input_dirs`` maps each input artifact
    name to a directory holding its extracted files; ``output_dirs`` an empty
    directory per output artifact, whose files become the artifact.
    """

    pipeline_name: str
    pipeline_execution_id: str
    execution_number: int
    pipeline_version: int
    stage_name: str
    action_name: str
    action_execution_id: str
    attempt: int
    category: str
    provider: str
    action: dict[str, Any]
    variables: dict[str, str]
    input_dirs: dict[str, Path]
    output_dirs: dict[str, Path]
    workspace: Path
    log: LogWriter
    deadline: datetime | None = None
    # sourceRevisions override given at start for this source action, if any:
    # {"actionName", "revisionType", "revisionValue"}.
    source_override: dict | None = None
    # What a runner would otherwise read from the database, looked up by the server
    # when the action runs on an agent (agents.work._extension): "sourceVersions",
    # "buildProject", "buildNumber". None on a worker: the runner reads the database.
    prepared: dict | None = None
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _stop_reason: str = field(default="", repr=False)
    _process_groups: list[int] = field(default_factory=list, repr=False)
    _on_process: Any = field(default=None, repr=False)
    # The action's log already says its commands run unsandboxed (runners/sandbox.py).
    _sandbox_noted: bool = field(default=False, repr=False)

    @property
    def configuration(self) -> dict[str, str]:
        """The resolved configuration, secret values unsealed (for this runner only)."""
        config = self.action.get("configuration") or {}
        if not any(secrets.is_sealed(v) for v in config.values()):
            return config
        try:
            return {k: secrets.unseal(v) for k, v in config.items()}
        except secrets.SecretUnusable as exc:
            raise ActionFailed(f"A secret of this action cannot be opened: {exc} (set the "
                               "old key in SECRET_KEY_FALLBACKS, or save the secret again)"
                               ) from None

    def should_stop(self) -> bool:
        """True once the action was abandoned, timed out or lost its lease: stop now."""
        return self._stop.is_set()

    @property
    def stop_reason(self) -> str:
        return self._stop_reason

    def wait_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if told to stop meanwhile."""
        return self._stop.wait(max(0.0, seconds))

    def remaining_seconds(self) -> float | None:
        if self.deadline is None:
            return None
        return (self.deadline - timezone.now()).total_seconds()

    def set_process_group(self, pgid: int) -> None:
        """Record a child process group (started with ``start_new_session=True``).

        Stop-and-abandon and timeouts kill the whole group, grandchildren included.
        """
        self._process_groups.append(pgid)
        if self._on_process is not None:
            self._on_process(pgid)

    def clear_process_group(self, pgid: int) -> None:
        if pgid in self._process_groups:
            self._process_groups.remove(pgid)

    def request_stop(self, reason: str) -> None:
        """Called by the worker (abandon, timeout, lost lease)."""
        if not self._stop.is_set():
            self._stop_reason = reason
            self._stop.set()

    def kill_process_groups(self, sig: int = signal.SIGKILL) -> None:
        for pgid in list(self._process_groups):
            kill_process_group(pgid, sig)


def kill_process_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a whole process group; False if it is already gone."""
    if not pgid or pgid <= 1 or pgid == os.getpgid(0):
        return False
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class Runner:
    """Base class of action runners; subclasses set ``provider`` and ``categories``."""

    provider: ClassVar[str] = ""
    categories: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    # The timeout when the action sets no timeoutInMinutes (docs/semantics.md §9).
    default_timeout_minutes: ClassVar[int] = 60
    # False for runners that only start something and answer Waiting (they
    # need no process of their own while they wait).
    runs_processes: ClassVar[bool] = True
    # The summary of an action that ran past its timeout (docs/semantics.md §9); "" keeps the
    # engine's "Action timed out after N min" (an approval says "approval expired").
    timeout_summary: ClassVar[str] = ""
    # Stop and wait lets running actions finish (docs/semantics.md §7). False for actions that
    # wait for people, not for work (a manual approval could hold a stop for days):
    # a stop-and-wait ends them at once, as Abandoned.
    stop_waits_for_it: ClassVar[bool] = True
    # Configuration keys whose values are secrets: sealed when a definition is saved,
    # shown as "****" everywhere, unsealed only in RunContext.configuration
    # (pipelines.secrets). A custom action type's `secret: true` properties go here.
    secret_configuration_keys: ClassVar[frozenset[str]] = frozenset()
    # True for the command runners an agent runs away from the database (Shell,
    # Commands, CodeBuild): their actions may set configuration.RunOn (docs/deploy.md).
    runs_on_agents: ClassVar[bool] = False

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        """Problems of the action's configuration as (relative path, message)."""
        return []

    def readiness(self, action_doc: dict) -> list[Readiness]:
        """What this action needs before it can run here, and notes; none by default."""
        return []

    def run(self, ctx: RunContext) -> Result | Waiting:
        raise NotImplementedError

    def cancel(self, ctx: RunContext) -> None:
        """Stop a running action at once (abandon, timeout): kill its process groups."""
        ctx.kill_process_groups(signal.SIGKILL)


@contextmanager
def file_lock(path: Path, ctx: RunContext | None = None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing), one holder at a time.

    While it waits, a stop of the action (``ctx``) ends the wait with ``ActionFailed``,
    so an abandoned action never hangs behind another one's lock.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if ctx is not None and ctx.wait_stop(0.1):
                    raise ActionFailed(f"Stopped: {ctx.stop_reason}") from None
                if ctx is None:
                    time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
