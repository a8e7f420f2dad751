"""``ShellSession``: one bash per action; commands fed one at a time, state kept between them.

The commands of an action run in **one shell session**, as CodeBuild's buildspec
0.2 runs them: ``export``, ``cd``, shell variables, functions and options carry
from one command to the next. Python keeps the decisions — which command runs
next, phases, ``finally``, ``on-failure``, timeouts, stop — because every
command's exit status comes back to it:

1. ``spawn_shell`` starts ``bash`` once (the single place the sandbox plugs in),
   its stdin ``/dev/null``, its stdout and stderr one pipe pumped into the live
   log (``LogPump``: large reads, whole lines, secrets masked).
2. Each command travels NUL-terminated through a dedicated pipe (fd 200 inside
   the shell, never the commands' stdin) and runs with ``eval`` in the shell
   itself; the shell answers ``status N`` on a second pipe (fd 201). Both fds
   are closed for the command, so a build cannot read or forge them by accident.
3. A command that ends the shell (``exit 3``, a failure under ``set -e``) fails
   with that exit code. An EXIT trap first writes the shell's state (variables,
   exported or not, functions, options, working directory) on fd 201; the next
   command runs in a new shell that starts from that state — the CodeBuild
   behaviour a ``post_build`` or ``finally`` after a failure relies on. What the
   old shell started in the background ends with it.
4. ``close`` (and a stop, a timeout) kills the whole process group — the
   sandbox (bwrap and its pid namespace, daemons included) with it.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import re
import select
import signal
import subprocess
import termios
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runners import sandbox, watch
from runners.base import F_SETPIPE_SZ, RunContext, kill_process_group

# One read of the commands' output when it is masked (a splice takes all the pipe
# holds); the lines of a read share a timestamp (see LogPump). 256 KiB: large enough
# that a memory-speed producer costs
# few reads, small enough that a read stays in the CPU's cache when it must be
# masked (1 MiB reads were slower, bench/log_throughput.py). The pipe is enlarged
# (Linux F_SETPIPE_SZ) so a chatty command blocks less often while the pump writes.
READ_SIZE = 1 << 18
PIPE_SIZE = 1 << 20
# After a pull smaller than GATHER_ENOUGH (the pump caught up with the command), let
# more gather, up to COALESCE_SECONDS, before the next pull and its record (the log is
# still live to within a few milliseconds). The pause is taken in steps sized from
# the rate the pipe fills at (see ``ShellSession._gather``) and ends once the pipe
# holds GATHER_ENOUGH (half the pipe if smaller).
COALESCE_SECONDS = 0.005
GATHER_FIRST = 0.00025
GATHER_FIRST_MAX = 0.002
GATHER_ENOUGH = 1 << 19
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
# A line longer than this is written out in pieces (a progress bar without new lines).
MAX_PENDING = 1 << 20
# How often a waiting session looks at stop requests and deadlines.
POLL_SECONDS = 0.1

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Bash variables that describe the running shell itself: never carried to a new shell.
_NOT_CARRIED = ("BASH*|SHELLOPTS|EUID|UID|PPID|PIPESTATUS|FUNCNAME|GROUPS|RANDOM|SRANDOM|"
                "SECONDS|LINENO|HISTCMD|EPOCHREALTIME|EPOCHSECONDS|DIRSTACK|SHLVL|_|COMP_*|"
                "OPTIND|__conveyor_*")

# {cmd} and {status} are the fd numbers the shell inherited (numbers, never user data).
BOOTSTRAP = r"""
exec 200<&{cmd} 201>&{status} {cmd}<&- {status}>&-
__conveyor_exit() {{
  __conveyor_s=$?
  printf 'exit %d\0' "$__conveyor_s" >&201
  {{
    for __conveyor_n in $(compgen -v); do
      case $__conveyor_n in {not_carried}) ;; *) declare -p "$__conveyor_n" ;; esac
    done
    declare -f
    shopt -p
    printf 'cd -- %q || true\n' "$PWD"
    set +o
  }} >&201 2>/dev/null
}}
__conveyor_vars() {{
  for __conveyor_n in "$@"; do
    [[ -v $__conveyor_n ]] &&
      printf 'var %s=%s\0' "$__conveyor_n" "${{!__conveyor_n}}" >&201
  done
  return 0
}}
trap __conveyor_exit EXIT
while IFS= read -r -d '' -u 200 __conveyor_c; do
  case $__conveyor_c in
    c*) eval "${{__conveyor_c#c}}" 200<&- 201>&-; printf 'status %d\0' "$?" >&201 ;;
    q*) eval "${{__conveyor_c#q}}"; printf 'status %d\0' "$?" >&201 ;;
  esac
done
trap - EXIT
"""


class LogPump:
    """Copies a command's output into the log a read at a time.

    The direct path (nothing to mask, a log in the raw format, docs/runners.md
    "The log"): ``pull`` moves the pipe's bytes into the log file with
    ``os.splice`` — the worker never copies them, as ``cat`` would twice — and
    ``settle`` writes one index record for what the pulls since the last one
    moved: the time the lines arrived. Partial lines go too (readers present
    whole lines); ``flush`` ends an unfinished last line (a command that ended
    without a new line). Without ``os.splice`` (not Linux, a file system that
    refuses it) the same with ``os.read`` and ``write``.

    With secrets to mask the output passes through ``feed``: whole lines only,
    each read's lines written together (``LogWriter.write_lines``); a secret
    (never holding a new line, ``Masker`` splits them) can straddle two reads
    only within the line they share, so the read is joined to ``pending`` before
    masking — the masker sees every line whole. A line longer than
    ``MAX_PENDING`` is written in pieces, keeping back a tail as long as the
    longest secret. The inline format (an agent's log) takes the same path.
    """

    def __init__(self, log, masker=None):
        self.log = log
        self.masker = masker if masker else None
        self.pending = b""
        self.direct = self.masker is None and not getattr(log, "inline", True)
        self._splice = self.direct and hasattr(os, "splice")
        self._held: list[bytes] = []

    def pull(self, fd: int) -> int:
        """Take what the pipe ``fd`` holds (up to ``READ_SIZE``): the bytes taken, 0 at its
        end. They reach the log (direct path) or wait for ``settle``."""
        if self._splice:
            try:
                # (as much as the pipe holds: no copy here to keep in the CPU's cache)
                return self.log.splice(fd, PIPE_SIZE)
            except OSError:      # the log's file system refuses splice: read and write
                self._splice = False
        data = os.read(fd, READ_SIZE)
        if data:
            self._held.append(data)
        return len(data)

    def settle(self) -> None:
        """What the pulls since the last ``settle`` took arrived now: into the log, under
        one time."""
        if self._held:
            data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
            self._held.clear()
            if self.direct:
                self.log.write_raw(data)
            else:
                self.feed(data)
        if self.direct:
            self.log.mark()

    def feed(self, data: bytes) -> None:
        if not data:
            return
        if self.direct:
            self.log.write_raw(data)
            self.log.mark()
            return
        if self.masker is None and data.isascii() and self.pending.isascii():
            last = data.rfind(b"\n")
            if last >= 0:  # the fast path: no copy of the read
                self.log.write_lines(self.pending, data, last + 1)
                self.pending = data[last + 1:]
                return
        data = self.pending + data
        cut = data.rfind(b"\n") + 1
        if not cut:
            if len(data) < MAX_PENDING:
                self.pending = data
                return
            # A line too long to hold: written in pieces. Every whole secret in it is
            # masked first, and the start a secret could have here is kept back.
            if self.masker:
                data = self.masker.data(data)
            # (and at least 3 bytes: what follows the cut says whether it splits a
            # UTF-8 character)
            keep = max(self.masker.longest - 1 if self.masker else 0, 3)
            cut = _utf8_boundary(data, len(data) - keep)
            self.pending = data[cut:]
            self.log.write_block(data[:cut])
            return
        self.pending = data[cut:]
        self._write(data[:cut])

    def flush(self) -> None:
        self.settle()
        if self.direct:
            self.log.end_line()
        elif self.pending:
            block, self.pending = self.pending, b""
            self._write(block)

    def _write(self, block: bytes) -> None:
        if self.masker:
            block = self.masker.data(block)
        self.log.write_block(block)


def _not_a_channel(fd: int) -> int:
    """``fd``, or a duplicate of it numbered neither 200 nor 201 (``fd`` then closed)."""
    held = []
    while fd in (200, 201):
        held.append(fd)
        fd = os.dup(fd)
    for old in held:
        os.close(old)
    return fd


def _utf8_boundary(data: bytes, cut: int) -> int:
    """``cut`` moved back to the start of a UTF-8 character (a long line cut in pieces
    must not split one into two replacement characters)."""
    start = cut
    while start > 0 and cut - start < 3 and data[start] & 0xC0 == 0x80:
        start -= 1
    return start if start > 0 else cut


def spawn_shell(argv: Sequence[str], ctx: RunContext, *, env: dict, cwd: Path,
                stdout: int, pass_fds: Sequence[int], read_only: Iterable[Path] = (),
                read_write: Iterable[Path] = (),
                limits: sandbox.Limits | None = None,
                network: str | None = None) -> subprocess.Popen:
    """Start a session's shell: the one place every command of an action is launched from.

    The shell is the leader of a new process group (one ``killpg`` reaches
    everything it starts) with stdin ``/dev/null`` and stdout/stderr on
    ``stdout``; ``pass_fds`` are the command and status pipes. ``read_only`` and
    ``read_write`` are the folders the commands need besides their workspace
    (inputs, the action's home, the cache): the sandbox (``runners/sandbox.py``,
    ``wrap(argv, ctx, env=…, cwd=…, read_only=…, read_write=…) -> Launch``)
    plugs in here, and only here. ``limits`` and ``network`` None: the action's own.
    """
    launch = sandbox.wrap(list(argv), ctx, env=env, cwd=cwd, read_only=tuple(read_only),
                          read_write=tuple(read_write), limits=limits, network=network)
    proc = sandbox.start(
        launch, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT,
        pass_fds=(*launch.pass_fds, *pass_fds), start_new_session=True,
    )
    launch.close()
    return proc


def wait_exit(proc: subprocess.Popen, timeout: float) -> None:
    """Wait at most ``timeout`` seconds for ``proc`` to end, and reap it.

    Woken by the end itself (a pidfd, Linux 5.3+), not by ``Popen.wait``'s polling,
    whose sleeps (0.5, 1, 2 … ms) add their rest to every action's end; a process
    that does not end (stuck in the kernel) costs ``timeout`` and no more.
    """
    if proc.poll() is not None:
        return
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(timeout * 1000)
    finally:
        os.close(fd)
    proc.poll()


@dataclass
class Outcome:
    """How one command ended: its exit ``code``; ``shell_exited`` when it ended the
    shell (``exit``, ``set -e``); ``stopped``/``timed_out`` when Python ended it."""

    code: int
    shell_exited: bool = False
    stopped: bool = False
    timed_out: bool = False
    # The limit that ended it, when Python ended it for one (runners/watch.py).
    limit: str | None = None

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.stopped and not self.timed_out


class ShellSession:
    """One bash for the commands of one action (see the module docstring).

    ``run(command)`` returns the command's ``Outcome`` once the command ended and
    its output is in the log; ``variables(names)`` reads shell variables (exported
    or not) of the session; ``close()`` ends the shell and everything it started.
    ``posix`` runs bash in POSIX mode (a buildspec's ``env.shell: sh``).
    """

    def __init__(self, ctx: RunContext, *, env: dict, cwd: Path, masker=None,
                 read_only: Iterable[Path] = (), read_write: Iterable[Path] = (),
                 posix: bool = False, limits: sandbox.Limits | None = None,
                 network: str | None = None):
        self.ctx, self.env, self.cwd = ctx, env, cwd
        self.limits = limits  # None: the action's own (sandbox.limits_for)
        self.network = network  # None: the action's own (sandbox.network_for)
        self.read_only, self.read_write = tuple(read_only), tuple(read_write)
        self.posix = posix
        self.pump = LogPump(ctx.log, masker)
        self.proc: subprocess.Popen | None = None
        self._out_r, self._out_w = os.pipe()
        with contextlib.suppress(OSError):  # not Linux, or above /proc/sys/fs/pipe-max-size
            fcntl.fcntl(self._out_r, F_SETPIPE_SZ, PIPE_SIZE)
        # (what the pipe holds when a pause for trickling output ends: at most half of it)
        self._enough = GATHER_ENOUGH
        with contextlib.suppress(OSError):
            self._enough = min(GATHER_ENOUGH, fcntl.fcntl(self._out_r, F_GETPIPE_SZ) // 2)
        self._first_step = GATHER_FIRST   # the first pause of the next gathering
        self._caught_up = False            # the last pull was small (see _read_output)
        self._cmd_w = -1
        self._status_r = -1
        self._status_buf = b""
        self._watch: watch.BuildWatch | None = None
        self._snapshot: bytes | None = None
        self._closed = False
        self.lost_state = False   # a shell ended without leaving its state (its EXIT trap replaced)

    # --- the shell's life ---------------------------------------------------------

    def _start(self) -> None:
        cmd_r, cmd_w = os.pipe()
        status_r, status_w = os.pipe()
        # The shell moves them to 200 and 201 (BOOTSTRAP): passed under either number,
        # one would be overwritten or closed before it is moved.
        cmd_r, status_w = _not_a_channel(cmd_r), _not_a_channel(status_w)
        script = BOOTSTRAP.format(cmd=cmd_r, status=status_w, not_carried=_NOT_CARRIED)
        argv = ["bash", "--noprofile", "--norc"]
        if self.posix:
            argv += ["-o", "posix"]
        argv += ["-c", script, "conveyor-session"]
        try:
            self.proc = spawn_shell(argv, self.ctx, env=self.env, cwd=self.cwd,
                                    stdout=self._out_w, pass_fds=(cmd_r, status_w),
                                    read_only=self.read_only, read_write=self.read_write,
                                    limits=self.limits, network=self.network)
        finally:
            os.close(cmd_r)
            os.close(status_w)
        self._cmd_w, self._status_r, self._status_buf = cmd_w, status_r, b""
        self.ctx.set_process_group(self.proc.pid)
        limits = self.limits or sandbox.limits_for(self.ctx)
        self._watch = watch.BuildWatch(self.proc.pid, limits)
        if self._snapshot is not None:
            snapshot, self._snapshot = self._snapshot, None
            # The state the previous shell left: at top level (declare makes globals),
            # its complaints (read-only variables) silenced; options come last.
            self._send(b"q{\n" + snapshot + b"\n} 2>/dev/null")
            self._wait()

    def _end_shell(self) -> None:
        """The shell is gone or must go: kill its group, reap it, close its pipes."""
        if self.proc is None:
            return
        kill_process_group(self.proc.pid, signal.SIGKILL)
        wait_exit(self.proc, 5)
        self.ctx.clear_process_group(self.proc.pid)
        self._watch = None
        for fd in (self._cmd_w, self._status_r):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._cmd_w = self._status_r = -1
        self.proc = None
        self._drain()

    def close(self) -> None:
        """End the shell and everything it started; write what is left of the output."""
        if self._closed:
            return
        self._closed = True
        self._end_shell()
        self._drain()
        self.pump.flush()
        for fd in (self._out_r, self._out_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> ShellSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- commands -------------------------------------------------------------------

    def run(self, command: str, *, deadline: float | None = None) -> Outcome:
        """Run one command in the session; ``deadline`` is a ``time.monotonic()`` value."""
        return self._call(b"c" + self._encode(command), deadline)

    def query(self, code: str) -> Outcome:
        """Run Conveyor's own shell code (not logged as a command, fds left open)."""
        return self._call(b"q" + self._encode(code), None)

    def variables(self, names: Iterable[str]) -> dict[str, str]:
        """The values of the named shell variables that are set (exported or not)."""
        names = [n for n in names if NAME_RE.match(n)]
        if not names:
            return {}
        self._values: dict[str, str] = {}
        self.query("__conveyor_vars " + " ".join(names))
        return dict(self._values)

    @staticmethod
    def _encode(text: str) -> bytes:
        data = text.encode("utf-8", errors="surrogateescape")
        if b"\0" in data:
            raise ValueError("a command cannot hold a NUL character")
        return data

    def _call(self, message: bytes, deadline: float | None) -> Outcome:
        if self._closed:
            raise RuntimeError("the session is closed")
        if self.ctx.should_stop():
            return Outcome(code=-1, stopped=True)
        if self.proc is None:
            self._start()
        self._send(message)
        return self._wait(deadline)

    def _send(self, message: bytes) -> None:
        data = message + b"\0"
        try:
            while data:
                written = os.write(self._cmd_w, data)
                data = data[written:]
        except BrokenPipeError:
            pass  # the shell is gone: _wait sees its end

    def _wait(self, deadline: float | None = None) -> Outcome:
        """Pump output until the shell answers; then drain what the command wrote."""
        out_r, status_r = self._out_r, self._status_r
        while True:
            timeout = POLL_SECONDS
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - time.monotonic()))
            ready, _, _ = select.select([out_r, status_r], [], [], timeout)
            if out_r in ready:
                self._read_output()
            if status_r in ready:
                chunk = os.read(status_r, 65536)
                if not chunk:
                    return self._shell_ended()
                self._status_buf += chunk
                outcome = self._parse_status()
                if outcome is not None:
                    self._drain()
                    self.pump.flush()
                    return outcome
            if self.ctx.should_stop():
                self._end_shell()
                self.pump.flush()
                return Outcome(code=-1, stopped=True)
            if deadline is not None and time.monotonic() >= deadline:
                self._end_shell()
                self.pump.flush()
                return Outcome(code=-1, timed_out=True)
            if self._watch is not None and (limit := self._watch.check()):
                # The build as a whole is above its memory or CPU time limit: it ends here.
                self._end_shell()
                self.pump.flush()
                self.ctx.log.line(f"Limit: {limit}")
                return Outcome(code=128 + signal.SIGKILL, limit=limit)

    def _parse_status(self) -> Outcome | None:
        while True:
            if self._status_buf.startswith(b"exit "):
                return None  # the shell is ending: its state follows until EOF
            end = self._status_buf.find(b"\0")
            if end < 0:
                return None
            message, self._status_buf = self._status_buf[:end], self._status_buf[end + 1:]
            if message.startswith(b"status "):
                return Outcome(code=int(message[7:]))
            if message.startswith(b"var "):
                name, _, value = message[4:].partition(b"=")
                self._values[name.decode()] = value.decode("utf-8", errors="replace")

    def _shell_ended(self) -> Outcome:
        """The status pipe closed: the command ended the shell (or it was killed)."""
        assert self.proc is not None
        buf = self._status_buf
        code = None
        if buf.startswith(b"exit "):
            head, _, snapshot = buf.partition(b"\0")
            with contextlib.suppress(ValueError):
                code = int(head[5:])
            self._snapshot = snapshot
        else:
            self.lost_state = True
        proc = self.proc
        # Let the shell's own end come first (bwrap passes on how its command died): a
        # kill now would replace a SIGXCPU's exit status by the kill's.
        wait_exit(proc, 1)
        self._end_shell()
        self.pump.flush()
        if self.ctx.should_stop():
            return Outcome(code=-1, stopped=True)
        if code is None:
            returncode = proc.returncode
            code = returncode if isinstance(returncode, int) and returncode >= 0 else 1
        return Outcome(code=code, shell_exited=True)

    def _read_output(self) -> None:
        fd = self._out_r
        # The pump caught up with the command (its last pull was small): what it prints
        # now gathers for a moment (``_gather``) and is taken in one pull. Each pull is
        # a write to the log and each settle a record: a pump that ran after every few
        # kilobytes would pay that a thousand times for 50 MB (small writes to a file
        # cost more each than large ones), a line-flushed program far more.
        if self._caught_up:
            self._gather(fd)
        taken = self.pump.pull(fd)
        self._caught_up = 0 < taken < self._enough
        self.pump.settle()

    def _gather(self, fd: int) -> bool:
        """Wait until the output pipe ``fd`` holds ``_enough`` bytes, COALESCE_SECONDS at
        most. The first pause is as long as the last gathering's rate needs to fill it
        (GATHER_FIRST_MAX at most); each next one as long as the rate seen now needs for
        the rest, at most four times what was waited so far: a fast producer the pump
        merely caught up with must not stand blocked on a full pipe meanwhile. False when
        the shell answered meanwhile (the command ended: nothing more is coming)."""
        available = array.array("i", [0])
        try:
            fcntl.ioctl(fd, termios.FIONREAD, available)
        except OSError:
            return True
        start_held = available[0]
        if start_held >= self._enough:
            return True
        started = time.monotonic()
        until = started + COALESCE_SECONDS
        step = self._first_step
        held, elapsed = start_held, 0.0
        while True:
            # (a sleep the shell's answer ends: the command ended, its output is all there)
            if select.select([self._status_r], [], [], step)[0]:
                return False
            try:
                fcntl.ioctl(fd, termios.FIONREAD, available)
            except OSError:
                return True
            now = time.monotonic()
            held, elapsed = available[0], now - started
            if held >= self._enough or now >= until:
                break
            gained = held - start_held
            wanted = ((self._enough - held) * elapsed / gained) if gained > 0 else 2 * step
            step = max(GATHER_FIRST, min(wanted, 4 * elapsed, until - now))
        gained = held - start_held
        self._first_step = (max(GATHER_FIRST, min(GATHER_FIRST_MAX, (
            self._enough - start_held) * elapsed / gained)) if gained > 0 else GATHER_FIRST_MAX)
        return True

    def _drain(self) -> None:
        """Read what is already in the output pipe (the ended command wrote it all)."""
        with contextlib.suppress(OSError):
            while select.select([self._out_r], [], [], 0)[0]:
                if not self.pump.pull(self._out_r):
                    break
        self.pump.settle()
