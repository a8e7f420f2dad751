"""The dispatch table: one small function per CodePipeline operation.

Each function takes the verified ``Caller`` and the request's JSON object and
returns the answer's JSON object, calling the services of the app that owns the
operation; rules stay in those services. Register one with::

    @operation("GetPipeline", act=Act.VIEW)
    def get_pipeline(caller, body): ...

``act`` is what the operation does with the pipelines it names (``teams.access``:
view, operate, review, own), as the REST API asks for the same action. A key acts
as its user: a caller holding no role on any pipeline group gets
``AccessDeniedException`` for every operation; each pipeline the operation looks
up (``pipeline_named``, ``pipeline_checked``) must be visible to the caller — else
it is not found, as if it did not exist — and allow ``act`` — else
``AccessDeniedException``. Lists hold only visible pipelines.

Modules of operations, by the app whose services they call: ``pipelines``,
``executions``, ``approvals``; the package imports them all (``awsapi.operations``).
"""

import contextvars
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import Http404

from awsapi import errors
from awsapi.auth import Caller
from teams.access import holds_any_role, pipeline_require
from teams.choices import Act  # noqa: F401 (the docstring's example)

Handler = Callable[[Caller, dict], dict]


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Handler
    act: str


OPERATIONS: dict[str, Operation] = {}
# The operation being run and its caller, for the pipeline look-ups of its handler.
_running: contextvars.ContextVar[tuple[Operation, Caller] | None] = contextvars.ContextVar(
    "conveyor_aws_operation", default=None)


def operation(name: str, *, act: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name} is registered twice")
        OPERATIONS[name] = Operation(name, handler, act)
        return handler

    return register


def dispatch(name: str, caller: Caller, body: dict) -> dict:
    """Run operation ``name`` for ``caller``: refused to a caller holding no role; each
    pipeline its handler looks up is checked against the operation's act."""
    op = OPERATIONS.get(name)
    if op is None:
        raise errors.unknown_operation(f"Operation {name} is not supported by Conveyor.")
    if not holds_any_role(caller.user):
        raise errors.access_denied(user=caller.user, operation=name)
    token = _running.set((op, caller))
    try:
        return op.handler(caller, body)
    except PermissionDenied:
        # A service's own check (e.g. owning the group a pipeline is put in).
        raise errors.access_denied(user=caller.user, operation=name) from None
    finally:
        _running.reset(token)


# --- helpers for the operation functions ------------------------------------

def account_id() -> str:
    """Conveyor has no AWS accounts; ARNs carry this fixed 12-digit id."""
    return getattr(settings, "CONVEYOR_AWS_ACCOUNT_ID", "000000000000")


def pipeline_arn(caller: Caller, name: str) -> str:
    return f"arn:aws:codepipeline:{caller.region}:{account_id()}:{name}"


def epoch(value: datetime | str | None) -> float | None:
    """A timestamp as AWS JSON sends it: seconds since the epoch (milliseconds kept)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return round(value.timestamp(), 3)


def _constraint(value: Any, member: str, constraint: str) -> errors.AwsError:
    shown = "null" if value is None else repr(value) if not isinstance(value, str) else value
    return errors.validation(
        f"1 validation error detected: Value '{shown}' at '{member}' failed to satisfy "
        f"constraint: {constraint}"
    )


def field_string(body: dict, member: str, *, required: bool = False,
                 pattern: str | None = None, max_length: int | None = None) -> str | None:
    value = body.get(member)
    if value is None:
        if required:
            raise _constraint(None, member, "Member must not be null")
        return None
    if not isinstance(value, str) or not value:
        raise _constraint(value, member, "Member must be a non-empty string")
    if max_length is not None and len(value) > max_length:
        raise _constraint(value, member,
                          f"Member must have length less than or equal to {max_length}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise _constraint(value, member,
                          f"Member must satisfy regular expression pattern: {pattern}")
    return value


def field_int(body: dict, member: str, *, minimum: int | None = None,
              maximum: int | None = None) -> int | None:
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _constraint(value, member, "Member must be an integer")
    if minimum is not None and value < minimum:
        raise _constraint(value, member,
                          f"Member must have value greater than or equal to {minimum}")
    if maximum is not None and value > maximum:
        raise _constraint(value, member,
                          f"Member must have value less than or equal to {maximum}")
    return value


def field_object(body: dict, member: str, *, required: bool = False) -> dict | None:
    value = body.get(member)
    if value is None:
        if required:
            raise _constraint(None, member, "Member must not be null")
        return None
    if not isinstance(value, dict):
        raise _constraint(value, member, "Member must be an object")
    return value


def field_list(body: dict, member: str, *, max_length: int | None = None) -> list:
    """A list member (absent: empty); ``max_length`` as the model's ``max``."""
    value = body.get(member)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _constraint(value, member, "Member must be a list")
    if max_length is not None and len(value) > max_length:
        raise _constraint(value, member,
                          f"Member must have length less than or equal to {max_length}")
    return value


def field_bool(body: dict, member: str) -> bool | None:
    value = body.get(member)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _constraint(value, member, "Member must be a boolean")
    return value


def field_enum(body: dict, member: str, values: list[str] | tuple[str, ...], *,
               required: bool = False) -> str | None:
    value = field_string(body, member, required=required)
    if value is not None and value not in values:
        raise _constraint(value, member,
                          f"Member must satisfy enum value set: [{', '.join(values)}]")
    return value


def compact(value: Any) -> Any:
    """Drop the members that have no value (None), recursively, as AWS leaves them out."""
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


# --- names shared by the operation modules --------------------------------------

# A request names its operation in ``X-Amz-Target: CodePipeline_20150709.<Operation>``.
TARGET_PREFIX = "CodePipeline_20150709."
NAME = r"[A-Za-z0-9.@\-_]+"
EXECUTION_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def pipeline_not_found(name: str) -> errors.AwsError:
    return errors.AwsError("PipelineNotFoundException",
                           f"Pipeline with name '{name}' does not exist.")


def pipeline_checked(pipeline, *, not_found: errors.AwsError, act: str | None = None):
    """``pipeline`` if the running operation's caller may do its act (or ``act``) with it;
    ``not_found`` when it is None or not visible, ``AccessDeniedException`` when visible
    but the act is not allowed."""
    running = _running.get()
    if running is None:
        # Called by Conveyor's own code, not through ``dispatch``: no caller to check.
        if pipeline is None:
            raise not_found
        return pipeline
    op, caller = running
    try:
        return pipeline_require(caller.user, pipeline, act or op.act)
    except Http404:
        raise not_found from None
    except PermissionDenied:
        raise errors.access_denied(user=caller.user, operation=op.name,
                                   resource=pipeline_arn(caller, pipeline.name)) from None


def pipeline_named(name: str):
    """The pipeline called ``name`` (checked: ``pipeline_checked``), or
    ``PipelineNotFoundException``."""
    from pipelines.models import Pipeline

    return pipeline_checked(Pipeline.objects.filter(name=name).first(),
                            not_found=pipeline_not_found(name))


def page_token_dump(value: Any, *, salt: str) -> str:
    """A ``nextToken``: the signed position after which the next page starts."""
    return signing.dumps(value, salt=salt)


def page_token_load(token: str | None, *, salt: str, operation: str) -> Any:
    """The position a ``nextToken`` names; ``InvalidNextTokenException`` if it was not ours."""
    if token is None:
        return None
    try:
        return signing.loads(token, salt=salt)
    except signing.BadSignature:
        raise errors.AwsError("InvalidNextTokenException",
                              f"The nextToken was not returned by {operation}.") from None


def pipeline_page_after(body: dict, pipeline, *, salt: str, operation: str) -> Any:
    """Where this page of one pipeline's list starts: the position the body's ``nextToken``
    names (None on the first page). ``InvalidNextTokenException`` for a token that was not
    ours, or that ``pipeline_page_token`` gave for another pipeline."""
    after = page_token_load(field_string(body, "nextToken", max_length=2048),
                            salt=salt, operation=operation)
    if after is None:
        return None
    if not isinstance(after, list) or len(after) != 2 or after[0] != pipeline.pk:
        raise errors.AwsError("InvalidNextTokenException",
                              "The nextToken was not returned for this pipeline.")
    return after[1]


def pipeline_page_token(pipeline, position: Any, *, salt: str) -> str:
    """The ``nextToken`` of one pipeline's list: ``position`` (the last item sent), bound
    to ``pipeline`` so that it cannot page another one's (``pipeline_page_after``)."""
    return page_token_dump([pipeline.pk, position], salt=salt)
