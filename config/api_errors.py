"""The API's one exception handler, for every app's errors.

``pipelines.api.errors`` defines the one error body (``{"detail", "errors"}``)
and ``Conflict`` (409); ``pipelines`` may import neither ``executions`` nor
``approvals``, so the errors of those apps are mapped here, in a module that
may import them all, and then rendered by the pipelines handler:

- ``ExecutionConflict`` → 409 ``{"detail"}`` (e.g. retrying a superseded execution);
- ``ExecutionInvalid`` → 400 ``{"detail", "errors": [{"path", "message"}]}``;
- ``ExecutionNotFound`` → 404 ``{"detail"}``.
"""

from rest_framework import exceptions, status
from rest_framework.response import Response

from executions.errors import ExecutionConflict, ExecutionInvalid, ExecutionNotFound
from pipelines.api.errors import Conflict
from pipelines.api.errors import exception_handler as pipelines_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, ExecutionInvalid):
        return Response(
            {"detail": exc.detail,
             "errors": [{"path": path, "message": message} for path, message in exc.problems]},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ExecutionConflict):
        exc = Conflict(exc.detail)
    elif isinstance(exc, ExecutionNotFound):
        exc = exceptions.NotFound(exc.detail)
    return pipelines_exception_handler(exc, context)
