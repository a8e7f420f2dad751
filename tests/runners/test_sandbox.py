"""Build code is untrusted: a build tries each escape, in the sandbox it fails.

Each escape runs as a commit's commands would: real bash in the real bubblewrap
sandbox (the machine must have bubblewrap: ``make test`` and ``.ci/run`` install
it). Where it shows what the sandbox is for, the same command is also run with
``CONVEYOR_SANDBOX=none``: there the escape works and the log says the action ran
unsandboxed. The network tests reach only a local HTTP server on 127.0.0.1 (it
stands in for a package registry); nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from approvals.models import ApprovalRequest
from executions.models import ActionExecution
from pipelines.services import pipeline_save
from pipelines.validation import validate_document
from runners import ActionFailed, logfile, sandbox, sandbox_user
from runners.shell import ShellRunner
from tests.factories import action, definition
from tests.runners.conftest import log_text, make_ctx

runner = ShellRunner()


def shell(commands, category="Build", **fields) -> dict:
    return action("Run", category, "Shell", commands=commands, **fields)


def attempt(tmp_path, commands, **fields):
    """Run the commands as a Shell action; (ctx, summary of the failure or None)."""
    ctx = make_ctx(tmp_path, shell(commands, **fields))
    try:
        runner.run(ctx)
        return ctx, None
    except ActionFailed as failed:
        return ctx, failed.summary


def host_processes(program: str, marker: str) -> list[int]:
    """Processes on the machine running ``program`` with ``marker`` in its arguments
    (not bwrap, whose own arguments hold the whole command)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if Path(argv[0]).name == program and any(marker in arg for arg in argv[1:]):
            found.append(int(cmdline.parent.name))
    return found


@pytest.fixture(autouse=True)
def _sandbox_here():
    """These tests prove the sandbox: it must work on the machine that runs them."""
    assert sandbox.probe() == (True, ""), sandbox.probe()[1]


AS_USER, SETPRIV = "bwrap started as the build's user", "bwrap as root, then setpriv"


@pytest.fixture(params=[AS_USER, SETPRIV] if os.geteuid() == 0 else ["the worker's uid"])
def tmp_path(request, tmp_path):
    """Every test of this module on each way a sandbox starts. A root worker starts bwrap
    as the build's user when that user reaches the action's folders (a folder made
    with the usual umask, as ``var/`` is: the first parameter), else as root with
    ``setpriv`` (pytest's own folders, under a 0700 one: the second)."""
    if request.param != AS_USER:
        yield tmp_path
        return
    if not sandbox_user.available():
        pytest.skip("the per-thread ids are not known on this machine: always setpriv")
    assert sandbox.as_user_works(sandbox.sandbox_uid())
    path = Path(tempfile.mkdtemp(prefix="conveyor-sandbox-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --- who the build is ----------------------------------------------------------------


def test_the_build_is_an_unprivileged_user_inside_and_outside(tmp_path):
    """Inside: its ids. Outside: the owner of what it writes, and the ids the machine's
    /proc shows for its running process."""
    marker = "4242.125"
    ctx = make_ctx(tmp_path, shell([
        "id -u > uid.txt; id -G > groups.txt; touch made-by-the-build",
        f"sleep {marker}"]))
    thread = threading.Thread(target=lambda: _run_catching(ctx), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not (seen := host_processes("sleep", marker)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen, "the build's sleep never showed among the machine's processes"
        status = Path(f"/proc/{seen[0]}/status").read_text()
    finally:   # the sleep ends with the test, seen or not
        ctx.request_stop("seen")
        runner.cancel(ctx)
        thread.join(10)
    user = sandbox.sandbox_uid() or os.geteuid()
    assert user != 0
    lines = dict(line.split(":", 1) for line in status.splitlines())
    assert lines["Uid"].split() == [str(user)] * 4  # real, effective, saved, file system
    made = (ctx.workspace / "made-by-the-build").stat()
    assert made.st_uid == user
    inside = int((ctx.workspace / "uid.txt").read_text())
    assert inside != 0
    if os.geteuid() == 0:  # the same ids inside (the user namespace maps the user to
        # itself) and outside, no group of root's
        assert inside == user and made.st_gid == user
        assert lines["Gid"].split() == [str(user)] * 4 and lines["Groups"].split() == []
        assert (ctx.workspace / "groups.txt").read_text().split() == [str(user)]


@pytest.mark.skipif(os.geteuid() != 0, reason="a root worker's files: the build is not root")
def test_a_build_cannot_read_a_root_only_file_of_a_folder_it_is_given(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    secret = shared / "root-only"
    secret.write_text("root's own")
    secret.chmod(0o600)
    ctx, failure = attempt(tmp_path, [f"ls {shared}", f"cat {secret}"],
                           configuration={"ReadablePaths": str(shared)})
    assert failure == f"Command 2 of 2 failed with exit code 1: cat {secret}"
    log = log_text(ctx)
    assert "root-only" in log and "Permission denied" in log and "root's own" not in log


@pytest.mark.skipif(os.geteuid() != 0, reason="the two routes are a root worker's")
def test_a_root_worker_starts_bwrap_as_the_build_user_where_that_user_reaches_the_folders(
        tmp_path):
    env = {"PATH": "/usr/bin:/bin"}

    def launch(base, **more):
        ctx = make_ctx(base, shell(["true"]))
        return sandbox.wrap(["bash", "-c", "true"], ctx, env={**env, **more},
                            cwd=ctx.workspace)

    hidden = tmp_path / "private"
    hidden.mkdir(mode=0o700)
    for base, more, as_user in (
            (tmp_path, {}, tmp_path.stat().st_mode & 0o001 and sandbox_user.available()),
            (tmp_path, {"LD_LIBRARY_PATH": "/opt/lib"},
             tmp_path.stat().st_mode & 0o001 and sandbox_user.available()),
            (hidden, {}, False)):  # out of the build user's reach
        started = launch(base, **more)
        if as_user:
            assert started.user == sandbox.sandbox_uid()
            assert "setpriv" not in started.argv and "--cap-add" not in started.argv
            assert started.argv[1:3] == ["--unshare-user", "--disable-userns"]
        else:
            assert started.user is None
            assert started.argv[started.argv.index("--") + 1] == "setpriv"


@pytest.mark.skipif(not sandbox_user.available(), reason="a root worker's per-thread ids")
def test_the_build_users_ids_are_the_starting_threads_alone_and_always_restored():
    inside, seen, release = threading.Event(), {}, threading.Event()

    def start_as_the_build_user():
        with sandbox_user.ids_of(65534):
            seen["thread"] = os.getresuid(), os.getresgid(), os.getgroups()
            inside.set()
            release.wait(10)
        seen["after"] = os.getresuid(), os.getresgid()

    before = os.getresuid(), os.getresgid(), os.getgroups()
    thread = threading.Thread(target=start_as_the_build_user)
    thread.start()
    assert inside.wait(10)
    assert (os.getresuid(), os.getresgid(), os.getgroups()) == before  # this thread's own
    release.set()
    thread.join(10)
    assert seen["thread"] == ((65534, 65534, 0), (65534, 65534, 65534), [])
    assert seen["after"] == before[:2]
    with pytest.raises(RuntimeError), sandbox_user.ids_of(65534):
        raise RuntimeError("the spawn failed")
    assert (os.getresuid(), os.getresgid(), os.getgroups()) == before


def test_a_build_cannot_make_a_user_namespace_of_its_own(tmp_path, request):
    if "setpriv" in request.node.callspec.params.get("tmp_path", ""):
        pytest.skip("the setpriv route leaves the build the machine's user namespaces "
                    "(docs/security.md)")
    ctx, failure = attempt(tmp_path, ["unshare --user true"])
    assert failure == "Command 1 of 1 failed with exit code 1: unshare --user true"
    assert "unshare failed" in log_text(ctx)


def test_the_build_receives_every_variable_it_is_given_on_either_route(tmp_path):
    ctx, failure = attempt(tmp_path, ["env > env.txt"], environmentVariables=[
        {"name": "LD_LIBRARY_PATH", "value": "/opt/lib"}, {"name": "TZDIR", "value": "/z"},
        {"name": "PLAIN", "value": "kept"}])
    assert failure is None, failure
    env = (ctx.workspace / "env.txt").read_text().splitlines()
    for line in ("LD_LIBRARY_PATH=/opt/lib", "TZDIR=/z", "PLAIN=kept", "TMPDIR=/tmp"):
        assert line in env


# --- what the server keeps ---------------------------------------------------------


def test_a_build_cannot_read_the_secret_key_or_conveyors_code(tmp_path, settings):
    key = Path(settings.VAR_DIR) / "secret_key"
    key.parent.mkdir(parents=True, exist_ok=True)
    if not key.exists():
        key.write_text("dev-key")
    ctx, failure = attempt(tmp_path, [f'cat "{key}"'])
    assert failure == f'Command 1 of 1 failed with exit code 1: cat "{key}"'
    assert "No such file or directory" in log_text(ctx)
    _, failure = attempt(tmp_path, [f'ls "{settings.BASE_DIR}/config/settings.py"'])
    assert failure is not None


def test_without_the_sandbox_the_same_build_reads_the_secret_key_and_the_log_warns(
        tmp_path, settings):
    settings.CONVEYOR_SANDBOX = "none"
    key = Path(settings.VAR_DIR) / "secret_key"
    key.parent.mkdir(parents=True, exist_ok=True)
    if not key.exists():
        key.write_text("dev-key")
    ctx, failure = attempt(tmp_path, [f'cat "{key}" > stolen', "true"])
    assert failure is None and (ctx.workspace / "stolen").read_text() == key.read_text()
    log = log_text(ctx)
    assert log.count("Warning: Build commands run without a sandbox (CONVEYOR_SANDBOX=none)") == 1


def database_file(tmp_path) -> Path:
    """The test database when it is a file (``make test``), else a SQLite database made
    for the test where the server keeps its own (``<var>/conveyor.sqlite3``)."""
    name = str(connection.settings_dict["NAME"])
    if connection.vendor == "sqlite" and Path(name).is_file():
        return Path(name)
    path = tmp_path / "var" / "conveyor.sqlite3"
    path.parent.mkdir(exist_ok=True)
    sqlite3.connect(path).execute("create table approvals_approvalrequest (status text)")
    return path


def test_a_build_cannot_open_the_database_file(tmp_path, db):
    database = database_file(tmp_path)
    ctx, failure = attempt(tmp_path, [
        f"python3 -c \"import sqlite3; sqlite3.connect('file:{database}?mode=rw', uri=True)"
        ".execute('select 1')\""])
    assert failure is not None
    assert "unable to open database file" in log_text(ctx)


def test_a_build_does_not_get_the_servers_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL_PROBE", "postgres://conveyor:hunter2@db/conveyor")
    monkeypatch.setenv("CONVEYOR_SECRET_OTHER_PIPELINE", "s3cr3t-of-another-pipeline")
    ctx, failure = attempt(tmp_path, ["env > env.txt; ls -a ~ > home.txt"])
    assert failure is None
    env = (ctx.workspace / "env.txt").read_text()
    assert "hunter2" not in env and "s3cr3t" not in env
    assert "HOME=/home/build" in env.splitlines()
    assert (ctx.workspace / "home.txt").read_text().split() == [".", ".."]


def test_a_build_inherits_no_open_descriptor_of_the_worker(tmp_path):
    with open(tmp_path / "held-open-by-the-worker", "w"):
        ctx, failure = attempt(tmp_path, ["ls /proc/self/fd > fds.txt"])
    assert failure is None
    # 0-2 and the one ls itself opened to list the folder.
    assert (ctx.workspace / "fds.txt").read_text().split() == ["0", "1", "2", "3"]


def test_a_build_reads_only_its_own_secret_never_another_pipelines(tmp_path, settings):
    secrets = Path(settings.CONVEYOR_SECRETS_DIR)
    (secrets / "shop").mkdir(parents=True)
    (secrets / "shop" / "token").write_text("mine-1234\n")
    (secrets / "bank").mkdir()
    (secrets / "bank" / "password").write_text("theirs-5678\n")
    ctx, failure = attempt(tmp_path, [
        'test "$TOKEN" = mine-1234',
        f"cat {secrets}/bank/password || ls {secrets}"],
        environmentVariables=[{"name": "TOKEN", "type": "SECRETS_MANAGER",
                               "value": "shop/token"}])
    assert failure is not None and failure.startswith("Command 2 of 2 failed")
    log = log_text(ctx)
    assert "theirs-5678" not in log and "No such file or directory" in log


# --- the server's processes ----------------------------------------------------------


def test_a_build_sees_only_its_own_processes_and_cannot_signal_the_worker(tmp_path):
    ctx, failure = attempt(tmp_path, [
        "ls /proc | grep -E '^[0-9]+$' | wc -l > count.txt",
        f"kill -0 {os.getpid()} 2> kill.txt; echo $? >> kill.txt"])
    assert failure is None
    # bwrap's init, bash, and the pipeline's ls, grep and wc (the machine has hundreds)
    assert int((ctx.workspace / "count.txt").read_text()) <= 5
    assert (ctx.workspace / "kill.txt").read_text().strip().endswith("1")
    assert "No such process" in (ctx.workspace / "kill.txt").read_text()


def test_without_the_sandbox_a_build_can_signal_the_worker(tmp_path, settings):
    settings.CONVEYOR_SANDBOX = "none"
    ctx, failure = attempt(tmp_path, [f"kill -0 {os.getpid()}"])
    assert failure is None


def test_a_daemon_started_by_a_build_ends_with_its_command(tmp_path):
    marker = "4242.5"
    ctx, failure = attempt(tmp_path, [
        # (the daemon has had time to leave the process group when "started" is printed)
        f"setsid nohup sleep {marker} > /dev/null 2>&1 < /dev/null & "
        "sleep 0.5; pgrep -f 'sleep 4242' > /dev/null && echo started"])
    assert failure is None and "started" in log_text(ctx)
    deadline = time.monotonic() + 3
    while host_processes("sleep", marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes("sleep", marker) == []


def test_without_the_sandbox_a_setsid_daemon_outlives_its_action(tmp_path, settings):
    settings.CONVEYOR_SANDBOX = "none"
    marker = "4242.25"
    try:
        _, failure = attempt(tmp_path, [
            f"setsid nohup sleep {marker} > /dev/null 2>&1 < /dev/null & sleep 0.5"])
        assert failure is None
        time.sleep(0.2)
        assert host_processes("sleep", marker) != []
    finally:
        for pid in host_processes("sleep", marker):
            os.kill(pid, 9)


def test_stopping_an_action_ends_every_process_of_its_sandbox(tmp_path):
    marker = "4242.75"
    ctx = make_ctx(tmp_path, shell([f"setsid sleep {marker} & sleep {marker}"]))
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("e", _run_catching(ctx)),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while len(host_processes("sleep", marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(host_processes("sleep", marker)) == 2
    ctx.request_stop("abandoned")
    runner.cancel(ctx)
    thread.join(10)
    assert outcome["e"] == "Stopped: abandoned"
    deadline = time.monotonic() + 3
    while host_processes("sleep", marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes("sleep", marker) == []


def _run_catching(ctx) -> str:
    try:
        runner.run(ctx)
        return ""
    except ActionFailed as failed:
        return failed.summary


# --- approvals -------------------------------------------------------------------


@pytest.fixture
def conveyor_http():
    """Conveyor's own WSGI application on 127.0.0.1, in a thread of this test (not
    pytest-django's live_server: that makes the test transactional)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_build_cannot_approve_the_approval_waiting_beside_it(driver, settings, conveyor_http,
                                                                tmp_path):
    """A Test action runs while the production approval of its own execution is pending
    (same stage, same runOrder); it tries every route it could reach."""
    database = database_file(tmp_path)
    key = Path(settings.VAR_DIR) / "secret_key"
    doc = definition("approve-myself", stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Release", [
            action("Approve", "Approval", "Manual"),
            shell([
                # the database file
                f"python3 -c \"import sqlite3; c = sqlite3.connect('file:{database}?mode=rw', "
                "uri=True); c.execute(\\\"update approvals_approvalrequest set status="
                "'Approved'\\\"); c.commit()\" || true",
                # the secret key that signs approval links and sessions
                f"cat {key} || true",
                # the API and the AWS endpoint, with whatever credentials the build has
                f"python3 -c \"import urllib.request as u, json; [print(e) for e in "
                f"[u.urlopen(u.Request('{conveyor_http}/api/approvals/', "
                f"headers={{'Accept': 'application/json'}})).status]]\" || true",
                f"python3 - <<'EOF' || true\n"
                "import json, urllib.request as u, urllib.error as e\n"
                "for path in ('/api/approvals/', '/aws/'):\n"
                "    try:\n"
                f"        r = u.urlopen(u.Request('{conveyor_http}' + path, data=b'{{}}',\n"
                "            headers={'Content-Type': 'application/json'}))\n"
                "        print(path, r.status)\n"
                "    except e.HTTPError as err:\n"
                "        print(path, 'refused', err.code)\n"
                "EOF",
                "env | grep -i -E 'token|secret|key|database' || echo 'no credentials'",
            ], "Test"),
        ]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    request = ApprovalRequest.objects.get(execution=execution)
    assert request.status == "Pending"
    build = ActionExecution.objects.get(execution=execution, action_name="Run")
    assert build.status == "Succeeded", build.summary
    log = logfile.text(Path(settings.LOG_ROOT) / build.log_path)
    assert "unable to open database file" in log
    assert "No such file or directory" in log  # the key
    assert "/api/approvals/ refused 40" in log and "/aws/ refused 40" in log
    assert "no credentials" in log


# --- limits ----------------------------------------------------------------------


@pytest.mark.parametrize("config, commands, named", [
    ({"LimitMemoryMiB": "64"},
     ["python3 -c \"a = []\nwhile True: a.append(bytearray(1 << 20))\""],
     'the memory limit (64 MiB per process) was reached (the output says "MemoryError")'),
    ({"LimitProcesses": "16"},
     ["python3 -c \"import os, time\nfor _ in range(64):\n"
      "    if os.fork() == 0: time.sleep(2); os._exit(0)\""],
     "the process limit (16 processes) was reached (the output says \"BlockingIOError: "
     "[Errno 11]\")"),
    ({"LimitCpuSeconds": "1"}, ["while :; do :; done"],
     "the CPU time limit (1 s per process) was exceeded (SIGXCPU)"),
    ({"LimitFileSizeMiB": "1"}, ["head -c 2000000 /dev/zero > big"],
     "the file size limit (1 MiB) was exceeded (SIGXFSZ)"),
    ({"LimitOpenFiles": "256"},
     ["python3 -c \"files = [open('/dev/null') for _ in range(300)]\""],
     'the open files limit (256 per process) was reached (the output says "Too many open '
     'files")'),
])
def test_exceeding_a_limit_fails_the_action_naming_the_limit(tmp_path, config, commands, named):
    ctx, failure = attempt(tmp_path, commands, configuration=config)
    assert failure is not None and failure.endswith(f"({named})"), failure
    assert f"Limit: {named}" in log_text(ctx)


def test_a_fork_bomb_is_contained_and_leaves_nothing_behind(tmp_path):
    _, failure = attempt(tmp_path, ["bomb4242() { bomb4242 | bomb4242 & }; bomb4242; exit 3"],
                         configuration={"LimitProcesses": "64"})
    assert failure is not None and "exit code 3" in failure
    deadline = time.monotonic() + 3
    while host_processes("bash", "bomb4242") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host_processes("bash", "bomb4242") == []


def test_compute_types_map_to_limits_and_actions_ask_within_the_ceilings(settings):
    small = sandbox.compute_type_limits("BUILD_GENERAL1_SMALL")
    assert (small.memory_mib, small.file_size_mib) == (3072, 65536)
    assert small.processes == settings.CONVEYOR_SANDBOX_LIMITS["processes"]
    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [shell(["true"], configuration={
            "LimitMemoryMiB": "999999999", "LimitProcesses": "ten", "Network": "off",
            "LimitOpenFiles": "32",
            "ComputeType": "BUILD_GENERAL9_HUGE"})]),
    ])
    found = [str(p) for p in validate_document(doc)]
    top = settings.CONVEYOR_SANDBOX_MAX_LIMITS["memory_mib"]
    assert ("stages[1].actions[0].configuration.LimitMemoryMiB: 999999999 is above the most "
            f"this server allows ({top})") in found
    assert ('stages[1].actions[0].configuration.LimitProcesses: "ten" is not a whole number '
            "above 0") in found
    assert ("stages[1].actions[0].configuration.LimitOpenFiles: 32 is below the least a shell "
            "needs (256)") in found
    assert ('stages[1].actions[0].configuration.Network: "off" is not a network setting: use '
            '"host" (the default) or "none"') in found
    assert any(p.startswith('stages[1].actions[0].configuration.ComputeType: '
                            '"BUILD_GENERAL9_HUGE" is not a compute type') for p in found)


# --- network ---------------------------------------------------------------------


@pytest.fixture
def registry():
    """A local HTTP server on 127.0.0.1 standing in for a package registry."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"package-contents\n")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pkg"
    server.shutdown()
    server.server_close()


FETCH = ("python3 -c \"import urllib.request, sys; "
         "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())\" {url}")


def test_a_build_fetches_from_the_network_by_default(tmp_path, registry):
    ctx, failure = attempt(tmp_path, [FETCH.format(url=registry) + " > pkg.txt"])
    assert failure is None
    assert (ctx.workspace / "pkg.txt").read_text() == "package-contents\n"


def test_network_none_gives_a_build_no_network_at_all(tmp_path, registry):
    ctx, failure = attempt(tmp_path, [FETCH.format(url=registry)],
                           configuration={"Network": "none"})
    assert failure is not None
    assert "Connection refused" in log_text(ctx)


# --- an ordinary build still works ---------------------------------------------------


def test_an_ordinary_build_works_in_the_sandbox(driver, settings):
    xml = '<testsuite><testcase name="a"/><testcase name="b"/></testsuite>'
    doc = definition("ordinary", stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}],
                           configuration={"OutputContent": "v1"}),
                    action("T", "Source", "Simulate", outputArtifacts=[{"name": "Tools"}],
                           configuration={"OutputContent": "tools"})]),
        ("Build", [shell([
            "cat Src.txt > /tmp/from-command-1",
            "cp /tmp/from-command-1 built.txt",
            'cat "$CONVEYOR_INPUT_Tools/Tools.txt" >> built.txt',
            f"mkdir -p reports && echo '{xml}' > reports/junit.xml",
            'echo "Version=$(cat Src.txt)" >> "$CONVEYOR_OUTPUT"',
            "for i in 1 2 3; do echo line-$i; done"],
            "Test", inputArtifacts=[{"name": "Src"}, {"name": "Tools"}],
            outputArtifacts=[{"name": "Out", "files": ["built.txt"]}],
            configuration={"Reports": "reports/*.xml"})]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    build = ActionExecution.objects.get(execution=execution, action_name="Run")
    assert build.status == "Succeeded", build.summary
    assert build.summary == "Tests: 2 passed, 0 failed, 0 skipped (6 commands succeeded)"
    assert build.output_variables["Version"] == "v1"
    log = logfile.text(Path(settings.LOG_ROOT) / build.log_path)
    assert "line-3" in log and "Warning" not in log
    assert "Output artifact Out: 1 file(s)" in log


# --- modes -----------------------------------------------------------------------


def test_required_refuses_to_run_a_command_when_bubblewrap_does_not_work(tmp_path, settings):
    settings.CONVEYOR_SANDBOX = "required"
    settings.CONVEYOR_SANDBOX_BWRAP = str(tmp_path / "no-bwrap-here")
    ctx, failure = attempt(tmp_path, ["touch ran"])
    assert failure == (f"Not run: CONVEYOR_SANDBOX=required and bubblewrap "
                       f"({tmp_path / 'no-bwrap-here'}) is not installed: install the Debian "
                       "package bubblewrap")
    assert not (ctx.workspace / "ran").exists()


def test_auto_runs_unsandboxed_when_bubblewrap_does_not_work_and_says_so_everywhere(
        tmp_path, settings, owner, viewer):
    settings.CONVEYOR_SANDBOX_BWRAP = str(tmp_path / "no-bwrap-here")
    ctx, failure = attempt(tmp_path, ["touch ran", "true"])
    assert failure is None and (ctx.workspace / "ran").exists()
    assert log_text(ctx).count("Warning: Build commands run without a sandbox: bubblewrap") == 1
    assert Client().get("/healthz").json()["sandbox"] == "unavailable"
    staff = Client()
    staff.force_login(owner)
    assert b'data-test="sandbox-warning"' in staff.get("/").content
    other = Client()
    other.force_login(viewer)
    assert b'data-test="sandbox-warning"' not in other.get("/").content


def test_none_is_shown_to_staff_and_in_healthz(settings, owner):
    settings.CONVEYOR_SANDBOX = "none"
    assert Client().get("/healthz").json()["sandbox"] == "off"
    staff = Client()
    staff.force_login(owner)
    page = staff.get("/").content.decode()
    assert "Build commands run without a sandbox (CONVEYOR_SANDBOX=none)" in page
    settings.CONVEYOR_SANDBOX = "auto"
    assert 'data-test="sandbox-warning"' not in staff.get("/").content.decode()


def test_a_bad_sandbox_mode_stops_the_server_at_start_naming_the_setting(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings",
             "CONVEYOR_SANDBOX": "maybe", "CONVEYOR_VAR_DIR": str(tmp_path)},
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    assert done.returncode != 0
    assert 'CONVEYOR_SANDBOX="maybe": use "auto", "required" or "none"' in done.stderr
