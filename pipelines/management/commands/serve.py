"""Serve Conveyor: the ASGI web server (daphne) and the django-q2 cluster together.

Both run as child processes of this command; when either ends, or this command
is interrupted (Ctrl-C, SIGTERM), both are stopped, so one command starts and
stops the whole embedded installation.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server (daphne) and the workers (django-q2 qcluster) together."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--no-workers", action="store_true",
                            help="serve the web site only (workers run elsewhere)")

    def handle(self, *args, host, port, no_workers, **options):
        manage = str(settings.BASE_DIR / "manage.py")
        # X-Forwarded-For is believed only behind a proxy that sets it (CONVEYOR_PROXY_HEADERS):
        # without one, a client would choose the address the sign-in lock-out counts.
        proxied = os.environ.get("CONVEYOR_PROXY_HEADERS", "").lower() in ("1", "true", "yes")
        commands = {
            "web": [sys.executable, "-m", "daphne", "-b", host, "-p", str(port),
                    *(["--proxy-headers"] if proxied else []), "config.asgi:application"],
        }
        if not no_workers:
            commands["workers"] = [sys.executable, manage, "qcluster"]
        children: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        for name, cmd in commands.items():
            children[name] = subprocess.Popen(cmd, cwd=settings.BASE_DIR)
        self.stdout.write(f"Conveyor is serving http://{host}:{port}/ "
                          f"({', '.join(children)}); Ctrl-C stops everything.")
        code = 0
        try:
            while not stopping:
                for name, proc in children.items():
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with status {proc.returncode}; "
                                          "stopping the rest.")
                        code = proc.returncode or 1
                        stopping = True
                        break
                time.sleep(0.2)
        finally:
            for proc in children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 15
            for proc in children.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        sys.exit(code)
