"""The sandbox every command run for a pipeline goes through (bubblewrap on Linux).

A spawn site asks ``wrap`` how to start its command, then starts exactly that::

    launch = sandbox.wrap(["bash", "-c", command], ctx, env=env, cwd=cwd)
    proc = sandbox.start(launch, cwd=cwd, pass_fds=..., start_new_session=True, ...)

and, when the command fails, ``limit_exceeded(launch, code, output_tail)`` names the
limit that ended it (or None). What the command sees (docs/security.md says why):

- the system read-only (``/usr``, ``/etc``, the ``/bin``, ``/lib`` links, and any
  ``CONVEYOR_SANDBOX_SYSTEM_PATHS``); the action's workspace, its input artifacts, the
  spawn site's ``read_write`` paths read-write; its ``read_only`` paths read-only;
- ``/tmp`` and ``$HOME`` (``/home/build``): folders of the action's own directory, kept
  across the commands of one action, gone with it;
- a new pid namespace with a fresh ``/proc`` (only its own processes; when its first
  process ends, or bwrap is killed, every process in it ends, ``setsid`` daemons
  included), new IPC and UTS namespaces, a minimal ``/dev``, no capabilities, no
  further user namespaces (but on a root worker's ``setpriv`` route; docs/security.md);
- the network of the machine, or none at all with ``configuration.Network = "none"``;
- only the environment the spawn site gives (``HOME`` and ``TMPDIR`` replaced);
- the limits of ``limits_for(ctx)``, set inside the sandbox by bash's ``ulimit`` for a
  ``bash -c`` command (a shell session's bash included), by ``prlimit`` for any other.

Not inside: Conveyor's code, ``var/`` (database, secret key, secrets, logs,
artifacts, other workspaces), the server's home, environment and processes, its
open file descriptors (``close_fds``; ``pass_fds`` is empty). When the worker runs
as root the command runs as ``CONVEYOR_SANDBOX_UID`` (default 65534, nobody): the
kernel does not enforce a process limit on root, and root could read root's files
among the system's. bwrap is then started as that user (``runners/sandbox_user.py``)
and runs as a worker that is not root starts it, in a user namespace of its own; or,
where the action's folders are out of that user's reach, bwrap runs as root and
``setpriv`` switches the command (one more program).

Modes (``CONVEYOR_SANDBOX``): ``auto`` (default) sandboxes when bubblewrap works
here and otherwise runs the command unsandboxed with a warning (a line in the
action's log, a banner for staff, ``/healthz`` ``"sandbox": "unavailable"``);
``required`` fails the action instead; ``none`` runs unsandboxed on purpose (and
says so the same ways).
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings

from runners import sandbox_user
from runners.base import ActionFailed, RunContext

MODES = ("auto", "required", "none")
NETWORKS = ("host", "none")
# What healthz and the banner say.
ON, UNAVAILABLE, OFF = "on", "unavailable", "off"

HOME = "/home/build"
# The links of a merged-/usr system; bound as folders where they are folders.
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_DIRS = ("/usr", "/etc")
MAX_TAIL = 4096


# --- limits --------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Resource limits of one action's commands (``setrlimit``; docs/security.md).

    ``memory_mib`` and ``cpu_seconds`` hold for each process (RLIMIT_DATA,
    RLIMIT_CPU); ``processes`` counts the sandbox's processes together (its own
    user namespace); ``file_size_mib`` is the largest file a process may write;
    ``open_files`` the descriptors one process may hold.
    """

    memory_mib: int
    processes: int
    file_size_mib: int
    open_files: int
    cpu_seconds: int

    def prlimit_args(self) -> list[str]:
        mib = 1 << 20
        cpu = self.cpu_seconds
        return [
            f"--data={self.memory_mib * mib}",
            f"--nproc={self.processes}",
            f"--fsize={self.file_size_mib * mib}",
            f"--nofile={self.open_files}",
            # SIGXCPU at the soft limit (named in the summary); SIGKILL 5 s later
            # for a process that ignores it.
            f"--cpu={cpu}:{cpu + 5}",
            # No core files: a core pattern may hand them to a program outside.
            "--core=0",
        ]

    def ulimit_prefix(self, processes: bool = True, posix: bool = False) -> str:
        """The same limits as bash's own ``ulimit`` (KiB, 1 KiB blocks), to put before a
        ``bash -c`` command: one exec fewer than ``prlimit``, no ``preexec_fn`` (which
        makes Python fork the whole worker instead of vfork). ``processes=False``
        leaves the process count alone (unsandboxed, it would count every process of
        the worker's user). ``posix``: for a bash in POSIX mode, whose ``-f`` counts
        512-byte blocks."""
        kib = 1024
        nproc = f"-u {self.processes} " if processes else ""
        blocks = self.file_size_mib * kib * (2 if posix else 1)
        common = (f"-d {self.memory_mib * kib} {nproc}-f {blocks} "
                  f"-n {self.open_files} -c 0")
        # Soft first: a hard limit below the current soft one is refused (EINVAL).
        return (f"ulimit -S {common} -t {self.cpu_seconds} && "
                f"ulimit -H {common} -t {self.cpu_seconds + 5} || exit 125; ")


# The configuration keys an action sets its limits with, and the field each sets.
LIMIT_KEYS = {
    "LimitMemoryMiB": "memory_mib",
    "LimitProcesses": "processes",
    "LimitFileSizeMiB": "file_size_mib",
    "LimitOpenFiles": "open_files",
    "LimitCpuSeconds": "cpu_seconds",
}
LIMIT_NAMES = {
    "memory_mib": ("memory", "MiB per process"),
    "processes": ("process", "processes"),
    "file_size_mib": ("file size", "MiB"),
    "open_files": ("open files", "per process"),
    "cpu_seconds": ("CPU time", "s per process"),
}
SANDBOX_KEYS = ("Network", "ComputeType", *LIMIT_KEYS)
# The least each limit may be: a shell session keeps its pipes at descriptors 200 and
# 201 (runners/session.py), which a lower open-files limit would refuse it.
MINIMUMS = {"open_files": 256}

# CodeBuild's compute types (memory and disk as AWS documents them) as limits: the
# memory a build may use becomes the memory limit (the build's as a whole, watched by
# runners/watch.py, and each process's), the disk the largest file.
# vCPUs have no rlimit (CPU time is per process, not a share of cores): the
# CPU time limit stays the default. For the CodeBuild runner and any action's
# ``configuration.ComputeType``.
GIB = 1024
COMPUTE_TYPES: dict[str, dict[str, int]] = {
    "BUILD_GENERAL1_SMALL": {"memory_mib": 3 * GIB, "file_size_mib": 64 * GIB},
    "BUILD_GENERAL1_MEDIUM": {"memory_mib": 7 * GIB, "file_size_mib": 128 * GIB},
    "BUILD_GENERAL1_LARGE": {"memory_mib": 15 * GIB, "file_size_mib": 128 * GIB},
    "BUILD_GENERAL1_XLARGE": {"memory_mib": 70 * GIB, "file_size_mib": 256 * GIB},
    "BUILD_GENERAL1_2XLARGE": {"memory_mib": 145 * GIB, "file_size_mib": 824 * GIB},
    "BUILD_LAMBDA_1GB": {"memory_mib": 1 * GIB, "file_size_mib": 10 * GIB},
    "BUILD_LAMBDA_2GB": {"memory_mib": 2 * GIB, "file_size_mib": 10 * GIB},
    "BUILD_LAMBDA_4GB": {"memory_mib": 4 * GIB, "file_size_mib": 10 * GIB},
    "BUILD_LAMBDA_8GB": {"memory_mib": 8 * GIB, "file_size_mib": 10 * GIB},
    "BUILD_LAMBDA_10GB": {"memory_mib": 10 * GIB, "file_size_mib": 10 * GIB},
}


# CodeBuild's default size (a build project that names none); the EC2 sizes are the
# ones the Commands action accepts.
DEFAULT_COMPUTE_TYPE = "BUILD_GENERAL1_SMALL"
EC2_COMPUTE_TYPES = tuple(n for n in COMPUTE_TYPES if n.startswith("BUILD_GENERAL1_"))


def default_limits() -> Limits:
    """The limits of an action that sets none (settings ``CONVEYOR_SANDBOX_LIMITS``)."""
    return Limits(**settings.CONVEYOR_SANDBOX_LIMITS)


def ceilings() -> Limits:
    """The most an action may ask for (settings ``CONVEYOR_SANDBOX_MAX_LIMITS``)."""
    return Limits(**settings.CONVEYOR_SANDBOX_MAX_LIMITS)


def compute_type_limits(name: str, base: Limits | None = None) -> Limits:
    """``base`` (default: the defaults) with a CodeBuild compute type's limits.

    Raises KeyError for a name not in ``COMPUTE_TYPES``.
    """
    return replace(base or default_limits(), **COMPUTE_TYPES[name])


def log_compute_type(ctx: RunContext, name: str, limits: Limits) -> None:
    """Say in the build's log which compute type sized it and the limits that hold."""
    ctx.log.line(f"[Container] Compute type {name}: {limits.memory_mib // 1024} GiB of "
                 f"memory for the build (and each process), files up to "
                 f"{limits.file_size_mib // 1024} GiB, "
                 f"{limits.processes} processes (sandbox limits)")


def limits_problems(config: dict) -> list[tuple[str, str]]:
    """Problems of an action's sandbox settings as (path, message) pairs (validation)."""
    problems = []
    network = config.get("Network")
    if network is not None and "#{" not in str(network) and network not in NETWORKS:
        problems.append(("configuration.Network",
                         f'"{network}" is not a network setting: use "host" (the default) '
                         'or "none"'))
    compute = config.get("ComputeType")
    if compute is not None and "#{" not in str(compute) and compute not in COMPUTE_TYPES:
        problems.append(("configuration.ComputeType",
                         f'"{compute}" is not a compute type: use one of '
                         + ", ".join(COMPUTE_TYPES)))
    top = ceilings()
    for key, name in LIMIT_KEYS.items():
        value = config.get(key)
        if value is None or "#{" in str(value):
            continue
        if not re.fullmatch(r"[1-9][0-9]{0,9}", str(value)):
            problems.append((f"configuration.{key}", f'"{value}" is not a whole number above 0'))
        elif int(value) < MINIMUMS.get(name, 1):
            problems.append((f"configuration.{key}",
                             f"{value} is below the least a shell needs ({MINIMUMS[name]})"))
        elif int(value) > getattr(top, name):
            problems.append((f"configuration.{key}",
                             f"{value} is above the most this server allows "
                             f"({getattr(top, name)})"))
    return problems


def limits_for(ctx: RunContext) -> Limits:
    """The action's limits: defaults, then its ComputeType, then its Limit* keys.

    An action's values were checked at validation; one that arrives through a
    ``#{...}`` reference is checked here (``ActionFailed`` naming the key).
    """
    config = ctx.configuration
    limits = default_limits()
    compute = config.get("ComputeType")
    if compute:
        if compute not in COMPUTE_TYPES:
            raise ActionFailed(f'configuration.ComputeType: "{compute}" is not a compute type')
        limits = compute_type_limits(compute, limits)
    top = ceilings()
    for key, name in LIMIT_KEYS.items():
        if key not in config:
            continue
        value = str(config[key])
        least = MINIMUMS.get(name, 1)
        if not re.fullmatch(r"[1-9][0-9]{0,9}", value) or not (
                least <= int(value) <= getattr(top, name)):
            raise ActionFailed(f'configuration.{key}: "{value}" is not a whole number from '
                               f"{least} to {getattr(top, name)}")
        limits = replace(limits, **{name: int(value)})
    return limits


def network_for(ctx: RunContext) -> str:
    network = ctx.configuration.get("Network") or "host"
    if network not in NETWORKS:
        raise ActionFailed(f'configuration.Network: "{network}" is not "host" or "none"')
    return network


# --- is bubblewrap usable here? ----------------------------------------------------


def mode() -> str:
    return getattr(settings, "CONVEYOR_SANDBOX", "auto")


_found_bwrap: dict[str, str] = {}


def bwrap_path() -> str:
    """``CONVEYOR_SANDBOX_BWRAP``, else bwrap found on PATH (remembered per PATH: a walk of
    PATH per action cost more than the rest of ``wrap``; a miss is not remembered, so
    bubblewrap installed later is found)."""
    configured = getattr(settings, "CONVEYOR_SANDBOX_BWRAP", "")
    if configured:
        return configured
    search = os.environ.get("PATH", os.defpath)
    found = _found_bwrap.get(search)
    if found is None:
        found = shutil.which("bwrap", path=search)
        if found is None:
            return "bwrap"
        _found_bwrap[search] = found
    return found


def sandbox_uid() -> int | None:
    """The uid commands run as when the worker is root (None: the worker's own)."""
    if os.geteuid() != 0:
        return None
    return int(getattr(settings, "CONVEYOR_SANDBOX_UID", 65534))


_probe_lock = threading.Lock()
_probes: dict[tuple, tuple[bool, str]] = {}


def probe() -> tuple[bool, str]:
    """(True, "") when a sandbox starts here, else (False, why); once per process."""
    key = (bwrap_path(), sandbox_uid())
    with _probe_lock:
        if key not in _probes:
            _probes[key] = _probe(*key)
        return _probes[key]


def _probe(bwrap: str, uid: int | None) -> tuple[bool, str]:
    if not shutil.which(bwrap):
        return False, (f"bubblewrap ({bwrap}) is not installed: install the Debian "
                       "package bubblewrap")
    argv = [bwrap, *_isolation(uid), *_system_args(), "--", *_become(uid), "true"]
    try:
        done = subprocess.run(argv, env={"PATH": "/usr/bin:/bin"}, capture_output=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bubblewrap did not start: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        return False, ("bubblewrap cannot create a sandbox here ("
                       + (why[-1] if why else f"exit status {done.returncode}")
                       + "): unprivileged user namespaces may be disabled")
    return True, ""


_user_probes: dict[tuple, bool] = {}


def as_user_works(uid: int) -> bool:
    """Whether a root worker can start bwrap here as ``uid`` (``runners/sandbox_user.py``:
    unprivileged user namespaces allowed); once per process."""
    key = (bwrap_path(), uid)
    with _probe_lock:
        if key not in _user_probes:
            works = False
            if sandbox_user.available():
                argv = [key[0], *_isolation(None), *_system_args(), "--", "true"]
                try:
                    with sandbox_user.ids_of(uid):
                        done = subprocess.run(argv, env={"PATH": "/usr/bin:/bin"},
                                              capture_output=True, timeout=20)
                    works = done.returncode == 0
                except (OSError, subprocess.TimeoutExpired):
                    works = False
            _user_probes[key] = works
        return _user_probes[key]


def status() -> str:
    """"on", "unavailable" (auto or required, and bubblewrap does not work), or "off"."""
    if mode() == "none":
        return OFF
    return ON if probe()[0] else UNAVAILABLE


def warning() -> str:
    """What staff are told when commands do not run sandboxed ("" when they do)."""
    state = status()
    if state == OFF:
        return ("Build commands run without a sandbox (CONVEYOR_SANDBOX=none): a commit can "
                "read Conveyor's secret key, database and secrets. See docs/security.md.")
    if state == UNAVAILABLE:
        verb = "are refused" if mode() == "required" else "run without a sandbox"
        return (f"Build commands {verb}: {probe()[1]}. See docs/security.md.")
    return ""


# --- wrapping a command ------------------------------------------------------------

NAMESPACES = (
    "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
    "--die-with-parent", "--new-session", "--hostname", "conveyor-sandbox",
)


def _isolation(uid: int | None) -> list[str]:
    """bwrap's namespaces, and how the command loses its privileges.

    bubblewrap unprivileged (a worker that is not root, or a root worker's bwrap
    started as ``uid``: ``uid`` None here) makes a user namespace (no capabilities
    left, none to gain: ``--disable-userns``; the process count is the namespace's
    own). A root worker's bwrap running as root (when ``uid`` cannot reach the
    action's folders: root can bind them under root's 0700 folders) keeps only the
    right to change uid, which ``setpriv`` uses at once to become ``uid``; bwrap's
    ``no_new_privs`` and nosuid mounts keep it from coming back.
    """
    if uid is None:
        return ["--unshare-user", "--disable-userns", *NAMESPACES]
    return [*NAMESPACES, "--cap-drop", "ALL", "--cap-add", "CAP_SETUID",
            "--cap-add", "CAP_SETGID"]


@dataclass
class Launch:
    """How a spawn site starts a command (``start(launch, **popen_arguments)``).

    ``limits`` and ``sandboxed`` are for ``limit_exceeded`` and the caller's log.
    ``pass_fds`` is empty today (the command inherits no descriptor of the worker);
    ``user``: the uid a root worker starts bwrap as (``sandbox_user.ids_of``), None for
    the worker's own; ``close()`` releases whatever a future Launch holds for its spawn.
    """

    argv: list[str]
    env: dict[str, str]
    preexec_fn: Callable | None
    pass_fds: tuple[int, ...]
    limits: Limits | None = None
    sandboxed: bool = False
    user: int | None = None

    def close(self) -> None:
        """Called by the spawn site once the process started."""


def start(launch: Launch, **popen_arguments) -> subprocess.Popen:
    """``subprocess.Popen`` of ``launch`` (its argv, env, preexec_fn; ``pass_fds`` and the
    rest from the spawn site), as ``launch.user`` when it names one."""
    arguments = dict(env=launch.env, preexec_fn=launch.preexec_fn, **popen_arguments)
    if launch.user is None:
        return subprocess.Popen(launch.argv, **arguments)
    with sandbox_user.ids_of(launch.user):
        return subprocess.Popen(launch.argv, **arguments)


def _become(uid: int | None) -> list[str]:
    """The command that drops a root worker's sandbox to ``uid`` (inside bwrap)."""
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]


def _system_args() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        args += ["--ro-bind", path, path]
    for path in SYSTEM_LINKS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in getattr(settings, "CONVEYOR_SANDBOX_SYSTEM_PATHS", ()):
        args += ["--ro-bind-try", str(path), str(path)]
    return args + ["--proc", "/proc", "--dev", "/dev"]


def _give_to(uid: int, path: Path) -> None:
    """Make ``path`` (and what it holds) the sandbox user's, once."""
    if os.lstat(path).st_uid == uid:
        return
    os.lchown(path, uid, uid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, uid)


def _pair(item: Path | tuple[Path, Path]) -> tuple[Path, Path]:
    if isinstance(item, tuple):
        return Path(item[0]), Path(item[1])
    return Path(item), Path(item)


def wrap(argv: list[str], ctx: RunContext, *, env: dict[str, str], cwd: Path,
         read_only: Sequence[Path | tuple[Path, Path]] = (),
         read_write: Sequence[Path | tuple[Path, Path]] = (),
         limits: Limits | None = None, network: str | None = None) -> Launch:
    """How to start ``argv`` for ``ctx``'s action (see the module's docstring).

    1. Sandbox off (``none``) or unavailable under ``auto``: the command as it is,
       with the limits but the process count (bash's ``ulimit`` for ``bash -c``,
       else ``preexec_fn``), and one line
       in the action's log saying it runs unsandboxed. Unavailable under
       ``required``: ``ActionFailed``.
    2. Otherwise ``bwrap … -- [setpriv …] prlimit … -- argv`` (for ``bash -c``, the
       limits are set by a ``ulimit`` before the command instead): the workspace,
       the input artifacts and ``read_write`` bound read-write at the same paths
       (a ``(source, destination)`` pair binds elsewhere), ``read_only``
       read-only, ``/tmp`` and ``$HOME`` from the action's own directory.
    ``limits`` and ``network`` default to the action's own (``limits_for``,
    ``network_for``); a runner whose settings live elsewhere (a CodeBuild build
    project's ComputeType and Network) passes them.
    Raises ``ActionFailed`` for a bad Network or limit reached through a reference.
    """
    limits = limits or limits_for(ctx)
    network = network or network_for(ctx)
    env = dict(env)
    current = mode()
    if current == "none" or not probe()[0]:
        if current == "required":
            raise ActionFailed("Not run: CONVEYOR_SANDBOX=required and " + probe()[1])
        if not ctx._sandbox_noted:
            ctx._sandbox_noted = True
            ctx.log.line("Warning: " + warning())
            if network == "none":
                ctx.log.line("Warning: Network none is not enforced without the sandbox: "
                             "the commands reach the network of the machine")
        if _is_bash_c(argv):
            return Launch(argv=_bash_limited(argv, limits, processes=False), env=env,
                          preexec_fn=None, pass_fds=(), limits=limits, sandboxed=False)
        return Launch(argv=list(argv), env=env, preexec_fn=_rlimits(limits), pass_fds=(),
                      limits=limits, sandboxed=False)

    own = ctx.workspace.parent  # the action's own directory (the worker makes one each)
    tmp, home = own / "sandbox-tmp", own / "sandbox-home"
    tmp.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    # /tmp first: the workspace may itself lie under /tmp (a later bind over an
    # earlier one's folder is seen; the other way round it would be hidden).
    writable = [(tmp, Path("/tmp")), (home, Path(HOME)), (ctx.workspace, ctx.workspace)]
    writable += [(d, d) for d in ctx.input_dirs.values() if d != ctx.workspace]
    writable += [_pair(p) for p in read_write]
    readable = [_pair(p) for p in read_only]
    uid = sandbox_uid()
    as_user = False
    if uid is not None:
        for source, _ in writable:
            _give_to(uid, source)
        as_user = _as_user_fits(uid, [s for s, _ in writable + readable])

    args = [bwrap_path(), *_isolation(None if as_user else uid)]
    if network == "none":
        args.append("--unshare-net")
    args += _system_args()
    made: set[Path] = {Path("/"), Path("/tmp"), Path(HOME)}
    for flag, pairs in (("--bind", writable), ("--ro-bind", readable)):
        for source, destination in pairs:
            # The folders above a mount point are made by bwrap; a privileged bwrap
            # makes them 0700 (root's), which the command's user could not cross.
            for folder in reversed(destination.parents):
                if folder not in made:
                    made.add(folder)
                    args += ["--perms", "0755", "--dir", str(folder)]
            args += [flag, str(source), str(destination)]
    args += ["--chdir", str(cwd)]
    env["HOME"] = HOME
    env["TMPDIR"] = "/tmp"
    if _is_bash_c(argv):
        limited = _bash_limited(argv, limits)
    else:
        limited = ["prlimit", *limits.prlimit_args(), "--", *argv]
    full = [*args, "--", *([] if as_user else _become(uid)), *limited]
    return Launch(argv=full, env=env, preexec_fn=None, pass_fds=(), limits=limits,
                  sandboxed=True, user=uid if as_user else None)


def _as_user_fits(uid: int, sources: list[Path]) -> bool:
    """Whether a root worker's action can start bwrap as ``uid``: it works here, and
    ``uid`` reaches every folder to bind (the system's included); otherwise bwrap
    runs as root and ``setpriv`` switches."""
    if not as_user_works(uid):
        return False
    paths = [*SYSTEM_DIRS, *map(str, sources)]
    paths += [str(p) for p in getattr(settings, "CONVEYOR_SANDBOX_SYSTEM_PATHS", ())
              if os.path.lexists(p)]
    with sandbox_user.ids_of(uid):
        return sandbox_user.reachable(paths)


# The options a ``bash … -c script`` may carry before ``-c`` for its limits to be set by
# the script itself (a shell session's: ``bash --noprofile --norc [-o posix] -c …``).
BASH_OPTIONS = ("--noprofile", "--norc")


def _bash_script_index(argv: list[str]) -> int | None:
    """Where the script of ``bash [--noprofile] [--norc] [-o option] -c script …`` is in
    ``argv``, or None for any other command."""
    if not argv or argv[0] != "bash":
        return None
    i = 1
    while i < len(argv) - 1:
        if argv[i] == "-c":
            return i + 1
        if argv[i] in BASH_OPTIONS:
            i += 1
        elif argv[i] == "-o" and i + 2 < len(argv):
            i += 2
        else:
            return None
    return None


def _is_bash_c(argv: list[str]) -> bool:
    return _bash_script_index(argv) is not None


def _bash_limited(argv: list[str], limits: Limits, processes: bool = True) -> list[str]:
    """bash sets the limits itself, before the script runs; on the script's own first
    line, so line numbers hold. No ``prlimit`` exec and no ``preexec_fn`` (which makes
    Python fork the whole worker instead of vfork): a shell session starts that way."""
    at = _bash_script_index(argv)
    assert at is not None
    posix = any(argv[i] == "-o" and argv[i + 1] == "posix" for i in range(1, at - 1))
    return [*argv[:at], limits.ulimit_prefix(processes, posix) + argv[at], *argv[at + 1:]]


def _rlimits(limits: Limits) -> Callable[[], None]:
    """Set the limits in an unsandboxed child (not the process count: without a user
    namespace of its own it would count every process of the worker's user)."""
    mib = 1 << 20
    values = [
        (resource.RLIMIT_DATA, limits.memory_mib * mib),
        (resource.RLIMIT_FSIZE, limits.file_size_mib * mib),
        (resource.RLIMIT_NOFILE, limits.open_files),
        (resource.RLIMIT_CPU, limits.cpu_seconds),
        (resource.RLIMIT_CORE, 0),
    ]

    def apply() -> None:
        for which, value in values:
            _, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))

    return apply


# --- which limit ended a command? ------------------------------------------------

# What the kernel's refusal looks like in a program's output (strerror texts, and the
# words of the commonest runtimes); the summary quotes what it found.
EVIDENCE = (
    ("processes", re.compile(rb"fork: (retry: )?Resource temporarily unavailable|"
                             rb"Cannot fork|can't fork|BlockingIOError: \[Errno 11\]")),
    ("open_files", re.compile(rb"Too many open files")),
    ("memory_mib", re.compile(rb"Cannot allocate memory|MemoryError|out of memory|"
                              rb"std::bad_alloc|xmalloc: cannot allocate")),
    ("file_size_mib", re.compile(rb"File too large|File size limit exceeded")),
    ("cpu_seconds", re.compile(rb"CPU time limit exceeded")),
)


def describe(limits: Limits, name: str) -> str:
    label, unit = LIMIT_NAMES[name]
    value = getattr(limits, name)
    return f"the {label} limit ({value} {unit})"


def limit_exceeded(launch: Launch, returncode: int, output_tail: bytes = b"") -> str | None:
    """Which limit ended a failed command, as a phrase for its summary, or None.

    1. Died of SIGXCPU or SIGXFSZ (``-sig`` from Popen, ``128+sig`` from a shell or
       bwrap): the CPU time or file size limit, from the signal alone.
    2. Otherwise the end of its output (``output_tail``) showing the kernel's refusal
       of a process, a file, memory or a write ("fork: Resource temporarily
       unavailable", "Too many open files", …): that limit, with the words quoted.
    3. Otherwise None: the command failed for its own reasons.
    """
    if launch.limits is None or returncode == 0:
        return None
    limits = launch.limits
    sig = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if sig == signal.SIGXCPU:
        return describe(limits, "cpu_seconds") + " was exceeded (SIGXCPU)"
    if sig == signal.SIGXFSZ:
        return describe(limits, "file_size_mib") + " was exceeded (SIGXFSZ)"
    tail = output_tail[-MAX_TAIL:]
    for name, pattern in EVIDENCE:
        if name == "processes" and not launch.sandboxed:
            continue  # not set without the sandbox
        match = pattern.search(tail)
        if match:
            words = match.group(0).decode(errors="replace")
            return f"{describe(limits, name)} was reached (the output says \"{words}\")"
    return None


def limit_exceeded_in_log(ctx: RunContext, returncode: int) -> str | None:
    """``limit_exceeded`` for a command whose output went to ``ctx``'s log (a shell
    session's): the action's limits, the end of its log as the output."""
    try:
        with open(ctx.log.path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - MAX_TAIL))
            tail = log.read()
    except OSError:
        tail = b""
    try:
        limits = limits_for(ctx)
    except ActionFailed:
        return None
    sandboxed = mode() != "none" and probe()[0]
    return limit_exceeded(Launch(argv=[], env={}, preexec_fn=None, pass_fds=(),
                                 limits=limits, sandboxed=sandboxed), returncode, tail)
