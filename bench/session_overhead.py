"""Cost of one command: a ShellSession (one bash per action) against one ``bash -c`` each.

Runs ``--commands`` trivial commands (``true``) both ways, ``--rounds`` times,
alternating, and prints the best per-command time of each with the load average
(the least disturbed round; see docs/benchmarks.md for how figures are read).

    .venv/bin/python bench/session_overhead.py [--commands 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
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

from runners.base import LogWriter, RunContext  # noqa: E402
from runners.session import ShellSession  # noqa: E402


def context(root: Path) -> RunContext:
    workspace = root / uuid.uuid4().hex / "workspace"
    workspace.mkdir(parents=True)
    return RunContext(
        pipeline_name="bench", pipeline_execution_id=str(uuid.uuid4()), execution_number=1,
        pipeline_version=1, stage_name="Build", action_name="Run",
        action_execution_id=str(uuid.uuid4()), attempt=1, category="Build", provider="Shell",
        action={}, variables={}, input_dirs={}, output_dirs={}, workspace=workspace,
        log=LogWriter(workspace.parent / "action.log"))


def session_run(root: Path, n: int) -> float:
    ctx = context(root)
    started = time.perf_counter()
    with ShellSession(ctx, env={"PATH": "/usr/bin:/bin"}, cwd=ctx.workspace) as session:
        for _ in range(n):
            session.run("true")
    return (time.perf_counter() - started) / n


def bash_each(root: Path, n: int) -> float:
    cwd = context(root).workspace
    started = time.perf_counter()
    for _ in range(n):
        subprocess.run(["bash", "-c", "true"], cwd=cwd, env={"PATH": "/usr/bin:/bin"},
                       stdin=subprocess.DEVNULL, start_new_session=True, check=True)
    return (time.perf_counter() - started) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    best = {"session": float("inf"), "bash -c each": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            best["session"] = min(best["session"], session_run(Path(tmp), args.commands))
            best["bash -c each"] = min(best["bash -c each"], bash_each(Path(tmp), args.commands))
    load = os.getloadavg()
    for name, seconds in best.items():
        print(f"{name:>14}: {seconds * 1000:.2f} ms per command")
    print(f"{args.commands} commands x {args.rounds} rounds; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
