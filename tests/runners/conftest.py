"""Fixtures of the runner tests: real git repositories, run contexts and a driver.

Runners are tested two ways: called directly with a ``RunContext`` built here
(real subprocesses, real directories, no database), and end to end through the
engine with the ``driver`` (the real worker code; only the django-q2 queue is
replaced, the edge the tests hold).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from executions import tasks
from runners import logfile
from runners.base import LogWriter, RunContext
from tests.executions.conftest import Driver


class GitRepo:
    """A real git repository in a temporary folder, committed to with real git."""

    def __init__(self, path: Path, branch: str = "main"):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)
        self.git("config", "user.name", "Ada Lovelace")
        self.git("config", "user.email", "ada@example.com")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str, env: dict | None = None) -> str:
        return subprocess.run(
            ["git", *args], cwd=self.path, check=True, capture_output=True, text=True,
            env={**os.environ, **(env or {})},
        ).stdout.strip()

    def commit(self, files: dict[str, str] | None = None, message: str = "A change",
               author: str | None = None, remove: list[str] | None = None) -> str:
        for name, content in (files or {}).items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", "--", name)
        for name in remove or []:
            self.git("rm", "-q", "--", name)
        args = ["commit", "-q", "--allow-empty", "-m", message]
        if author:
            args += ["--author", author]
        self.git(*args)
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)


@pytest.fixture
def repo(tmp_path) -> GitRepo:
    """A repository on branch main with one commit holding README.md and app/main.py."""
    r = GitRepo(tmp_path / "repo")
    r.commit({"README.md": "# demo\n", "app/main.py": "print('hello')\n"}, "First commit")
    return r


def make_ctx(tmp_path: Path, action: dict, *, category: str | None = None,
             provider: str | None = None, inputs: dict[str, Path] | None = None,
             variables: dict[str, str] | None = None, deadline=None,
             source_override: dict | None = None) -> RunContext:
    """A RunContext as the worker builds it, with a fresh workspace and output dirs."""
    base = tmp_path / f"ctx-{uuid.uuid4().hex[:8]}"
    workspace = base / "workspace"
    workspace.mkdir(parents=True)
    outputs = {}
    for item in action.get("outputArtifacts", []):
        outputs[item["name"]] = base / "outputs" / item["name"]
        outputs[item["name"]].mkdir(parents=True)
    type_id = action.get("actionTypeId", {})
    return RunContext(
        pipeline_name="demo", pipeline_execution_id=str(uuid.uuid4()), execution_number=1,
        pipeline_version=1, stage_name="Stage", action_name=action.get("name", "Action"),
        action_execution_id=str(uuid.uuid4()), attempt=1,
        category=category or type_id.get("category", "Build"),
        provider=provider or type_id.get("provider", "Shell"), action=action,
        variables=variables or {}, input_dirs=inputs or {}, output_dirs=outputs,
        workspace=workspace, log=LogWriter(base / "action.log"), deadline=deadline,
        source_override=source_override,
    )


def log_text(ctx: RunContext) -> str:
    ctx.log.close()
    return logfile.text(ctx.log.path)


def live_members(pgid: int, wait: float = 2.0) -> list[int]:
    """Processes of group ``pgid`` still alive (zombies waiting for a reaper are dead)."""
    deadline = time.monotonic() + wait
    while True:
        alive = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                alive.append(int(stat.parent.name))
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


@pytest.fixture
def driver(db, monkeypatch, django_capture_on_commit_callbacks):
    d = Driver(django_capture_on_commit_callbacks)
    monkeypatch.setattr(tasks, "enqueue", d.pending.append)
    return d


@pytest.fixture(autouse=True)
def _quiet_heartbeat(settings):
    """Inside a test transaction another thread's write would wait for the test's own
    lock: keep heartbeats off the database (deadlines are still enforced)."""
    settings.CONVEYOR_HEARTBEAT_SECONDS = 3600
    settings.CONVEYOR_LEASE_SECONDS = 3 * 3600
    settings.CONVEYOR_RECORD_PROCESS_AFTER = 3600


@pytest.fixture(autouse=True)
def _invoke_targets_allowed(settings):
    """The Python invoke runner calls only modules the operator allows: the tests' targets."""
    settings.CONVEYOR_INVOKE_MODULES = ["tests.runners"]


@pytest.fixture
def unsandboxed(settings):
    """Run a test's commands without the sandbox (CONVEYOR_SANDBOX=none).

    For tests written before the sandbox that put stand-in tools or pid files on the
    machine outside the action's workspace, or read host paths the sandbox replaces
    (HOME, pids): the sandbox hides them. To be adapted to the sandbox (issue 15).
    """
    settings.CONVEYOR_SANDBOX = "none"
