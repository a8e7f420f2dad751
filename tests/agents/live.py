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
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen | None, sig=signal.SIGTERM, grace: float = 10) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Server:
    """daphne and (optionally) a django-q2 cluster on the test database."""

    def __init__(self, env: dict, logs: Path, port: int | None = None):
        self.env, self.logs = env, logs
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(cmd, cwd=BASE_DIR, env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def start_web(self) -> None:
        self.web = self._spawn("web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1",
                                       "-p", str(self.port), "config.asgi:application"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError("daphne exited: see " + str(self.logs / "web.log"))
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not answer within 30 s")

    def stop_web(self) -> None:
        stop_process(self.web)
        self.web = None

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", [sys.executable, "manage.py", "qcluster"])

    def stop(self) -> None:
        stop_process(self.web)
        # django-q2's cluster outlives a SIGTERM to its group by seconds: the session is over.
        stop_process(self.worker, signal.SIGKILL)


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
