"""Compute sizes → resource limits: the one mapping point for CodeBuild's ComputeType.

CodeBuild sizes a build by ``ComputeType`` (a build project's, or a Commands
action's ``configuration.ComputeType``). Here a size becomes the limits the
sandbox applies to the action's processes. Until the sandbox applies them, the
build's log states the size and its limits and that they are not enforced, so
a user never believes a limit holds that does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from runners.base import RunContext

DEFAULT = "BUILD_GENERAL1_SMALL"


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    vcpus: int


# CodeBuild's Linux sizes (EC2 compute): memory and vCPUs as AWS lists them.
COMPUTE_TYPES: dict[str, Limits] = {
    "BUILD_GENERAL1_SMALL": Limits(3 * 1024, 2),
    "BUILD_GENERAL1_MEDIUM": Limits(7 * 1024, 4),
    "BUILD_GENERAL1_LARGE": Limits(15 * 1024, 8),
    "BUILD_GENERAL1_XLARGE": Limits(70 * 1024, 36),
    "BUILD_GENERAL1_2XLARGE": Limits(145 * 1024, 72),
}


def compute_limits(compute_type: str | None) -> Limits:
    """The limits of a compute size (the default size when none is named)."""
    return COMPUTE_TYPES.get(compute_type or DEFAULT, COMPUTE_TYPES[DEFAULT])


def log_compute(ctx: RunContext, compute_type: str | None) -> Limits:
    """Write the size and its limits in the build's log; return the limits."""
    limits = compute_limits(compute_type)
    ctx.log.line(f"[Container] Compute type {compute_type or DEFAULT}: "
                 f"{limits.memory_mb // 1024} GB memory, {limits.vcpus} vCPUs "
                 "(not enforced: this worker runs commands without the sandbox's limits)")
    return limits
