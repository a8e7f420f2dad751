"""Errors of the approval services, each a sentence a person can act on.

Every surface maps them the same way: ``ApprovalForbidden`` → 403,
``ApprovalClosed`` → 409, ``ApprovalNotFound`` → 404, ``ApprovalInvalid`` → 400,
``ApprovalLinkInvalid`` → 400 (a link that is expired, used, altered or not
addressed to the signed-in reviewer; ``reason`` says which).
"""


class ApprovalError(Exception):
    """Base class; ``detail`` is the message shown to people."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)


class ApprovalForbidden(ApprovalError):
    """The caller may not decide this request (not a reviewer, or self-approval)."""


class ApprovalClosed(ApprovalError):
    """The request can no longer be decided (closed, expired, or already decided by the caller)."""


class ApprovalNotFound(ApprovalError):
    """No pending request matches (unknown id, or a wrong PutApprovalResult token)."""


class ApprovalInvalid(ApprovalError):
    """The decision itself is wrong (a status other than Approved or Rejected)."""


class ApprovalLinkInvalid(ApprovalError):
    """A signed link that cannot be used; ``reason`` is expired, used, forged or not_yours."""

    def __init__(self, detail: str, reason: str):
        self.reason = reason
        super().__init__(detail)
