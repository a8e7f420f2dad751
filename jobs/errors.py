"""What the job services refuse, each named for the AWS exception the endpoint answers."""


class JobError(Exception):
    code = "ValidationException"

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)


class JobNotFound(JobError):
    code = "JobNotFoundException"


class InvalidNonce(JobError):
    code = "InvalidNonceException"


class InvalidJobState(JobError):
    code = "InvalidJobStateException"


class InvalidClientToken(JobError):
    code = "InvalidClientTokenException"


class ActionTypeNotFound(JobError):
    code = "ActionTypeNotFoundException"


class JobInvalid(JobError):
    """The request itself is wrong (a field's value)."""

    code = "ValidationException"


class OutputVariablesTooLarge(JobError):
    code = "OutputVariablesSizeExceededException"
