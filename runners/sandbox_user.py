"""Starting a root worker's bubblewrap as the sandbox's user, without a ``setpriv`` exec.

bubblewrap started with a real uid that is not root and an effective uid 0 runs in
its setuid mode: it makes the namespaces and mounts with root's rights, then drops
to the real uid before the command starts (all capabilities gone, ``no_new_privs``
set). The command then runs as that uid inside and outside, with the real and
effective gids of its starter. Without this, a root worker's command went through
``setpriv`` inside the sandbox (one more program started per action: about 1 ms of
CPU, 2-3 ms of wall time on a busy 2-core machine; docs/benchmarks.md).

The ids are changed for the calling thread only, with the raw system calls (glibc's
``setresuid`` changes every thread of the process), around the ``Popen`` that
starts bwrap, and restored at once: the worker's other threads never see them.
The worker keeps its effective uid 0 throughout, so nothing it does in between
(creating a pipe, ``vfork``) is done with less. For those few hundred microseconds
a process of the sandbox's uid outside any sandbox could signal that thread (the
kernel lets a real uid be signalled by its own user); builds cannot (each sees
only its own pid namespace). docs/security.md: give the sandbox a uid of its own.

Two things setuid mode changes, checked by ``runners/sandbox.py`` before using it:

- bwrap reaches the folders it binds with the user's rights (not root's): each must be
  reachable by the sandbox user (``reachable``, the kernel's own check: ``access``
  uses the real ids), or the action starts the old way;
- the C library of a program started with a real uid other than its effective uid
  drops the environment variables a privileged program must not trust (``LD_*``,
  ``TMPDIR``, …): an environment holding one (``TMPDIR`` aside, which the sandbox sets
  by an option) starts the old way, so the build receives it.
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
# What glibc removes from a secure program's environment (its unsecvars.h), with a
# margin: every LD_, MALLOC_ and GLIBC_ name.
SECURE_EXEC_DROPS = frozenset((
    "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NIS_PATH",
    "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
))
SECURE_EXEC_PREFIXES = ("LD_", "MALLOC_", "GLIBC_")

_numbers = SYSCALLS.get(platform.machine())
_libc = None


def available() -> bool:
    """True where the per-thread calls are known (Linux on x86_64 or aarch64) and the
    worker is root."""
    return _numbers is not None and os.geteuid() == 0 and os.uname().sysname == "Linux"


PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4


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
def real_ids(uid: int) -> Iterator[None]:
    """Inside the block the calling thread's real (and saved-group, effective-group) ids
    are ``uid``, with no supplementary group; its effective uid stays 0. Restored on
    the way out, whatever happens."""
    assert _numbers is not None
    setgroups, setresgid, setresuid = _numbers
    groups = os.getgroups()
    gids = os.getresgid()
    # A change of effective gid makes the kernel mark the worker not dumpable (no core
    # file, /proc entries root's): put back as it was.
    dumpable = _libc_call("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0)
    _call(setgroups, 0, 0)
    try:
        _call(setresgid, uid, uid, uid)
        try:
            _call(setresuid, uid, 0, 0)
            try:
                yield
            finally:
                _call(setresuid, 0, 0, 0)
        finally:
            _call(setresgid, *gids)
    finally:
        array = (ctypes.c_uint * max(len(groups), 1))(*groups)
        _call(setgroups, len(groups), ctypes.addressof(array))
        if dumpable >= 0:
            _libc_call("prctl", PR_SET_DUMPABLE, dumpable, 0, 0, 0)


def reachable(paths: Iterable[str]) -> bool:
    """Whether the thread's real ids reach each path (call inside ``real_ids``)."""
    return all(os.access(path, os.F_OK) for path in paths)


def env_survives(env: dict[str, str]) -> bool:
    """Whether a secure program keeps ``env`` whole (``TMPDIR`` aside)."""
    return not any((name in SECURE_EXEC_DROPS and name != "TMPDIR")
                   or name.startswith(SECURE_EXEC_PREFIXES) for name in env)
