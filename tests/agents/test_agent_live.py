"""The agent in a separate process, with its own folders and none of the server's
environment, against a live Conveyor (daphne + qcluster): it runs a pipeline's Build
(log streamed while it runs, artifacts and variables handed to the next action), is
killed mid-action (the action fails within the lease), rides out a server restart,
is refused with a revoked key, and stops on SIGTERM (at once when idle; mid-job it
reports the action failed first); a stopping server ends the agents' held polls.

Needs a database the server's processes can open: PostgreSQL (``DATABASE_URL``) or a
file-based SQLite test database (``CONVEYOR_TEST_SQLITE=/path``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.conf import settings
from django.db import connection

from agents import services
from agents.models import Agent
from config.api_auth import token_create
from executions import services as execution_services
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution, Artifact, PipelineExecution
from pipelines.services import pipeline_save
from tests.agents.live import AgentProcess
from tests.factories import action, definition
from tests.live_server import BASE_DIR, Server

LEASE = 6.0


def _shared_database() -> bool:
    if connection.vendor != "sqlite":
        return True
    name = str(connection.settings_dict.get("TEST", {}).get("NAME") or "")
    return bool(name) and name != ":memory:" and "mode=memory" not in name


pytestmark = [
    pytest.mark.skipif(
        "not _shared_database()", reason="the server's processes need a shared database: "
        "set DATABASE_URL or CONVEYOR_TEST_SQLITE=/tmp/conveyor_agent_test.sqlite3"),
    # The tests write straight to the shared database (no test transaction): flushed
    # after each, and restored before each from the migrations' snapshot, as the suite's
    # other transactional tests are. A plain transactional flush re-creates the content
    # types under new ids, which a later serialized_rollback test's restore clashes with
    # (pytest -n runs tests in varying orders). Also what makes pytest-django create the
    # test database when this module runs alone.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(scope="module")
def conveyor(django_db_setup, django_db_blocker, tmp_path_factory):
    """A live server on the test database, for the module (tests make unique pipelines)."""
    var = tmp_path_factory.mktemp("conveyor-server")
    env = dict(os.environ)
    env.update({"SECRET_KEY": settings.SECRET_KEY, "CONVEYOR_VAR_DIR": str(var),
                "CONVEYOR_WORKERS": "1", "CONVEYOR_LEASE_SECONDS": str(LEASE),
                "CONVEYOR_HEARTBEAT_SECONDS": "1", "DJANGO_SETTINGS_MODULE": "config.settings",
                "LOG_LEVEL": "WARNING"})
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite" and ("mode=memory" in str(name) or name == ":memory:"):
        # The database set up after all (the skip mark above may be read before it is).
        pytest.skip("the server's processes need a shared database: set DATABASE_URL or "
                    "CONVEYOR_TEST_SQLITE=/tmp/conveyor_agent_test.sqlite3")
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{name}"
    else:
        # The test database file of this test process (pytest -n suffixes its name), not
        # the server's own var/conveyor.sqlite3.
        env["DATABASE_URL"] = f"sqlite:///{name}"
    # A queue of this module's own: another test process's server (pytest -n) must not
    # take this one's actions, nor this one theirs (CONVEYOR_QUEUE_NAME).
    from django_q.conf import Conf

    queue = f"conveyor-agent-test-{os.getpid()}"
    env["CONVEYOR_QUEUE_NAME"] = queue
    before = Conf.CLUSTER_NAME, Conf.PREFIX
    Conf.CLUSTER_NAME = Conf.PREFIX = queue
    server = Server(env, var)
    server.var = var
    try:
        server.start_worker()
        server.start_web()
        yield server
    finally:
        server.stop()
        Conf.CLUSTER_NAME, Conf.PREFIX = before
        # What the server's processes wrote after the last test's flush goes, and the
        # database is left as the migrations made it (the snapshot a serialized_rollback
        # test restores, same ids): a later test of any kind finds its content types,
        # permissions and role groups (pytest -n runs tests in varying orders). Left
        # behind, the role groups that saving a pipeline made clashed with a later
        # restore; left empty, a later plain test found no permission (both seen).
        from django.core.management import call_command

        with django_db_blocker.unblock():
            # As a transactional test flushes: the sequences go on from where they were
            # (reset, the next row would take an id the snapshot restores).
            call_command("flush", interactive=False, verbosity=0, inhibit_post_migrate=True,
                         reset_sequences=False)
            snapshot = getattr(connection, "_test_serialized_contents", None)
            if snapshot:
                connection.creation.deserialize_db_from_string(snapshot)


@pytest.fixture
def agent_key(conveyor):
    _, key = services.agent_key_create(name="test farm")
    return key


@pytest.fixture
def start_agent(conveyor, tmp_path, agent_key):
    started = []

    def start(labels="linux,x64", key=None, name=None) -> AgentProcess:
        agent = AgentProcess(tmp_path / f"agent-{len(started)}", conveyor.url, key or agent_key,
                             name=name or "a" + uuid.uuid4().hex[:8], labels=labels)
        started.append(agent.start())
        return agent

    yield start
    # Killed: the test is over (a stop is tested below).
    for agent in started:
        agent.kill()


def wait_for(predicate, timeout: float, what: str, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {timeout} s: {what}")


def pipeline(build_commands: list[str], *, run_on="linux", deploy_commands=("true",)):
    name = "p" + uuid.uuid4().hex[:8]
    doc = definition(name, stages=[
        ("Source", [action("Checkout", "Source", "Simulate", configuration={},
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", "Build", "Shell", commands=list(build_commands),
                          configuration={"RunOn": run_on}, inputArtifacts=[{"name": "Src"}],
                          outputArtifacts=[{"name": "BuildOut"}],
                          namespace="BuildVariables")]),
        ("Deploy", [action("Release", "Deploy", "Shell", commands=list(deploy_commands),
                           inputArtifacts=[{"name": "BuildOut"}])]),
    ])
    return pipeline_save(document=doc).pipeline


def action_of(ex, stage: str) -> ActionExecution | None:
    return ActionExecution.objects.filter(execution=ex, stage_name=stage).order_by("-id").first()


def api_log(conveyor, token: str, ae: ActionExecution) -> dict:
    req = urllib.request.Request(
        f"{conveyor.url}/api/action-executions/{ae.action_execution_id}/log/?offset=0",
        headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(req, timeout=5) as answer:
        return json.loads(answer.read())


@pytest.fixture
def token(conveyor):
    from django.contrib.auth.models import User

    user = User.objects.create_superuser("root" + uuid.uuid4().hex[:6], "r@example.com", "pw")
    return token_create(user=user)[1]


def test_agent_runs_a_build_streaming_its_log_and_hands_artifacts_and_variables_on(
        conveyor, start_agent, token):
    agent = start_agent(labels="linux,x64")

    p = pipeline([
        # The agent's sandbox: neither its key nor the server's code is visible.
        f"test ! -e {agent.key_file}", f"test ! -e {BASE_DIR / 'manage.py'}",
        "echo first-line-from-agent",
        "sleep 3",
        "mkdir -p out && echo built-by-agent > out/build.txt",
        'echo "Version=1.2.3" >> "$CONVEYOR_OUTPUT"',
        "echo last-line-from-agent",
    ], deploy_commands=["test \"$(cat out/build.txt)\" = built-by-agent",
                        "echo deployed version #{BuildVariables.Version}"])
    ex = execution_services.execution_start(pipeline=p)
    build = wait_for(lambda: (a := action_of(ex, "Build")) and a.worker and a, 30,
                     "the Build claimed by the agent")
    assert build.worker == f"agent:{agent.name}"
    # The first line reaches the server (and the log API) while the action still runs.
    seen = wait_for(lambda: "first-line-from-agent" in (log := api_log(conveyor, token, build))
                    ["text"] and log, 10, "the first line in the log API")
    assert seen["status"] == A.IN_PROGRESS and not seen["complete"]
    assert "last-line-from-agent" not in seen["text"]
    build.refresh_from_db()
    assert build.status == A.IN_PROGRESS
    row = Agent.objects.get(name=agent.name)
    assert row.action_execution_id == build.pk and row.labels == ["linux", "x64"]

    wait_for(lambda: PipelineExecution.objects.get(pk=ex.pk).status in ("Succeeded", "Failed"),
             60, "the execution ends")
    ex.refresh_from_db()
    build.refresh_from_db()
    deploy = action_of(ex, "Deploy")
    assert ex.status == "Succeeded", (build.summary, deploy and deploy.summary,
                                      agent.output()[-2000:])
    assert build.status == A.SUCCEEDED and build.output_variables == {"Version": "1.2.3"}
    assert Artifact.objects.filter(produced_by=build, name="BuildOut").exists()
    log = api_log(conveyor, token, build)["text"]
    assert "last-line-from-agent" in log and f"Agent {agent.name}" in log
    assert deploy.worker and not deploy.worker.startswith("agent:")   # a worker ran it
    assert "deployed version 1.2.3" in api_log(conveyor, token, deploy)["text"]


def test_an_agent_killed_mid_action_fails_it_within_the_lease(conveyor, start_agent, token):
    agent = start_agent(labels="linux")
    marker = f"sleep 117.{uuid.uuid4().int % 1000:03d}"
    p = pipeline(["echo started-long-build", marker])
    ex = execution_services.execution_start(pipeline=p)
    build = wait_for(lambda: (a := action_of(ex, "Build")) and a.worker and a, 30,
                     "the Build claimed")
    wait_for(lambda: "started-long-build" in api_log(conveyor, token, build)["text"], 10,
             "the build running")
    agent.kill()
    killed = time.monotonic()
    wait_for(lambda: ActionExecution.objects.get(pk=build.pk).status != A.IN_PROGRESS,
             LEASE * 2.5, "the action ends after its agent died")
    took = time.monotonic() - killed
    build.refresh_from_db()
    assert build.status == A.FAILED and "Worker lost" in build.summary
    assert f"agent:{agent.name}" in build.summary
    # Within the lease and the quarter-lease sweep of the web process (docs/deploy.md).
    assert took <= LEASE * 1.25 + 1.5, took
    ex.refresh_from_db()
    wait_for(lambda: PipelineExecution.objects.get(pk=ex.pk).status == "Failed", 10,
             "the execution fails")
    # The agent's sandboxed commands died with it (bubblewrap --die-with-parent).
    time.sleep(0.5)
    alive = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).endswith(marker)]
    assert alive == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@pytest.fixture
def long_lease(conveyor):
    """The web process renews leases of 30 s here: its restart under a loaded machine
    takes longer than the module's 6 s lease (an outage longer than the lease fails the
    action by design: docs/deploy.md, lease policy). These restarts only change the
    setting: the web process is killed (quicker still); the restart under test is the
    test's own."""
    conveyor.env["CONVEYOR_LEASE_SECONDS"] = "30"
    conveyor.stop_web(signal.SIGKILL)
    conveyor.start_web()
    yield
    conveyor.env["CONVEYOR_LEASE_SECONDS"] = str(LEASE)
    conveyor.stop_web(signal.SIGKILL)
    conveyor.start_web()


def test_an_agent_rides_out_a_server_restart(conveyor, long_lease, start_agent, token):
    start_agent(labels="linux")
    p = pipeline(["echo before-restart", "sleep 4", "echo after-restart"])
    ex = execution_services.execution_start(pipeline=p)
    build = wait_for(lambda: (a := action_of(ex, "Build")) and a.worker and a, 30,
                     "the Build claimed")
    wait_for(lambda: "before-restart" in api_log(conveyor, token, build)["text"], 10,
             "the build running")
    conveyor.stop_web()
    time.sleep(1.5)
    conveyor.start_web()
    wait_for(lambda: PipelineExecution.objects.get(pk=ex.pk).status in ("Succeeded", "Failed"),
             60, "the execution ends")
    build.refresh_from_db()
    assert build.status == A.SUCCEEDED, build.summary
    log = api_log(conveyor, token, build)["text"]
    assert "before-restart" in log and "after-restart" in log
    # Nothing sent twice: the command line ("$ echo …") and its output, once each.
    assert [line.split(" ", 1)[1] for line in log.splitlines() if "before-restart" in line] \
        == ["$ echo before-restart", "before-restart"]


def test_a_revoked_key_ends_the_held_poll_and_the_agent(conveyor, start_agent):
    key_row, key = services.agent_key_create(name="short-lived")
    agent = start_agent(labels="linux", key=key)
    held_poll(agent)
    services.agent_key_revoke(key=key_row)
    # Well before the held poll's 25 s: the doorbell answered it with the refusal (the
    # bench measures how soon: bench/agent_latency.py).
    code = wait_for(lambda: agent.proc.poll(), 10, "the agent stops", step=0.1)
    assert code == 3
    assert "refused this agent's key" in agent.output()
    req = urllib.request.Request(f"{conveyor.url}/aws/", method="POST", data=json.dumps(
        {"conveyorAgent": {"name": agent.name}}).encode(), headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "CodePipeline_20150709.PollForJobs"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(req, timeout=5)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["__type"] == "UnrecognizedClientException"


def _processes(needle: str) -> list[int]:
    """The pids whose command line holds ``needle`` (sandboxed ones included)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle.encode() in f.read().replace(b"\0", b" "):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def running_build(agent) -> tuple[PipelineExecution, ActionExecution, str]:
    """An execution whose Build runs a long command on ``agent``: the execution, the
    Build and the command line (of this test only)."""
    pause = f"sleep 47.{uuid.uuid4().int % 10**6:06d}"
    ex = execution_services.execution_start(pipeline=pipeline([pause, "echo not-reached"]))
    build = wait_for(lambda: (a := action_of(ex, "Build")) and a.worker and a, 30,
                     "the Build claimed by the agent")
    assert build.worker == f"agent:{agent.name}"
    wait_for(lambda: _processes(pause), 20, "the build's command runs")
    return ex, build, pause


def held_poll(agent) -> None:
    """Until ``agent``'s poll is held (for 25 s, unless the doorbell answers it)."""
    wait_for(lambda: Agent.objects.filter(name=agent.name, last_seen_at__isnull=False).exists(),
             20, "the agent's first poll")
    time.sleep(0.5)


def test_revoking_a_key_mid_job_kills_the_job_and_fails_its_action_naming_the_key(
        conveyor, start_agent):
    key_row, key = services.agent_key_create(name="revoked-mid-job")
    agent = start_agent(labels="linux", key=key)
    ex, build, pause = running_build(agent)
    services.agent_key_revoke(key=key_row)
    build.refresh_from_db()   # failed by the revocation itself, naming the key
    assert build.status == A.FAILED
    assert f'agent key "revoked-mid-job" ({key_row.prefix}…) was revoked' in build.summary
    code = wait_for(lambda: agent.proc.poll(), 20, "the agent stops", step=0.1)
    assert code == 3, agent.output()[-2000:]
    output = agent.output()
    assert "refused this agent's key" in output and "was stopped" in output
    assert not _processes(pause)    # the job's commands were killed before the agent exited
    wait_for(lambda: PipelineExecution.objects.get(pk=ex.pk).status == "Failed", 10,
             "the execution fails")


BUILDSPEC = """version: 0.2
env:
  exported-variables: [IMAGE_TAG]
phases:
  build:
    commands:
      - echo codebuild-on-agent build $CODEBUILD_BUILD_NUMBER
      - export IMAGE_TAG=tag-42
      - mkdir -p dist && echo from-codebuild > dist/app.txt
artifacts:
  files: ['dist/**/*']
"""


def test_codebuild_and_commands_actions_run_on_the_agent(conveyor, start_agent, token):
    agent = start_agent(labels="linux,x64")
    name = "p" + uuid.uuid4().hex[:8]
    doc = definition(name, stages=[
        ("Source", [action("Checkout", "Source", "Simulate", configuration={},
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [{"name": "Image", "actionTypeId": {"category": "Build", "owner": "AWS",
                                                        "provider": "CodeBuild", "version": "1"},
                    "configuration": {"ProjectName": "no-such-project", "RunOn": "x64",
                                      "BuildspecOverride": BUILDSPEC},
                    "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Img"}],
                    "namespace": "ImageVars"}]),
        ("Check", [{"name": "Inspect", "actionTypeId": {"category": "Compute", "owner": "AWS",
                                                          "provider": "Commands", "version": "1"},
                    "configuration": {"RunOn": "linux"},
                    "commands": ["cat dist/app.txt", "echo tag #{ImageVars.IMAGE_TAG}",
                                 "export CHECKED=yes"],
                    "outputVariables": ["CHECKED"],
                    "inputArtifacts": [{"name": "Img"}]}]),
    ])
    ex = execution_services.execution_start(pipeline=pipeline_save(document=doc).pipeline)
    wait_for(lambda: PipelineExecution.objects.get(pk=ex.pk).status in ("Succeeded", "Failed"),
             90, "the execution ends")
    image, inspect = action_of(ex, "Build"), action_of(ex, "Check")
    assert PipelineExecution.objects.get(pk=ex.pk).status == "Succeeded", (
        image.summary, inspect and inspect.summary, agent.output()[-2000:])
    assert image.worker == inspect.worker == f"agent:{agent.name}"
    assert image.output_variables == {"IMAGE_TAG": "tag-42"}
    assert inspect.output_variables == {"CHECKED": "yes"}
    log = api_log(conveyor, token, inspect)["text"]
    assert "from-codebuild" in log and "tag tag-42" in log
    assert "codebuild-on-agent build" in api_log(conveyor, token, image)["text"]


def test_sigterm_stops_an_idle_agent_at_once(conveyor, start_agent):
    agent = start_agent(labels="linux")
    held_poll(agent)   # nothing is offered to it
    agent.proc.send_signal(signal.SIGTERM)
    # Far within the held poll's 25 s: the agent abandoned it.
    code = _exit_code(agent, 5)
    assert code == 0, agent.output()[-2000:]
    assert f"agent {agent.name} stopped (SIGTERM)" in agent.output()


def _exit_code(agent, timeout: float) -> int:
    try:
        return agent.proc.wait(timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the agent did not exit within {timeout} s") from exc


def test_sigterm_mid_job_kills_the_job_and_reports_its_action_failed(
        conveyor, start_agent):
    agent = start_agent(labels="linux")
    ex, build, pause = running_build(agent)
    agent.proc.send_signal(signal.SIGTERM)
    # The agent reports the failure itself before it exits: the action is failed long
    # before its lease (6 s here) could lapse, with the agent's own reason.
    code = _exit_code(agent, 20)
    assert code == 0, agent.output()[-2000:]
    build.refresh_from_db()
    assert build.status == A.FAILED, (build.summary, agent.output()[-2000:])
    assert "Stopped: the agent was stopped" in build.summary
    assert "Worker lost" not in build.summary
    assert not _processes(pause)   # the job's commands were killed
    assert "not-reached" not in agent.output()
    wait_for(lambda: PipelineExecution.objects.get(pk=ex.pk).status == "Failed", 10,
             "the execution fails")


def test_a_server_stopping_ends_its_held_polls_at_once(conveyor, agent_key):
    name = "held-" + uuid.uuid4().hex[:8]
    answer: list = []

    def hold() -> None:
        """A raw PollForJobs held for 25 s (nothing is offered to its labels)."""
        request = urllib.request.Request(
            conveyor.url + "/aws/", method="POST", data=json.dumps({
                "conveyorAgent": {"name": name, "labels": ["none"]},
                "conveyorWaitSeconds": 25}).encode(),
            headers={"Authorization": f"Bearer {agent_key}",
                     "X-Amz-Target": "CodePipeline_20150709.PollForJobs",
                     "Content-Type": "application/x-amz-json-1.1"})
        try:
            with urllib.request.urlopen(request, timeout=40) as response:
                answer.append((response.status, json.loads(response.read())))
        except Exception as exc:   # cut off by the server's exit: the assertion shows it
            answer.append(exc)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    wait_for(lambda: Agent.objects.filter(name=name, last_seen_at__isnull=False).exists(),
             20, "the poll registered")
    time.sleep(0.5)   # held now
    web = conveyor.web
    try:
        web.send_signal(signal.SIGTERM)
        # Far within the held poll's 25 s: the doorbell answered it as daphne stopped.
        web.wait(10)
    finally:
        conveyor.web = None
        conveyor.start_web()
    thread.join(10)
    # The poll ended with the server, far within its 25 s (daphne cancels what it still
    # holds as it stops, so its client sees the connection close rather than an empty
    # answer; the agent retries). Without the doorbell's close, daphne waited out the
    # held view and ``web.wait(10)`` above timed out.
    assert answer and not thread.is_alive()
