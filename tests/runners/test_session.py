"""One shell session per action: state carries, statuses come back, stop kills it all."""

from __future__ import annotations

import threading
import time

import pytest

from runners.session import ShellSession
from tests.executions.test_shell import alive
from tests.runners.conftest import log_text, make_ctx


def session_for(tmp_path, **kwargs):
    ctx = make_ctx(tmp_path, {"name": "Run"})
    return ctx, ShellSession(ctx, env={"PATH": "/usr/bin:/bin"}, cwd=ctx.workspace, **kwargs)


def test_export_cd_variables_and_functions_carry_from_one_command_to_the_next(tmp_path):
    ctx, session = session_for(tmp_path)
    (ctx.workspace / "sub").mkdir()
    with session:
        for command in ["export GREETING=hello", "PLAIN=kept", "cd sub", "say() { echo said; }"]:
            assert session.run(command).code == 0
        assert session.run('echo "$GREETING $PLAIN $(basename "$PWD")"; say').code == 0
    lines = [line.split(" ", 1)[1] for line in log_text(ctx).splitlines()]
    assert lines == ["hello kept sub", "said"]


def test_each_commands_exit_status_comes_back_and_stdin_is_empty(tmp_path):
    ctx, session = session_for(tmp_path)
    with session:
        assert session.run("false").code == 1
        assert session.run("(exit 7)").code == 7
        assert session.run('test -z "$(cat)"').code == 0   # reads /dev/null, never hangs


def test_a_command_that_exits_the_shell_fails_and_the_next_one_keeps_the_state(tmp_path):
    ctx, session = session_for(tmp_path)
    with session:
        session.run("export A=1; B=2; cd /tmp; set -e")
        outcome = session.run("echo before; false; echo never")   # set -e ends the shell
        assert (outcome.code, outcome.shell_exited) == (1, True)
        assert session.run("exit 3").code == 3
        assert session.run('echo "after $A $B $PWD"').code == 0
        assert session.variables(["A", "B", "UNSET"]) == {"A": "1", "B": "2"}
    lines = [line.split(" ", 1)[1] for line in log_text(ctx).splitlines()]
    assert lines == ["before", "after 1 2 /tmp"]


def test_a_command_cannot_read_or_answer_on_the_sessions_own_channels(tmp_path):
    ctx, session = session_for(tmp_path)
    with session:
        assert session.run("echo forged >&201").code != 0
        assert session.run("read -r line <&200").code != 0
        assert session.run("true").code == 0


def test_the_sessions_channels_work_whatever_descriptors_the_worker_holds(tmp_path):
    """The shell names its channels 200 and 201: the pipes it gets may carry those numbers
    in the worker (a worker holding many files), and must still work."""
    import os

    ctx, session = session_for(tmp_path)
    held = []
    with session:
        try:
            # Every descriptor below 200 taken: the session's pipes get 200 and up.
            while not held or held[-1] < 199:
                held.append(os.open(os.devnull, os.O_RDONLY))
            assert session.run("echo hello; false").code == 1
            assert session.run("echo again").code == 0
        finally:
            for fd in held:
                os.close(fd)
    assert [line.split(" ", 1)[1] for line in log_text(ctx).splitlines()] == ["hello", "again"]


@pytest.mark.usefixtures("unsandboxed")  # written before the sandbox: see the fixture
def test_stopping_the_session_kills_its_background_processes(tmp_path):
    ctx, session = session_for(tmp_path)
    pidfile = tmp_path / "bg.pid"
    result = {}
    with session:
        session.run(f"sleep 60 & echo $! > {pidfile}")
        thread = threading.Thread(target=lambda: result.update(o=session.run("sleep 60")))
        thread.start()
        time.sleep(0.3)
        ctx.request_stop("abandoned")
        thread.join(timeout=5)
    assert result["o"].stopped
    assert not alive(int(pidfile.read_text()))


def test_a_command_past_its_deadline_is_killed(tmp_path):
    ctx, session = session_for(tmp_path)
    started = time.monotonic()
    with session:
        outcome = session.run("sleep 30", deadline=time.monotonic() + 0.3)
    assert outcome.timed_out and time.monotonic() - started < 5


def test_the_shell_provider_runs_its_commands_in_one_session_too(tmp_path):
    """docs/runners.md: Shell moved onto the session, so cd and export carry."""
    from runners.shell import ShellRunner

    ctx = make_ctx(tmp_path, {"name": "Run", "actionTypeId": {
        "category": "Build", "owner": "Custom", "provider": "Shell", "version": "1"},
        "commands": ["mkdir -p sub && cd sub", "export WHERE=$(basename $PWD)",
                     'echo "in $WHERE" > ../where.txt']})
    result = ShellRunner().run(ctx)
    assert result.summary == "3 commands succeeded"
    assert (ctx.workspace / "where.txt").read_text() == "in sub\n"


@pytest.mark.parametrize("mode", ["auto", "none"])
@pytest.mark.parametrize("posix", [False, True])
def test_the_sessions_shell_holds_the_actions_limits_from_its_start(tmp_path, settings,
                                                                      mode, posix):
    """The session's bash sets the limits itself (ulimit, before its first command; no
    prlimit, no fork of the worker), in POSIX mode too, whose -f counts 512-byte blocks."""
    from runners import sandbox

    settings.CONVEYOR_SANDBOX = mode
    ctx, session = session_for(tmp_path, posix=posix)
    limits = sandbox.limits_for(ctx)
    with session:
        assert session.run("grep -E '^Max (file size|data size|open files|cpu time)' "
                           "/proc/self/limits").code == 0
        assert session.run("ulimit -S -n 999999 2>/dev/null").code != 0  # above the hard one
    text = log_text(ctx)
    mib = 1 << 20
    for name, soft, hard in (("file size", limits.file_size_mib * mib, None),
                             ("data size", limits.memory_mib * mib, None),
                             ("open files", limits.open_files, None),
                             ("cpu time", limits.cpu_seconds, limits.cpu_seconds + 5)):
        line = next(x for x in text.splitlines() if f"Max {name}" in x)
        assert line.split()[-3:-1] == [str(soft), str(hard or soft)], line
