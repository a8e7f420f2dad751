"""One object per running event loop (a web process's live hub, its agents' doorbell)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def of_running_loop(registry: dict[int, T], make: Callable[[asyncio.AbstractEventLoop], T]) -> T:
    """The running loop's entry of ``registry`` (made by ``make(loop)`` on first use, or
    again when a new loop reuses a closed one's id). Entries have a ``loop``."""
    loop = asyncio.get_running_loop()
    found = registry.get(id(loop))
    if found is None or found.loop is not loop:
        found = registry[id(loop)] = make(loop)
    return found
