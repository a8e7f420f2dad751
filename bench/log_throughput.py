"""Log throughput: an action printing 50 MB against the same command writing to /dev/null.

Runs the real Shell runner (bash in its own process group, the output pump, the
LogWriter and its index of times, runners/logfile.py) on a RunContext, the way a
worker does, for each
producer below, alternating the two variants ``--rounds`` times and keeping
the best time of each (the least disturbed by other processes on the
machine). Prints the times, the overhead and the log's size.

    .venv/bin/python bench/log_throughput.py [--rounds 5] [--mb 50]

The acceptance figure (DESIGN/issue 4): printing must cost at most 10% more
than writing to /dev/null. Each producer also gets two floors measured without
Conveyor: the same command redirected to a file, and piped into ``cat > file``.
A producer that writes at memory speed (``yes | head``) pays more than 10% for
either: storing its output at all costs more than that.

``--sandbox auto`` (default) runs the action's command in the sandbox
(runners/sandbox.py), ``none`` without it. The restated target (issue 15): for
lines of 40 bytes or more the logged action is at most 10 % slower than the
same command piped into a file (``| cat > file``) *without Conveyor*: a plain
``bash -c`` from this process, printed as "vs '| cat > file' outside". Both sides
write a new file in the same folder (the action's log, its index beside it; the
outside floor's file is removed before each round, not truncated while timed), and
neither syncs to disk. The rounds alternate which of the two runs first (the logged
action, then the outside floor; the next round the other way), and ``--dir`` puts
the folder on a chosen file system (default: a new temporary folder). The loggers'
own CPU time is printed beside the wall times, as load hardly changes it: the
worker's (the whole action: pump, index, the runner's own work) against ``cat``'s,
from one more run per round of the same pipeline with ``cat`` as a child of this
process (its rusage). Nothing is dropped: best and median of every round.

    .venv/bin/python bench/log_throughput.py --rounds 5 --mb 50 --sandbox auto
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

import subprocess  # noqa: E402

from django.conf import settings  # noqa: E402

from runners import sandbox  # noqa: E402
from runners.base import LogWriter, RunContext  # noqa: E402
from runners.shell import ShellRunner  # noqa: E402

# The system's Python: the sandbox shows a command the system, not Conveyor's virtualenv.
PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def producers(mb: int) -> dict[str, str]:
    size = mb * 1024 * 1024
    line = "x" * 79  # 80-byte lines with the new line
    return {
        # A compiler-like log: 80-character lines, as fast as the machine can write them.
        "yes | head (80-byte lines)": f"yes {line} | head -c {size}",
        # Short lines (the worst case for per-line timestamps): "1\n2\n3\n..." ~7 bytes.
        "seq (short lines)": f"seq 1 {int(size / 7.9)}",
        # A program that formats what it prints (Python, 100-byte lines, block-buffered
        # as stdio is on a pipe).
        "python print loop": (f"{PYTHON} -c \"import sys\n"
                              f"w = sys.stdout.write\n"
                              f"for i in range({size // 100}): w(f'line {{i:>10}} ' + 'y' * 83 + "
                              f"chr(10))\""),
        # The same, each line flushed as it is printed (python -u, a live test runner):
        # what a live log is for.
        "python, line-flushed": (f"{PYTHON} -u -c \"import sys\n"
                                 f"w = sys.stdout.write\n"
                                 f"for i in range({size // 100}): w(f'line {{i:>10}} ' + "
                                 f"'y' * 83 + chr(10))\""),
    }


# --mask: the action holds a secret (never printed), so its output is masked on its way
# to the log (runners/session.py, LogPump.feed) instead of spliced.
MASKED = {"environmentVariables": [{"name": "TOKEN", "value": "bench/token",
                                    "type": "SECRETS_MANAGER"}]}
os.environ["CONVEYOR_SECRET_BENCH_TOKEN"] = "s3cr3t-not-printed"


def once(command: str, tmp: Path, *, mask: bool = False) -> tuple[float, int, float]:
    base = tmp / uuid.uuid4().hex
    (base / "ws").mkdir(parents=True)
    log = LogWriter(base / "action.log")
    ctx = RunContext(
        pipeline_name="bench", pipeline_execution_id=str(uuid.uuid4()), execution_number=1,
        pipeline_version=1, stage_name="Build", action_name="Print",
        action_execution_id=str(uuid.uuid4()), attempt=1, category="Build", provider="Shell",
        action={"name": "Print", "commands": [command], **(MASKED if mask else {})},
        variables={},
        input_dirs={}, output_dirs={}, workspace=base / "ws", log=log)
    started, cpu = time.perf_counter(), time.process_time()
    ShellRunner().run(ctx)
    log.close()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    size = (base / "action.log").stat().st_size
    shutil.rmtree(base)
    return elapsed, size, cpu


def cat_cpu(command: str, tmp: Path, env: dict) -> float:
    """The CPU time ``cat`` spends moving the command's output into a new file (seconds)."""
    out = tmp / "cat.out"
    out.unlink(missing_ok=True)
    read, write = os.pipe()
    producer = subprocess.Popen(["bash", "-c", command], stdout=write, env=env)
    os.close(write)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    cat = subprocess.Popen(["cat"], stdin=read, stdout=fd)
    os.close(read)
    os.close(fd)
    producer.wait()
    _, _, usage = os.wait4(cat.pid, 0)
    cat.returncode = 0
    out.unlink()
    return usage.ru_utime + usage.ru_stime


def outside_floor(command: str, out: Path, env: dict) -> float:
    """``{ command; } | cat > out`` from a plain ``bash -c`` (a new ``out``): seconds."""
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run(["bash", "-c", f"{{ {command}; }} | cat > {out}"], check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--only", help="run only producers whose name contains this")
    parser.add_argument("--sandbox", choices=("auto", "none"), default="auto",
                        help="run the action's commands in the sandbox (auto) or not (none)")
    parser.add_argument("--mask", action="store_true",
                        help="the logged action holds a secret: its output is masked, not "
                             "spliced")
    parser.add_argument("--dir", type=Path, default=None,
                        help="the folder both sides write in (default: a new temporary one)")
    args = parser.parse_args()
    settings.CONVEYOR_SANDBOX = args.sandbox
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"best (and median) of {args.rounds} rounds each; sandbox {sandbox.status()}"
          f"{'; the logged action masks a secret' if args.mask else ''}")
    worst = float("-inf")
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
    # (the action's clean environment: this process's PYTHONUNBUFFERED=1, say, would make
    # a Python producer 4 times slower outside)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": tmp}
        for name, command in producers(args.mb).items():
            if args.only and args.only not in name:
                continue
            logged, devnull, to_file, piped, cpus, outside = [], [], [], [], [], []
            fixed = []
            size = 0
            out = Path(tmp) / "floor.out"
            cats = []
            for i in range(args.rounds):
                # The restated floor: the same pipe without Conveyor at all, into a new
                # file as the action's log is (truncating the last round's 50 MB would
                # be timed on this side only); before the logged action in odd rounds,
                # after it in even ones.
                if i % 2:
                    outside.append(outside_floor(command, out, env))
                t, size, cpu = once(command, Path(tmp), mask=args.mask)
                logged.append(t)
                cpus.append(cpu)
                if not i % 2:
                    outside.append(outside_floor(command, out, env))
                devnull.append(once(f"{{ {command}; }} > /dev/null", Path(tmp))[0])
                # Floors that store the output without Conveyor: the shell's own
                # redirect to a file, and a pipe into `cat > file` (the least any
                # logger reading a pipe does).
                # (into the action's workspace: the sandbox shows a command nothing else)
                to_file.append(once(f"{{ {command}; }} > floor.out", Path(tmp))[0])
                piped.append(once(f"{{ {command}; }} | cat > floor.out", Path(tmp))[0])
                fixed.append(once("true", Path(tmp))[0])
                cats.append(cat_cpu(command, Path(tmp), env))
            out.unlink(missing_ok=True)
            best_log, best_null = min(logged), min(devnull)
            overhead = (best_log / best_null - 1) * 100
            worst = max(worst, overhead)
            floor_file = (min(to_file) / best_null - 1) * 100
            floor_pipe = (min(piped) / best_null - 1) * 100
            # The worker's own CPU time (pump, stamping, writing): the log path's cost,
            # whatever else the machine is doing.
            print(f"{name:24s} to the log {best_log:6.3f} s   to /dev/null {best_null:6.3f} s"
                  f"   overhead {overhead:+6.1f}%   log {size / 1e6:6.1f} MB"
                  f"   worker CPU {min(cpus):5.3f} s (median {statistics.median(cpus):5.3f} s;"
                  f" cat's {statistics.median(cats):5.3f} s)")
            print(f"{'':24s} floors without Conveyor: '> file' {floor_file:+6.1f}%, "
                  f"'| cat > file' {floor_pipe:+6.1f}%")
            vs_outside = (best_log / min(outside) - 1) * 100
            print(f"{'':24s} vs '| cat > file' outside Conveyor ({min(outside):6.3f} s): "
                  f"{vs_outside:+6.1f}% (target for lines >= 40 bytes: <= +10%)")
            med_log, med_out = statistics.median(logged), statistics.median(outside)
            print(f"{'':24s} medians: to the log {med_log:6.3f} s, '| cat > file' outside "
                  f"{med_out:6.3f} s: {(med_log / med_out - 1) * 100:+6.1f}%; a `true` action "
                  f"{statistics.median(fixed):6.3f} s (the action's fixed cost)")
    print(f"worst overhead {worst:+.1f}% (limit +10%); load average after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
