from tests.executions.conftest import _quiet_heartbeat, driver  # noqa: F401
