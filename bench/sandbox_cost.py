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
  from this process (the sandbox's own start, without the runner around it).

Prints median and p95 in ms of each, the sandbox's cost (sandboxed − unsandboxed
action) and how far that is above bubblewrap's floor (floor − bash): the target is
at most 2 ms above it. Says whether the worker is root (then the command is also
switched to an unprivileged uid by ``setpriv``, one more exec).

    .venv/bin/python bench/sandbox_cost.py [--runs 200]
"""

from __future__ import annotations

import argparse
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


def cpu_now() -> float:
    """CPU seconds of this process and its reaped children (user + system)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def action(tmp: Path, mode: str) -> float:
    settings.CONVEYOR_SANDBOX = mode
    ctx = context(tmp)
    started, cpu = time.perf_counter(), cpu_now()
    ShellRunner().run(ctx)
    elapsed = time.perf_counter() - started
    CPU.setdefault(f"action-{mode}", []).append(cpu_now() - cpu)
    ctx.log.close()
    return elapsed


def spawn(argv: list[str], env: dict | None = None, cwd: Path | None = None,
          name: str = "") -> float:
    started, cpu = time.perf_counter(), cpu_now()
    subprocess.run(argv, env=env or {"PATH": "/usr/bin:/bin"}, cwd=cwd,
                   start_new_session=True, check=True)
    CPU.setdefault(name, []).append(cpu_now() - cpu)
    return time.perf_counter() - started


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
    print(f"{os.cpu_count()} CPUs, load average before {loads}; "
          f"{args.runs} runs each, interleaved; worker uid {os.geteuid()}"
          + (" (root: the command also goes through setpriv to uid "
             f"{sandbox.sandbox_uid()})" if os.geteuid() == 0 else ""))
    times: dict[str, list[float]] = {k: [] for k in (
        "bash -c true", "bwrap floor (the issue's command)", "Conveyor's bwrap line",
        "Shell true, CONVEYOR_SANDBOX=none", "Shell true, sandboxed")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        settings.CONVEYOR_SANDBOX = "auto"
        line_ctx = context(tmp_path)
        launch = sandbox.wrap(["bash", "-c", "true"], line_ctx, env={"PATH": "/usr/bin:/bin"},
                              cwd=line_ctx.workspace)
        for _ in range(5):  # warm caches
            action(tmp_path, "auto")
            action(tmp_path, "none")
        for _ in range(args.runs):
            times["bash -c true"].append(spawn(["bash", "-c", "true"], name="bash -c true"))
            times["bwrap floor (the issue's command)"].append(
                spawn(FLOOR, name="bwrap floor (the issue's command)"))
            times["Conveyor's bwrap line"].append(
                spawn(launch.argv, env=launch.env, cwd=line_ctx.workspace,
                      name="Conveyor's bwrap line"))
            times["Shell true, CONVEYOR_SANDBOX=none"].append(action(tmp_path, "none"))
            times["Shell true, sandboxed"].append(action(tmp_path, "auto"))
    CPU["Shell true, CONVEYOR_SANDBOX=none"] = CPU.pop("action-none")[5:]
    CPU["Shell true, sandboxed"] = CPU.pop("action-auto")[5:]
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
    cpu = {k: statistics.median(v) * 1000 for k, v in CPU.items()}
    cost = cpu["Shell true, sandboxed"] - cpu["Shell true, CONVEYOR_SANDBOX=none"]
    floor_cpu = cpu["bwrap floor (the issue's command)"] - cpu["bash -c true"]
    print(f"the same in CPU time (steadier on a busy machine; medians): the sandbox's cost "
          f"{cost:.2f} ms, bubblewrap's floor {floor_cpu:.2f} ms, "
          f"above it {cost - floor_cpu:+.2f} ms")
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
