"""The memory of a build as a whole: its processes' memory summed, watched by the worker.

The sandbox's kernel limits (runners/sandbox.py) hold per process: RLIMIT_DATA
cannot see that a build's four test processes hold 1 GiB each. A limit for the
build as a whole needs a memory cgroup, which an unprivileged worker cannot make
without a delegated cgroup tree (docs/security.md, "Limits"). So the worker
measures instead: every ``EVERY_SECONDS`` while a command runs, it finds the
processes the session's shell started (its descendants, found through
``/proc/*/stat``; inside the sandbox's pid namespace a daemon that left its
parent is still the sandbox's init's child, so it is found too) and adds up the
memory each holds of its own — anonymous and shared-memory pages, each shared
page divided among the processes sharing it (``Pss_Anon + Pss_Shmem`` of
``/proc/<pid>/smaps_rollup``: a forked child does not count its parent's pages a
second time). Above the limit, the session ends the build and the action fails
naming the limit.

What this is not: a kernel limit. Between two looks a build can exceed the limit
(by what it allocates in ``EVERY_SECONDS``); each single process is still held
by RLIMIT_DATA at the same number. Unsandboxed, a daemon that left the session's
process tree is not counted.
"""

from __future__ import annotations

import os
import time

EVERY_SECONDS = 0.25
KIB = 1024
MIB = 1 << 20


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, from the parent ids in ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                data = stat.read()
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


def own_memory(pid: int) -> int:
    """The bytes ``pid`` holds of its own (proportional anonymous and shared memory)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            text = rollup.read()
    except OSError:
        return _resident_not_file(pid)
    total = 0
    for line in text.splitlines():
        if line.startswith((b"Pss_Anon:", b"Pss_Shmem:")):
            total += int(line.split()[1]) * KIB
    return total


def _resident_not_file(pid: int) -> int:
    """Without smaps_rollup (an older kernel): resident pages less file-backed ones."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            fields = statm.read().split()
    except OSError:
        return 0
    return max(0, int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")


def build_memory(root: int) -> tuple[int, int]:
    """(bytes held, number of processes) of the process tree under ``root``."""
    pids = descendants(root)
    return sum(own_memory(pid) for pid in pids), len(pids)


class MemoryWatch:
    """Looks at a build's memory at most every ``EVERY_SECONDS``; ``check()`` returns
    the phrase naming the limit once the build holds more than ``limit_mib``."""

    def __init__(self, root: int, limit_mib: int):
        self.root, self.limit_mib = root, limit_mib
        self.next = time.monotonic() + EVERY_SECONDS

    def check(self) -> str | None:
        now = time.monotonic()
        if now < self.next:
            return None
        self.next = now + EVERY_SECONDS
        held, count = build_memory(self.root)
        if held <= self.limit_mib * MIB:
            return None
        return (f"the memory limit ({self.limit_mib} MiB for the build as a whole) was "
                f"exceeded: its {count} processes held {held / MIB:.0f} MiB together")
