"""A local HTTP server on a thread: the edge of the world for Invoke Webhook tests.

It stands for a team's own service receiving Conveyor's jobs. Each test sets
``receiver.answer`` to what the next request gets; requests are recorded.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    answer: tuple[int, dict | str | None, dict] = (202, None, {})
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
            if receiver.delay:
                time.sleep(receiver.delay)
            code, payload, headers = receiver.answer
            data = payload if isinstance(payload, str) else (
                json.dumps(payload) if payload is not None else "")
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data.encode())))
            self.end_headers()
            # Conveyor may have given up waiting (the timeout tests).
            with contextlib.suppress(BrokenPipeError):
                self.wfile.write(data.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/conveyor"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
