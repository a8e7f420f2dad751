"""Fixtures of the dashboard tests (the execution tests' driver and pipelines, reused)."""

from tests.executions.conftest import _quiet_heartbeat, driver  # noqa: F401
