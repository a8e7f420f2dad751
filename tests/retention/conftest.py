"""The execution tests' driver (engine steps run directly, the queue held) for retention."""

from tests.executions.conftest import _quiet_heartbeat, driver  # noqa: F401
