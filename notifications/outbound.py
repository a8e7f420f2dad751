"""The one way notifications (and commit statuses) reach another server over HTTP.

Every outbound request of this app goes through ``http_request``, which applies the
server's one outbound policy (``config.outbound``: private addresses refused unless
``CONVEYOR_OUTBOUND_ALLOW`` lists them, redirects not followed).
"""

from __future__ import annotations

from dataclasses import dataclass

from config import outbound


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
    """Send one request through ``config.outbound`` (public addresses only unless the
    operator allows others, no redirects followed); never raises for the other side's
    failures or a refused address (they are answers)."""
    try:
        answer = outbound.request(method, url, body=data, headers=headers, timeout=timeout,
                                  max_bytes=500)
    except outbound.OutboundRefused as exc:
        return Answer(None, f"refused: {exc}")
    except (OSError, ValueError) as exc:  # timeouts, refused connections, bad URLs
        return Answer(None, f"no answer: {exc}")
    return Answer(answer.status, outbound.excerpt(answer.body, 500))
