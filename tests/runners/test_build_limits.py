"""Memory and CPU time limits hold for the build as a whole (runners/watch.py), not only
per process.

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


def test_in_the_sandbox_the_build_is_listed_from_its_own_proc(tmp_path):
    from runners.session import ShellSession
    from runners.watch import BuildWatch

    if sandbox.status() != sandbox.ON:
        pytest.skip("bubblewrap does not work here")
    ctx = make_ctx(tmp_path, action("Run", "Build", "Shell", commands=["true"]))
    with ShellSession(ctx, env={"PATH": "/usr/bin:/bin"}, cwd=ctx.workspace) as session:
        assert session.run("sleep 30 & sleep 30 & true").code == 0
        watch = BuildWatch(session.proc.pid, sandbox.default_limits())
        held, cpu, count = watch.build_usage()
        # bwrap's init, the session's bash, two sleeps: the sandbox's processes only.
        assert watch.proc is not None and watch.proc.endswith("/root/proc")
        assert count == 4 and 0 < held < 64 << 20 and 0 <= cpu < 5


def test_a_commands_action_above_its_memory_limit_fails_naming_it(driver, tmp_path, settings):
    from executions.models import ActionExecution
    from pipelines.services import pipeline_save
    from tests.factories import definition
    from tests.runners.conftest import GitRepo
    from tests.runners.test_commands_action import commands_action, git_source

    # The Commands action takes its limits from the settings (and ComputeType).
    settings.CONVEYOR_SANDBOX_LIMITS = {**settings.CONVEYOR_SANDBOX_LIMITS, "memory_mib": 64}
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"a.txt": "a"})
    hold = HOLD.format(seconds=20)
    doc = definition("memory", stages=[
        ("Source", [git_source(repo)]),
        ("Build", [commands_action("Test", [f"{hold} & {hold} & wait"],
                                   inputArtifacts=[{"name": "Src"}])]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    test = ActionExecution.objects.get(execution=execution, action_name="Test")
    assert test.status == "Failed"
    assert test.summary.startswith("Command 1 of 1 failed with exit code 137: ")
    assert "(the memory limit (64 MiB for the build as a whole) was exceeded: its " in \
        test.summary


def test_two_processes_together_above_the_cpu_time_limit_fail_the_build_naming_it(tmp_path):
    # 1.8 s of CPU each, under the 2 s each process may use; 3.6 s together, above the
    # limit and the watch's 1 s of grace (runners/watch.py). Both end
    # (their CPU time is then their parent's reaped children's), the build waits on.
    spin = ("python3 -c \"import time\nwhile time.process_time() < 1.8: pass\"")
    ctx = make_ctx(tmp_path, action("Run", "Build", "Shell", commands=[
        f"{spin} & {spin} & wait; sleep 60"], configuration={"LimitCpuSeconds": "2"}))
    started = time.monotonic()
    with pytest.raises(ActionFailed) as failed:
        runner.run(ctx)
    assert "(the CPU time limit (2 s for the build as a whole) was exceeded: its processes " \
           "used " in failed.value.summary
    assert time.monotonic() - started < 50


def test_unsandboxed_two_processes_together_above_the_memory_limit_fail_the_build(
        tmp_path, settings):
    settings.CONVEYOR_SANDBOX = "none"
    hold = HOLD.format(seconds=20)
    ctx, failure, took = attempt(tmp_path, [f": {MARKER}; {hold} & {hold} & wait"])
    assert failure is not None, log_text(ctx)
    assert "(the memory limit (64 MiB for the build as a whole) was exceeded: its " in failure
    assert took < 10


def test_unsandboxed_the_build_is_listed_from_its_processes_children(tmp_path, settings):
    """Unsandboxed, the watch walks the session's tree through the kernel's children lists
    (not a scan of the machine): the same processes as the scan of every parent id."""
    from runners import watch
    from runners.session import ShellSession

    settings.CONVEYOR_SANDBOX = "none"
    ctx = make_ctx(tmp_path, action("Run", "Build", "Shell", commands=["true"]))
    with ShellSession(ctx, env={"PATH": "/usr/bin:/bin"}, cwd=ctx.workspace) as session:
        assert session.run("sleep 30 & (sleep 30; true) & true").code == 0
        root = session.proc.pid
        deadline = time.monotonic() + 5
        while len(found := watch.descendants(root)) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)  # the subshell starts its sleep on its own time
        # the session's bash, a sleep, a subshell and its sleep
        assert sorted(found) == sorted(watch._descendants_by_scan(root))
        assert found[0] == root and len(found) == 4
        held, cpu, count = watch.BuildWatch(root, sandbox.default_limits()).build_usage()
        assert count == 4 and 0 < held < 64 << 20
