"""Template context every dashboard page shares."""

from __future__ import annotations


def sandbox_warning(request) -> dict:
    """``sandbox_warning``: for staff, the sentence saying build commands run unsandboxed
    (or are refused) on this server; "" when they run sandboxed, and for everyone else."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {"sandbox_warning": ""}
    from runners import sandbox

    return {"sandbox_warning": sandbox.warning()}
