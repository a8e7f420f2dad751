"""Fixtures of the observability tests: the executions and approvals drivers."""

from tests.approvals.conftest import (  # noqa: F401  (fixtures)
    _inline_approval_tasks,
    alice,
    release,
)
from tests.executions.conftest import _quiet_heartbeat, driver  # noqa: F401  (fixtures)
