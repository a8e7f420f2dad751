"""The API's one exception handler, for every app's errors.

``pipelines.api.errors`` defines the one error body (``{"detail", "errors"}``)
and ``Conflict`` (409); ``pipelines`` may import neither ``executions`` nor
``approvals``, so the errors of those apps are mapped here, in a module that
may import them all, and then rendered by the pipelines handler:

- ``ExecutionConflict`` → 409 ``{"detail"}`` (e.g. retrying a superseded execution);
- ``ExecutionInvalid`` → 400 ``{"detail", "errors": [{"path", "message"}]}``;
- ``ExecutionNotFound`` → 404 ``{"detail"}``;
- ``ApprovalForbidden`` → 403, ``ApprovalClosed`` → 409, ``ApprovalNotFound`` → 404,
  ``ApprovalInvalid`` → 400 naming ``status``, any other ``ApprovalError`` → 400.

Views raise the services' errors as they come: this is the REST API's one mapping.
"""

from rest_framework import exceptions, status
from rest_framework.response import Response

from approvals.errors import (
    ApprovalClosed,
    ApprovalError,
    ApprovalForbidden,
    ApprovalInvalid,
    ApprovalNotFound,
)
from executions.errors import ExecutionConflict, ExecutionInvalid, ExecutionNotFound
from pipelines.api.errors import Conflict
from pipelines.api.errors import exception_handler as pipelines_exception_handler


def _approval_error(exc: ApprovalError) -> exceptions.APIException:
    if isinstance(exc, ApprovalForbidden):
        return exceptions.PermissionDenied(exc.detail)
    if isinstance(exc, ApprovalClosed):
        return Conflict(exc.detail)
    if isinstance(exc, ApprovalNotFound):
        return exceptions.NotFound(exc.detail)
    if isinstance(exc, ApprovalInvalid):
        return exceptions.ValidationError({"status": [exc.detail]})
    return exceptions.ValidationError(exc.detail)


def exception_handler(exc, context):
    if isinstance(exc, ApprovalError):
        exc = _approval_error(exc)
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
