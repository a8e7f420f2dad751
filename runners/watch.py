"""The memory and CPU time of a build as a whole, summed over its processes by the worker.

The sandbox's kernel limits (runners/sandbox.py) hold per process: RLIMIT_DATA
cannot see that a build's four test processes hold 1 GiB each. A limit for the
build as a whole needs a memory cgroup, which an unprivileged worker cannot make
without a delegated cgroup tree (docs/security.md, "Limits"). So the worker
measures instead: every ``EVERY_SECONDS`` while a command runs
(``SCAN_EVERY_SECONDS`` unsandboxed on a kernel without children lists), it lists the
build's processes and adds up the memory each holds of its own — anonymous and
shared-memory pages, each shared page divided among the processes sharing it
(``Pss_Anon + Pss_Shmem`` of ``/proc/<pid>/smaps_rollup``: a forked child does
not count its parent's pages a second time). Above the limit, the session ends
the build and the action fails naming the limit. CPU time likewise
(``BuildWatch``): RLIMIT_CPU holds per process, the sum for the build is watched.

Which processes: in the sandbox, every process of its pid namespace, listed from
the namespace's own ``/proc`` (reached from outside as ``/proc/<pid>/root/proc``
of a process inside; a mount point the build has no right to replace) — daemons
that left their parent included, and the look costs what the build's own
processes cost. Unsandboxed, the descendants of the session's shell, found from
each process's list of its children (``/proc/<pid>/task/<tid>/children``), or by
scanning every process's parent id where the kernel keeps no such lists (a daemon
that left the tree is not counted either way).

What this is not: a kernel limit. Between two looks a build can exceed the limit
(by what it allocates in ``EVERY_SECONDS``); each single process is still held
by RLIMIT_DATA at the same number.
"""

from __future__ import annotations

import os
import time

# A look at a build costs about 0.5 ms (the sandbox's own /proc, or unsandboxed the
# children lists of the session's processes); where the kernel keeps no children
# lists, an unsandboxed look scans every process of the machine (about 8 ms at 170
# processes, load 10): less often.
EVERY_SECONDS = 0.25
SCAN_EVERY_SECONDS = 1.0
CHILDREN_LISTS = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
KIB = 1024
MIB = 1 << 20
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# A single process at the CPU time limit is ended by the kernel (SIGXCPU, named with
# certainty): the build's sum is allowed this much more, so the kernel speaks first.
CPU_GRACE_SECONDS = 1.0
# Likewise memory: one process at RLIMIT_DATA plus the session's own shell and bwrap
# (a few MiB) would be above the sum otherwise, and the process's refusal not seen.
MEMORY_GRACE = 8 * MIB


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it: from each process's own list of its children
    (``/proc/<pid>/task/<tid>/children``: the look costs what the build's processes
    cost), or, on a kernel without those lists, from every process's parent id."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue  # ended meanwhile
        listed = False
        for tid in tasks:
            try:
                data = _read(f"/proc/{pid}/task/{tid}/children")
            except FileNotFoundError:
                if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                    continue  # the thread ended meanwhile
                return _descendants_by_scan(root)  # no children lists here
            except OSError:
                continue
            listed = True
            todo.extend(int(child) for child in data.split())
        if listed:
            found.append(pid)
    return found


def _descendants_by_scan(root: int) -> list[int]:
    """``descendants`` from the parent ids in ``/proc/*/stat`` (a scan of the machine)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            data = _read(f"/proc/{name}/stat")
        except OSError:
            continue  # ended meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        fields = data[data.rfind(b")") + 2:].split(b" ", 2)
        children.setdefault(int(fields[1]), []).append(int(name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def namespace_proc(pids: list[int]) -> str | None:
    """The ``/proc`` of the pid namespace the first of ``pids`` in another namespace
    than the worker's belongs to (the sandbox's), or None (unsandboxed)."""
    try:
        own = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    for pid in pids:
        try:
            if os.readlink(f"/proc/{pid}/ns/pid") != own:
                path = f"/proc/{pid}/root/proc"
                os.listdir(path)
                return path
        except OSError:
            continue
    return None


def own_memory(proc: str, pid: int | str) -> int:
    """The bytes ``pid`` holds of its own (proportional anonymous and shared memory)."""
    try:
        text = _read(f"{proc}/{pid}/smaps_rollup")
    except OSError:
        return _resident_not_file(proc, pid)
    total = 0
    for line in text.splitlines():
        if line.startswith((b"Pss_Anon:", b"Pss_Shmem:")):
            total += int(line.split()[1]) * KIB
    return total


def _resident_not_file(proc: str, pid: int | str) -> int:
    """Without smaps_rollup (an older kernel): resident pages less file-backed ones."""
    try:
        fields = _read(f"{proc}/{pid}/statm").split()
    except OSError:
        return 0
    return max(0, int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(proc: str, pid: int | str) -> float:
    """The CPU time ``pid`` used and the CPU time of the children it reaped (a child's
    own reaped children included: the kernel adds them up at each reaping)."""
    try:
        data = _read(f"{proc}/{pid}/stat")
    except OSError:
        return 0.0
    # After "(comm) ": state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime ...
    fields = data[data.rfind(b")") + 2:].split(b" ", 16)
    return sum(int(f) for f in fields[11:15]) / CLOCK_TICKS


def usage(proc: str, pids: list) -> tuple[int, float, int]:
    """(bytes held, CPU seconds used, number of processes) of ``pids`` under ``proc``."""
    held = sum(own_memory(proc, pid) for pid in pids)
    return held, sum(cpu_seconds(proc, pid) for pid in pids), len(pids)


class BuildWatch:
    """Looks at a build at most every ``EVERY_SECONDS``; ``check()`` returns the phrase
    naming the limit once the build as a whole holds more memory than
    ``limits.memory_mib`` or has used more CPU time than ``limits.cpu_seconds``.

    CPU time: the live processes' own and what the children they reaped used, so
    a process that ended still counts (in the sandbox, an orphan is reaped by the
    namespace's init, which lives as long as the shell). It counts from the start
    of the session's shell; a shell that ended (``exit``) and was started again
    starts from zero.
    """

    def __init__(self, root: int, limits):
        self.root, self.limits = root, limits
        self.next = time.monotonic() + EVERY_SECONDS
        self.proc: str | None = None  # the sandbox's /proc, once found

    def build_usage(self) -> tuple[int, float, int]:
        """(bytes held, CPU seconds used, number of processes) of the build."""
        for _ in range(2):
            if self.proc is None:
                pids = descendants(self.root)
                self.proc = namespace_proc(pids)
                if self.proc is None:
                    return usage("/proc", pids)
            try:
                names = [name for name in os.listdir(self.proc) if name.isdigit()]
            except OSError:
                self.proc = None  # the process it was reached through ended
                continue
            return usage(self.proc, names)
        return 0, 0.0, 0

    def check(self) -> str | None:
        now = time.monotonic()
        if now < self.next:
            return None
        held, cpu, count = self.build_usage()
        self.next = time.monotonic() + (
            EVERY_SECONDS if self.proc or CHILDREN_LISTS else SCAN_EVERY_SECONDS)
        memory_mib, cpu_limit = self.limits.memory_mib, self.limits.cpu_seconds
        if held > memory_mib * MIB + MEMORY_GRACE:
            return (f"the memory limit ({memory_mib} MiB for the build as a whole) was "
                    f"exceeded: its {count} processes held {held / MIB:.0f} MiB together")
        if cpu > cpu_limit + CPU_GRACE_SECONDS:
            return (f"the CPU time limit ({cpu_limit} s for the build as a whole) was "
                    f"exceeded: its processes used {cpu:.1f} s together")
        return None
