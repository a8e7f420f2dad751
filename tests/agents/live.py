"""A real Conveyor (daphne + qcluster on the test database) and real agents beside it.

The server runs as ``manage.py serve`` runs it, each part its own process, on
pytest-django's test database (PostgreSQL with ``DATABASE_URL``, else a SQLite file
every process opens). An agent is ``python -m agents.agent`` started with an EMPTY
environment but PATH and HOME, in a folder of its own: it knows the server only by
its URL and its key file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.live_server import stop_process


class AgentProcess:
    """``python -m agents.agent`` with nothing of the server's environment."""

    def __init__(self, root: Path, url: str, key: str, *, name: str, labels: str):
        self.root = root
        self.name = name
        (root / "home").mkdir(parents=True, exist_ok=True)
        self.key_file = root / "agent.key"
        self.key_file.write_text(key + "\n")
        self.key_file.chmod(0o600)
        self.work_dir = root / "work"
        self.log_path = root / "agent.log"
        self.cmd = [sys.executable, "-m", "agents.agent", "--url", url, "--key-file",
                    str(self.key_file), "--labels", labels, "--work-dir", str(self.work_dir),
                    "--name", name]
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "HOME": str(root / "home")}
        self.proc: subprocess.Popen | None = None

    def start(self, *extra: str) -> AgentProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115
        # cwd is the agent's own folder: nothing of the project is found from there
        # but the installed package itself.
        self.proc = subprocess.Popen([*self.cmd, *extra], cwd=self.root, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def kill(self) -> None:
        stop_process(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGTERM, grace=5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
