"""The CodePipeline operations: the dispatch table (``base``) and the modules that fill it,
by the app whose services they call. Importing the package registers them all."""

from awsapi.operations import (  # noqa: F401  (they register)
    approvals,
    conditions,
    executions,
    jobs,
    pipelines,
    webhooks,
)
from awsapi.operations.base import OPERATIONS, dispatch

__all__ = ["OPERATIONS", "dispatch"]
