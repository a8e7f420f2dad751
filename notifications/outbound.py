"""The one way notifications (and commit statuses) reach another server over HTTP.

Every outbound request of this app goes through ``http_request``, so that a
policy on outbound HTTP (e.g. refusing private addresses) can be applied in one place.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass


@dataclass
class Answer:
    """What the other server said: ``status`` None when there was no HTTP answer."""

    status: int | None
    text: str

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        return (f"HTTP {self.status}: {self.text}" if self.status is not None
                else self.text)[:1000]


def http_request(url: str, *, data: bytes | None, headers: dict[str, str],
                 timeout: float, method: str = "POST") -> Answer:
    """Send one request; never raises for the other side's failures (they are answers)."""
    if not url.startswith(("http://", "https://")):
        return Answer(None, f"refused: {url!r} is not an http(s) URL")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Answer(response.status, response.read(500).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(500).decode("utf-8", "replace"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(None, f"no answer: {reason}")
