"""The memory limit holds for the build as a whole (runners/watch.py), not only per process.

Real bash in the real sandbox; each process below holds its memory for real
(``b"x" * n`` writes every page) and stays under the per-process limit, so only
the sum over the build can end it.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from runners import ActionFailed, sandbox
from runners.shell import ShellRunner
from tests.factories import action
from tests.runners.conftest import log_text, make_ctx

runner = ShellRunner()
# 40 MiB held, then a pause: under the 64 MiB limit alone, above it two together.
HOLD = "python3 -c \"import time; held = b'x' * (40 << 20); time.sleep({seconds})\""
MARKER = "memwatch4242"


def attempt(tmp_path, commands):
    ctx = make_ctx(tmp_path, action("Run", "Build", "Shell", commands=commands,
                                    configuration={"LimitMemoryMiB": "64"}))
    started = time.monotonic()
    try:
        runner.run(ctx)
        return ctx, None, time.monotonic() - started
    except ActionFailed as failed:
        return ctx, failed.summary, time.monotonic() - started


def leftovers() -> str:
    found = subprocess.run(["pgrep", "-af", MARKER], capture_output=True, text=True).stdout
    return "\n".join(line for line in found.splitlines() if "bwrap" not in line)


def test_two_processes_together_above_the_memory_limit_fail_the_build_naming_it(tmp_path):
    hold = HOLD.format(seconds=20)
    ctx, failure, took = attempt(tmp_path, [f": {MARKER}; {hold} & {hold} & wait"])
    assert failure is not None, log_text(ctx)
    assert "Command 1 of 1 failed" in failure
    assert "(the memory limit (64 MiB for the build as a whole) was exceeded: its " in failure
    assert "MiB together)" in failure
    assert "Limit: the memory limit (64 MiB for the build as a whole) was exceeded" in \
        log_text(ctx)
    assert took < 10  # ended by the watch, not by the processes' own end
    deadline = time.monotonic() + 3
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert leftovers() == ""


def test_one_process_under_the_limit_runs_to_its_end(tmp_path):
    ctx, failure, _ = attempt(tmp_path, [HOLD.format(seconds=1)])
    assert failure is None, failure


def test_a_daemon_that_left_the_shell_is_counted_in_the_sandbox(tmp_path):
    if sandbox.status() != sandbox.ON:
        pytest.skip("bubblewrap does not work here: a daemon leaves the tree unsandboxed")
    hold = HOLD.format(seconds=20)
    # The daemon leaves its parent (setsid, its parent ends): inside the sandbox's pid
    # namespace it becomes the sandbox's init's child, still inside the build.
    ctx, failure, took = attempt(tmp_path, [f"(setsid {hold} &); : {MARKER}; {hold}"])
    assert failure is not None and "for the build as a whole) was exceeded" in failure
    assert took < 10
