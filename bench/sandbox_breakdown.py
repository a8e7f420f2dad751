"""Where the sandbox's start goes: bubblewrap's floor, then one group of options at a time.

Each variant is a bwrap line running ``bash -c true``, started from this process the
way the worker starts one (``subprocess`` with ``start_new_session``), ``--runs``
times, interleaved. Printed: the median and p95 wall time, and the median CPU time of
every process of the run (this process is the subreaper of bwrap's pid 1, which
otherwise outlives bwrap's first process and is reaped by init, its CPU uncounted),
each also as a difference from the floor:

- ``floor``: the issue's command (as ``bench/sandbox_cost.py``);
- ``+ cgroup ns, hostname``, ``+ caps kept for setpriv``, ``binds for /tmp, $HOME, the
  workspace`` (instead of the floor's tmpfs): Conveyor's extra options, one group each;
- ``root bwrap + setpriv``: a root worker's line when the build's user cannot reach
  the action's folders (all of the above, and ``setpriv`` switching to the user);
- ``as the user, user namespace``: a root worker's usual line, bwrap started as the
  build's user (``runners/sandbox_user.py``).

Root only (the routes are a root worker's).

    .venv/bin/python bench/sandbox_breakdown.py [--runs 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from bench.sandbox_cost import FLOOR, SUBREAPER, cpu_now, stats  # noqa: E402
from runners import sandbox, sandbox_user  # noqa: E402

USER = 65534
BASH = ["bash", "-c", "true"]
SYSTEM = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc", "--symlink", "usr/bin",
          "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
          "--proc", "/proc", "--dev", "/dev"]
NAMESPACES = ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
              "--new-session"]
EXTRA = ["--unshare-cgroup-try", "--hostname", "conveyor-sandbox"]
CAPS = ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
SETPRIV = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups", "--"]


def variants(base: Path) -> dict[str, tuple[list[str], bool]]:
    """name -> (argv, started as the build's user)."""
    binds = ["--bind", f"{base}/tmp", "/tmp", "--perms", "0755", "--dir", "/home",
             "--bind", f"{base}/home", "/home/build", "--perms", "0755", "--dir", str(base),
             "--bind", f"{base}/ws", f"{base}/ws", "--chdir", f"{base}/ws"]
    return {
        "bash -c true": (BASH, False),
        "floor": (FLOOR[:-3] + BASH, False),
        "+ cgroup ns, hostname": (FLOOR[:-3] + EXTRA + BASH, False),
        "+ caps kept for setpriv": (FLOOR[:-3] + CAPS + BASH, False),
        "binds for /tmp, $HOME, workspace": (["bwrap", *NAMESPACES, *SYSTEM, *binds, *BASH],
                                             False),
        "root bwrap + setpriv": (["bwrap", *NAMESPACES, *EXTRA, *CAPS, *SYSTEM, *binds, "--",
                                  *SETPRIV, *BASH], False),
        "as the user, user namespace": (["bwrap", "--unshare-user", "--disable-userns",
                                         *NAMESPACES, *EXTRA, *SYSTEM, *binds, "--", *BASH],
                                        True),
    }


def run(argv: list[str], as_user: bool) -> tuple[float, float]:
    cpu = cpu_now()
    started = time.perf_counter()
    if as_user:
        with sandbox_user.ids_of(USER):
            proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin"},
                                    start_new_session=True)
    else:
        proc = subprocess.Popen(argv, env={"PATH": "/usr/bin:/bin"}, start_new_session=True)
    if proc.wait() != 0:
        raise SystemExit(f"{' '.join(argv)}: exit status {proc.returncode}")
    elapsed = time.perf_counter() - started
    return elapsed, cpu_now() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    if not sandbox_user.available() or not sandbox.as_user_works(USER):
        sys.exit("needs a root worker on Linux x86_64/aarch64 with user namespaces")
    if not SUBREAPER:
        print("(not a subreaper here: the CPU column misses bwrap's pid 1)")
    base = Path(tempfile.mkdtemp(prefix="sandbox-breakdown-"))
    try:
        base.chmod(0o755)
        for name in ("tmp", "home", "ws"):
            (base / name).mkdir()
            os.chown(base / name, USER, USER)
        lines = variants(base)
        wall: dict[str, list[float]] = {k: [] for k in lines}
        cpu: dict[str, list[float]] = {k: [] for k in lines}
        loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
        for argv, as_user in lines.values():  # warm caches
            run(argv, as_user)
        for _ in range(args.runs):
            for name, (argv, as_user) in lines.items():
                w, c = run(argv, as_user)
                wall[name].append(w)
                cpu[name].append(c)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"{os.cpu_count()} CPUs, load average before {loads}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.runs} runs each")
    floor_wall = stats(wall["floor"])[0]
    floor_cpu = statistics.median(cpu["floor"]) * 1000
    for name in lines:
        median, p95 = stats(wall[name])
        c = statistics.median(cpu[name]) * 1000
        print(f"{name:34s} wall median {median:6.2f} ms (floor {median - floor_wall:+6.2f}) "
              f"p95 {p95:6.2f}   CPU median {c:5.2f} ms (floor {c - floor_cpu:+5.2f})")


if __name__ == "__main__":
    main()
