"""Fixtures of the dashboard tests: the execution tests' driver and pipelines, and the
approval tests' release pipeline and reviewers (reused, not copied)."""

from tests.approvals.conftest import (  # noqa: F401
    _inline_approval_tasks,
    alice,
    mallory,
    release,
)
from tests.conditions.conftest import cdriver  # noqa: F401
from tests.executions.conftest import _quiet_heartbeat, driver  # noqa: F401
