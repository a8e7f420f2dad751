"""The sandbox's cost per action: a Shell action running `true`, with and without it.

Runs the real Shell runner on a RunContext the way a worker does (a fresh action
folder each time, the output pump, the log), ``--runs`` times per variant,
interleaved so that a busy moment of the machine hits every variant alike:

- ``Shell true, CONVEYOR_SANDBOX=none``: the runner without the sandbox;
- ``Shell true, sandboxed``: the runner with it (one sandbox: one command);
- floors without Conveyor, from this process: ``bash -c true``, and bubblewrap's own
  floor, the command the issue measured (``bwrap --ro-bind /usr /usr ... --unshare-pid
  --unshare-ipc --unshare-uts --die-with-parent --new-session bash -c true``);
- ``Conveyor's bwrap line``: the exact argv ``sandbox.wrap`` gives for `true`, started
  from this process by ``sandbox.start`` (the sandbox's own start, without the runner
  around it).

Prints median and p95 in ms of each (wall clock), the median CPU time of this process
and every process the run started (bwrap's pid 1 and its command included: this
process is their subreaper), the sandbox's cost (sandboxed − unsandboxed
action) and how far that is above bubblewrap's floor (floor − bash): the target is
at most 2 ms above it. Says whether the worker is root: then bwrap is started as the
sandbox's uid (runners/sandbox_user.py) when the action's folders are within that
user's reach — as under a ``var/`` made with the usual umask, which is how the folders
here are made (0755) — and otherwise as root, switching the command with ``setpriv``
(one more program). A root run also measures that second route, its folders under a
0700 folder, interleaved with the rest: "via setpriv".

    .venv/bin/python bench/sandbox_cost.py [--runs 200]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from runners import sandbox  # noqa: E402
from runners.base import LogWriter, RunContext  # noqa: E402
from runners.shell import ShellRunner  # noqa: E402

# The command the issue measured (8.7 ms median against 2.5 ms for bash -c true).
FLOOR = ["bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
         "--ro-bind", "/etc", "/etc", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
         "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
         "--new-session", "bash", "-c", "true"]


def context(tmp: Path) -> RunContext:
    base = tmp / uuid.uuid4().hex
    (base / "ws").mkdir(parents=True)
    return RunContext(
        pipeline_name="bench", pipeline_execution_id=str(uuid.uuid4()), execution_number=1,
        pipeline_version=1, stage_name="Build", action_name="True",
        action_execution_id=str(uuid.uuid4()), attempt=1, category="Build",
        provider="Shell", action={"name": "True", "commands": ["true"]}, variables={},
        input_dirs={}, output_dirs={}, workspace=base / "ws", log=LogWriter(base / "log"))


CPU: dict[str, list[float]] = {}


# This process is a child subreaper (Linux): bwrap's pid 1 outlives bwrap's first
# process and would be reaped by init, its CPU time (and its command's) lost to
# RUSAGE_CHILDREN; reparented here instead, it is reaped and counted.
PR_SET_CHILD_SUBREAPER = 36
SUBREAPER = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def cpu_now() -> float:
    """CPU seconds of this process and all its ended descendants (user + system), once
    the orphans a sandbox leaves have ended (at most 2 s)."""
    deadline = time.monotonic() + 2
    while SUBREAPER and time.monotonic() < deadline:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                time.sleep(0.0002)
        except ChildProcessError:
            break
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def action(tmp: Path, mode: str, name: str = "") -> float:
    settings.CONVEYOR_SANDBOX = mode
    ctx = context(tmp)
    cpu = cpu_now()
    started = time.perf_counter()
    ShellRunner().run(ctx)
    elapsed = time.perf_counter() - started
    CPU.setdefault(name or f"action-{mode}", []).append(cpu_now() - cpu)
    ctx.log.close()
    return elapsed


def spawn(argv: list[str], env: dict | None = None, cwd: Path | None = None,
          name: str = "", launch: sandbox.Launch | None = None) -> float:
    cpu = cpu_now()
    started = time.perf_counter()
    if launch is not None:
        proc = sandbox.start(launch, cwd=cwd, start_new_session=True)
        if proc.wait() != 0:
            raise SystemExit(f"{name} failed: exit status {proc.returncode}")
    else:
        subprocess.run(argv, env=env or {"PATH": "/usr/bin:/bin"}, cwd=cwd,
                       start_new_session=True, check=True)
    elapsed = time.perf_counter() - started
    CPU.setdefault(name, []).append(cpu_now() - cpu)
    return elapsed


def stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    ok, why = sandbox.probe()
    if not ok:
        sys.exit(f"the sandbox does not work here: {why}")
    loads = " ".join(f"{x:.2f}" for x in os.getloadavg())
    uid = sandbox.sandbox_uid()
    as_user = uid is not None and sandbox.as_user_works(uid)
    print(f"{os.cpu_count()} CPUs, load average before {loads}; "
          f"{args.runs} runs each, interleaved; worker uid {os.geteuid()}"
          + (f" (root: the command runs as uid {uid}; bwrap "
             + ("started as that user, or via setpriv" if as_user else
                "as root, then setpriv: started as that user it does not work here") + ")"
             if uid is not None else ""))
    names = ["bash -c true", "bwrap floor (the issue's command)", "Conveyor's bwrap line",
             "Shell true, CONVEYOR_SANDBOX=none", "Shell true, sandboxed"]
    if as_user:
        names[3:3] = ["Conveyor's bwrap line via setpriv"]
        names.append("Shell true, sandboxed via setpriv")
    times: dict[str, list[float]] = {k: [] for k in names}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        tmp_path.chmod(0o755)  # as var/ is made
        private = tmp_path / "private"  # a 0700 folder: the setpriv route
        private.mkdir(mode=0o700)
        settings.CONVEYOR_SANDBOX = "auto"
        lines = {}
        for name, root in (("Conveyor's bwrap line", tmp_path),
                           ("Conveyor's bwrap line via setpriv", private)):
            line_ctx = context(root)
            lines[name] = (line_ctx, sandbox.wrap(
                ["bash", "-c", "true"], line_ctx, env={"PATH": "/usr/bin:/bin"},
                cwd=line_ctx.workspace))
        print("Conveyor's bwrap line: " + " ".join(lines["Conveyor's bwrap line"][1].argv))
        for _ in range(5):  # warm caches
            action(tmp_path, "auto", "warm")
            action(tmp_path, "none", "warm")
        for _ in range(args.runs):
            times["bash -c true"].append(spawn(["bash", "-c", "true"], name="bash -c true"))
            times["bwrap floor (the issue's command)"].append(
                spawn(FLOOR, name="bwrap floor (the issue's command)"))
            for name, (line_ctx, launch) in lines.items():
                if name in times:
                    times[name].append(spawn(launch.argv, cwd=line_ctx.workspace,
                                             name=name, launch=launch))
            times["Shell true, CONVEYOR_SANDBOX=none"].append(
                action(tmp_path, "none", "Shell true, CONVEYOR_SANDBOX=none"))
            times["Shell true, sandboxed"].append(
                action(tmp_path, "auto", "Shell true, sandboxed"))
            if as_user:
                times["Shell true, sandboxed via setpriv"].append(
                    action(private, "auto", "Shell true, sandboxed via setpriv"))
    for name, values in times.items():
        median, p95 = stats(values)
        cpu = statistics.median(CPU[name]) * 1000
        print(f"{name:36s} median {median:6.2f} ms   p95 {p95:6.2f} ms   "
              f"CPU median {cpu:6.2f} ms")
    bash, floor = stats(times["bash -c true"]), stats(times["bwrap floor (the issue's command)"])
    off = stats(times["Shell true, CONVEYOR_SANDBOX=none"])
    on = stats(times["Shell true, sandboxed"])
    line = stats(times["Conveyor's bwrap line"])
    floor_cost = floor[0] - bash[0]
    print(f"bubblewrap's floor (floor - bash, medians): {floor_cost:.2f} ms")
    print(f"the sandbox's cost per action (sandboxed - unsandboxed action, medians): "
          f"{on[0] - off[0]:.2f} ms; p95 {on[1] - off[1]:.2f} ms")
    print(f"  above bubblewrap's floor: {on[0] - off[0] - floor_cost:+.2f} ms (target <= +2 ms)")
    print(f"  Conveyor's bwrap line alone above the floor: {line[0] - floor[0]:+.2f} ms")
    if as_user:
        old = stats(times["Shell true, sandboxed via setpriv"])
        old_line = stats(times["Conveyor's bwrap line via setpriv"])
        print(f"  via setpriv instead: {old[0] - off[0]:.2f} ms (p95 {old[1] - off[1]:.2f}), "
              f"{old[0] - off[0] - floor_cost:+.2f} ms above the floor; its bwrap line "
              f"{old_line[0] - floor[0]:+.2f} ms")
    cpu = {k: statistics.median(v) * 1000 for k, v in CPU.items()}
    cost = cpu["Shell true, sandboxed"] - cpu["Shell true, CONVEYOR_SANDBOX=none"]
    floor_cpu = cpu["bwrap floor (the issue's command)"] - cpu["bash -c true"]
    print(f"the same in CPU time (steadier on a busy machine; medians): the sandbox's cost "
          f"{cost:.2f} ms, bubblewrap's floor {floor_cpu:.2f} ms, "
          f"above it {cost - floor_cpu:+.2f} ms")
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
