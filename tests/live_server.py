"""A real Conveyor for live tests: daphne and a django-q2 cluster, each its own process,
as ``manage.py serve`` runs them, on pytest-django's test database (PostgreSQL with
``DATABASE_URL``, else a SQLite file every process opens). Used by the agents' live
tests and the browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]


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
    """daphne and (optionally) a django-q2 cluster on the test database; ready when
    ``ready_path`` answers."""

    ready_path = "/healthz"

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
                urllib.request.urlopen(self.url + self.ready_path, timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not answer within 30 s")

    def stop_web(self, sig=signal.SIGTERM) -> None:
        stop_process(self.web, sig)
        self.web = None

    def start_worker(self) -> None:
        self.worker = self._spawn("worker", [sys.executable, "manage.py", "qcluster"])

    def stop(self) -> None:
        # The session is over: killed, not stopped (django-q2's cluster outlives a
        # SIGTERM to its group by seconds). A restart within a test (``stop_web``) is
        # still the SIGTERM of a real one; daphne answers the agents' held requests
        # then (agents.doorbell.close_all).
        stop_process(self.web, signal.SIGKILL)
        stop_process(self.worker, signal.SIGKILL)
