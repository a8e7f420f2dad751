"""Starting a root worker's bubblewrap as the sandbox's user, without a ``setpriv`` exec.

A root worker's thread takes the sandbox user's real and effective ids (keeping
root as its *saved* uid, to come back) just long enough to start bwrap, which then
runs as that user from its first instruction: unprivileged, in a user namespace of
its own that maps the user to itself (``--unshare-user --disable-userns``), exactly
as a worker that is not root starts it. The command runs as that uid inside and
outside, with no capability and no supplementary group. Without this, bwrap ran as
root and switched the command with ``setpriv`` (one more program started per
action; docs/benchmarks.md has the cost).

The ids are changed for the calling thread only, with the raw system calls (glibc's
``setresuid`` changes every thread of the process), around the ``Popen`` that
starts bwrap (a ``vfork``: the child takes the thread's ids), and restored at once:
the worker's other threads never see them. For those few hundred microseconds the
thread can do no more than the sandbox user (what ``Popen`` does there: make a
pipe, ``vfork``, change to the workspace, which the user must reach anyway), and
a process of the sandbox's uid outside any sandbox could signal it (the kernel lets
a user signal its own processes); builds cannot (each sees only its own pid
namespace). docs/security.md: give the sandbox a uid of its own.

bwrap resolves the folders it binds with the user's rights, not root's: each must be
reachable by the sandbox user (``reachable``: ``access`` checks with the real ids,
the kernel's own check), or ``runners/sandbox.py`` starts the action the old way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from collections.abc import Iterable, Iterator

# (setgroups, setresgid, setresuid) numbers of the raw system calls.
SYSCALLS = {
    "x86_64": (116, 119, 117),
    "aarch64": (159, 149, 147),
}
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4

_numbers = SYSCALLS.get(platform.machine())
_libc = None


def available() -> bool:
    """True where the per-thread calls are known (Linux on x86_64 or aarch64) and the
    worker is root."""
    return _numbers is not None and os.geteuid() == 0 and os.uname().sysname == "Linux"


def _libc_call(name: str, *args) -> int:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return getattr(_libc, name)(*(ctypes.c_long(a) for a in args))


def _call(number: int, *args) -> None:
    """The raw system call ``number`` (this thread only); OSError when it fails."""
    if _libc_call("syscall", number, *args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


@contextlib.contextmanager
def ids_of(uid: int) -> Iterator[None]:
    """Inside the block the calling thread's real and effective uid and all its gids are
    ``uid``, with no supplementary group and no effective capability; its saved uid
    stays 0, which brings everything back on the way out, whatever happens."""
    assert _numbers is not None
    setgroups, setresgid, setresuid = _numbers
    groups = os.getgroups()
    gids = os.getresgid()
    # A change of effective ids makes the kernel mark the worker not dumpable (no core
    # file, /proc entries root's): put back as it was.
    dumpable = _libc_call("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0)
    _call(setgroups, 0, 0)
    try:
        _call(setresgid, uid, uid, uid)
        try:
            _call(setresuid, uid, uid, 0)
            try:
                yield
            finally:
                # First: the saved uid 0 gives root, and its capabilities, back.
                _call(setresuid, 0, 0, 0)
        finally:
            _call(setresgid, *gids)
    finally:
        array = (ctypes.c_uint * max(len(groups), 1))(*groups)
        _call(setgroups, len(groups), ctypes.addressof(array))
        if dumpable >= 0:
            _libc_call("prctl", PR_SET_DUMPABLE, dumpable, 0, 0, 0)


def reachable(paths: Iterable[str]) -> bool:
    """Whether the thread's real ids reach each path (call inside ``ids_of``)."""
    return all(os.access(path, os.F_OK) for path in paths)
