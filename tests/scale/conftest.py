"""The execution tests' driver (the engine's steps run directly, the queue held at its edge)."""

from tests.executions.conftest import _quiet_heartbeat, driver  # noqa: F401 (fixtures)
