"""AWS's error shape, so that botocore raises the right exception class.

An error answer is ``{"__type": "<Code>", "message": "..."}`` with the code also
in the ``x-amzn-ErrorType`` header. botocore reads the code from ``__type`` and
turns a code the service model declares (``PipelineNotFoundException``, ...)
into ``client.exceptions.<Code>``; other codes (``AccessDeniedException``,
``UnrecognizedClientException``, ...) are AWS's common errors and reach the
caller as a ``ClientError`` with that code.
"""

from approvals.errors import ApprovalClosed, ApprovalError, ApprovalForbidden, ApprovalNotFound
from executions.errors import (
    ExecutionConflict,
    ExecutionError,
    ExecutionNotFound,
    ExecutionNotLatest,
    ExecutionNotStoppable,
    RollbackTargetInvalid,
    RollbackTargetOutdated,
    StageNotRetryable,
    StopAlreadyRequested,
)


class AwsError(Exception):
    """An answer in AWS's error shape: ``code`` is the exception name, ``status`` the HTTP status.

    CodePipeline declares no status for its own exceptions, so AWS answers them with 400.
    """

    def __init__(self, code: str, message: str, status: int = 400):
        self.code = code
        self.message = message
        self.status = status
        super().__init__(f"{code}: {message}")

    def body(self) -> dict:
        return {"__type": self.code, "message": self.message}


# --- authentication (AWS's common errors) ------------------------------------

def unrecognized_client(message: str = "The security token included in the request is "
                        "invalid.") -> AwsError:
    return AwsError("UnrecognizedClientException", message, 403)


def invalid_signature(message: str) -> AwsError:
    return AwsError("InvalidSignatureException", message, 403)


def incomplete_signature(message: str) -> AwsError:
    return AwsError("IncompleteSignatureException", message, 400)


def access_denied(*, user, operation: str, resource: str = "*") -> AwsError:
    return AwsError(
        "AccessDeniedException",
        f"User: {user.get_username()} is not authorized to perform: "
        f"codepipeline:{operation} on resource: {resource}",
        400,
    )


# --- the request itself -------------------------------------------------------

def validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


def serialization(message: str) -> AwsError:
    return AwsError("SerializationException", message)


def unknown_operation(message: str) -> AwsError:
    return AwsError("UnknownOperationException", message)


def internal_failure() -> AwsError:
    return AwsError("InternalFailure", "The request processing has failed because of an "
                    "unknown error, exception or failure.", 500)


# The conflicts the services tell apart, by CodePipeline's name for each; any
# other ExecutionConflict is a ConflictException.
_CONFLICTS = (
    (ExecutionNotStoppable, "PipelineExecutionNotStoppableException"),
    (StopAlreadyRequested, "DuplicatedStopRequestException"),
    (StageNotRetryable, "StageNotRetryableException"),
    (ExecutionNotLatest, "NotLatestPipelineExecutionException"),
    (RollbackTargetInvalid, "UnableToRollbackStageException"),
    (RollbackTargetOutdated, "PipelineExecutionOutdatedException"),
)


def service_error(exc: ExecutionError | ApprovalError, *,
                  not_found: str | AwsError = "StageNotFoundException") -> AwsError:
    """CodePipeline's exception for a service error: the AWS endpoint's one mapping.

    ``not_found`` names what an ``ExecutionNotFound`` is about in this
    operation (after the adapter has looked up the pipeline and the execution
    itself, what the service can still not find is a stage); an ``AwsError`` is
    answered as it is.
    """
    if isinstance(exc, ExecutionConflict):
        for kind, code in _CONFLICTS:
            if isinstance(exc, kind):
                return AwsError(code, exc.detail)
        return AwsError("ConflictException", exc.detail)
    if isinstance(exc, ExecutionNotFound | ApprovalNotFound):
        return not_found if isinstance(not_found, AwsError) else AwsError(not_found, exc.detail)
    if isinstance(exc, ApprovalClosed):
        return AwsError("ApprovalAlreadyCompletedException", exc.detail)
    if isinstance(exc, ApprovalForbidden):
        return AwsError("AccessDeniedException", exc.detail, 400)
    return validation(exc.detail)  # invalid: the request itself is wrong
