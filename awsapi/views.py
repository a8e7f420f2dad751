"""``POST /aws/``: CodePipeline's API over the AWS JSON 1.1 protocol.

A request names its operation in ``X-Amz-Target: CodePipeline_20150709.<Operation>``
and carries its input as a JSON object; the answer is a JSON object, or AWS's
error shape. The view only speaks the protocol: authentication is ``auth``,
the operations are the dispatch table in ``operations``.
"""

import json
import logging
import uuid

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from awsapi import agents, errors, operations
from awsapi.auth import authenticate
from awsapi.operations.base import TARGET_PREFIX
from config.bodies import BodyRefused, json_loads

logger = logging.getLogger("conveyor.awsapi")

CONTENT_TYPE = "application/x-amz-json-1.1"
# botocore sends 1.1 for CodePipeline; 1.0 is the same encoding.
ACCEPTED_CONTENT_TYPES = ("application/x-amz-json-1.1", "application/x-amz-json-1.0")


def _answer(data: dict, status: int, request_id: str, error: str | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(data), status=status, content_type=CONTENT_TYPE)
    response["x-amzn-RequestId"] = request_id
    if error:
        response["x-amzn-ErrorType"] = error
    return response


def _operation_name(request: HttpRequest) -> str:
    target = request.headers.get("X-Amz-Target", "")
    if not target.startswith(TARGET_PREFIX) or target == TARGET_PREFIX:
        raise errors.unknown_operation(
            f"X-Amz-Target must be {TARGET_PREFIX}<Operation>, not '{target}'."
        )
    return target.removeprefix(TARGET_PREFIX)


def _input(request: HttpRequest) -> dict:
    content_type = request.content_type or ""
    if content_type not in ACCEPTED_CONTENT_TYPES:
        raise errors.serialization(
            f"Content-Type must be {CONTENT_TYPE}, not '{content_type}'."
        )
    if not request.body:
        return {}
    try:
        data = json_loads(request.body)
    except BodyRefused as exc:
        raise errors.serialization(f"The request body was refused: {exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.serialization(f"The request body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise errors.serialization("The request body must be a JSON object.")
    return data


# CSRF-exempt is safe: the only credentials accepted here are the SigV4 signature in
# the request itself and an agent key in its Authorization header; a browser's session
# cookie is never looked at.
@csrf_exempt
async def endpoint(request: HttpRequest) -> HttpResponse:
    """Asynchronous only for an agent's held requests (``awsapi.agents.held``); every
    other request runs synchronously, as a synchronous view would."""
    held = agents.held(request)
    if held is not None:
        request_id = str(uuid.uuid4())
        try:
            result = await held(request, _input(request))
        except errors.AwsError as exc:
            return _error(exc, request_id)
        except Exception:
            logger.exception("awsapi request %s failed", request_id)
            return _error(errors.internal_failure(), request_id)
        return _answer(result, 200, request_id)
    return await sync_to_async(_endpoint)(request)


def _error(exc: errors.AwsError, request_id: str) -> HttpResponse:
    return _answer(exc.body(), exc.status, request_id, exc.code)


def _endpoint(request: HttpRequest) -> HttpResponse:
    request_id = str(uuid.uuid4())
    try:
        if request.method != "POST":
            raise errors.AwsError("UnknownOperationException",
                                  "Use POST: this is the AWS JSON 1.1 protocol.", 405)
        if agents.is_agent_request(request):
            result = agents.call(request, _operation_name(request), _input(request))
        else:
            caller = authenticate(request)
            name = _operation_name(request)
            result = operations.dispatch(name, caller, _input(request))
    except errors.AwsError as exc:
        return _error(exc, request_id)
    except RequestDataTooBig:
        return _error(errors.AwsError("ValidationException", "The request body is too large.",
                                      413), request_id)
    except Exception:
        logger.exception("awsapi request %s failed", request_id)
        return _error(errors.internal_failure(), request_id)
    return _answer(result, 200, request_id)
