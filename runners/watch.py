"""The memory of a build as a whole: its processes' memory summed, watched by the worker.

The sandbox's kernel limits (runners/sandbox.py) hold per process: RLIMIT_DATA
cannot see that a build's four test processes hold 1 GiB each. A limit for the
build as a whole needs a memory cgroup, which an unprivileged worker cannot make
without a delegated cgroup tree (docs/security.md, "Limits"). So the worker
measures instead: every ``EVERY_SECONDS`` while a command runs
(``SCAN_EVERY_SECONDS`` unsandboxed), it lists the
build's processes and adds up the memory each holds of its own — anonymous and
shared-memory pages, each shared page divided among the processes sharing it
(``Pss_Anon + Pss_Shmem`` of ``/proc/<pid>/smaps_rollup``: a forked child does
not count its parent's pages a second time). Above the limit, the session ends
the build and the action fails naming the limit.

Which processes: in the sandbox, every process of its pid namespace, listed from
the namespace's own ``/proc`` (reached from outside as ``/proc/<pid>/root/proc``
of a process inside; a mount point the build has no right to replace) — daemons
that left their parent included, and the look costs what the build's own
processes cost. Unsandboxed, the descendants of the session's shell, found by
scanning every process's parent id (a daemon that left the tree is not counted).

What this is not: a kernel limit. Between two looks a build can exceed the limit
(by what it allocates in ``EVERY_SECONDS``); each single process is still held
by RLIMIT_DATA at the same number.
"""

from __future__ import annotations

import os
import time

# A look at a sandboxed build costs about 0.5 ms (its own /proc); unsandboxed, a scan
# of every process on the machine (about 8 ms at 170 processes, load 10): less often.
EVERY_SECONDS = 0.25
SCAN_EVERY_SECONDS = 1.0
KIB = 1024
MIB = 1 << 20


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the parent ids in ``/proc/*/stat``."""
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


class MemoryWatch:
    """Looks at a build's memory at most every ``EVERY_SECONDS``; ``check()`` returns
    the phrase naming the limit once the build holds more than ``limit_mib``."""

    def __init__(self, root: int, limit_mib: int):
        self.root, self.limit_mib = root, limit_mib
        self.next = time.monotonic() + EVERY_SECONDS
        self.proc: str | None = None  # the sandbox's /proc, once found

    def build_memory(self) -> tuple[int, int]:
        """(bytes held, number of processes) of the build."""
        for _ in range(2):
            if self.proc is None:
                pids = descendants(self.root)
                self.proc = namespace_proc(pids)
                if self.proc is None:
                    return sum(own_memory("/proc", pid) for pid in pids), len(pids)
            try:
                names = [name for name in os.listdir(self.proc) if name.isdigit()]
            except OSError:
                self.proc = None  # the process it was reached through ended
                continue
            return sum(own_memory(self.proc, pid) for pid in names), len(names)
        return 0, 0

    def check(self) -> str | None:
        now = time.monotonic()
        if now < self.next:
            return None
        held, count = self.build_memory()
        self.next = time.monotonic() + (EVERY_SECONDS if self.proc else SCAN_EVERY_SECONDS)
        if held <= self.limit_mib * MIB:
            return None
        return (f"the memory limit ({self.limit_mib} MiB for the build as a whole) was "
                f"exceeded: its {count} processes held {held / MIB:.0f} MiB together")
