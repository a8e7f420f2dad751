"""Thin views over ``triggers.hooks.services``; callers are machines, not users."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from pipelines.api.parsers import BoundedJSONParser
from pipelines.api.serializers import ErrorSerializer
from triggers.hooks import services


class HookRefused(exceptions.APIException):
    """Any refusal of a hook call, with the status the service chose."""

    def __init__(self, error: services.HookError):
        self.status_code = error.status
        super().__init__(error.detail)


def _refuse_oversized(request) -> int:
    """413 for a body declared larger than the limit, before anything reads it; the limit.

    DRF's parsers read as much as Content-Length says (Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE does not apply to them), and these endpoints
    answer callers nobody has authenticated yet.
    """
    limit = services.push_max_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        _refuse(services.HookError(413, f"The payload is larger than {limit} bytes."))
    return limit


def _refuse(error: services.HookError):
    if error.status == 400 and error.path:
        raise exceptions.ValidationError({error.path: [error.detail.split(": ", 1)[-1]]})
    raise HookRefused(error)


DECISIONS = inline_serializer("PushDecision", many=True, fields={
    "actionName": serializers.CharField(),
    "pipelineExecutionId": serializers.UUIDField(allow_null=True),
    "started": serializers.BooleanField(),
    "reason": serializers.CharField(),
})
PUSH_ANSWER = inline_serializer("PushAnswer", {
    "detail": serializers.CharField(),
    "decisions": DECISIONS,
})
JOB_RESULT = inline_serializer("JobResultReport", {
    "status": serializers.ChoiceField(choices=["Succeeded", "Failed"]),
    "summary": serializers.CharField(required=False),
    "outputVariables": serializers.DictField(child=serializers.CharField(), required=False),
    "externalExecutionUrl": serializers.URLField(required=False),
})
JOB_ANSWER = inline_serializer("JobResultAnswer", {
    "actionExecutionId": serializers.UUIDField(),
    "status": serializers.CharField(),
    "summary": serializers.CharField(),
})


class PushHookApi(APIView):
    """``POST /api/hooks/{pipeline}/``: a signed push webhook (GitHub, GitLab, Gitea)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Receive a push webhook",
        description=("Signed with the pipeline's webhook secret: `X-Hub-Signature-256: "
                     "sha256=<HMAC-SHA256 of the body>` (GitHub, Gitea), `X-Gitea-Signature` "
                     "or `X-Gitlab-Token`. A push passing the pipeline's trigger filters "
                     "starts one execution per new commit."),
        request=OpenApiTypes.OBJECT,
        responses={200: PUSH_ANSWER, 202: PUSH_ANSWER,
                   400: OpenApiResponse(ErrorSerializer, description="Not a push payload."),
                   401: OpenApiResponse(ErrorSerializer, description="Missing or wrong "
                                        "signature: nothing started."),
                   404: OpenApiResponse(ErrorSerializer, description="No such pipeline."),
                   409: OpenApiResponse(ErrorSerializer, description="A replayed delivery "
                                        "(its delivery id was received before): nothing "
                                        "started."),
                   413: OpenApiResponse(ErrorSerializer, description="The body is larger "
                                        "than the limit (1 MiB by default): nothing started.")},
        auth=[],
    )
    def post(self, request, pipeline: str):
        # The signature covers the exact bytes sent: read them before any parsing, and
        # no more than the limit (plus one byte, to tell "too large"), whatever
        # Content-Length claims.
        try:
            limit = _refuse_oversized(request)
        except HookRefused:
            services.push_delivery_count(pipeline_name=pipeline, result="too_large")
            raise
        body = request._request.read(limit + 1)
        try:
            outcome = services.push_receive(pipeline_name=pipeline, body=body,
                                            headers=request.headers)
        except services.HookError as error:
            _refuse(error)
        return _push_answer(outcome)


def _push_answer(outcome: services.PushOutcome) -> Response:
    """202 with the decisions when something started, 200 otherwise."""
    decisions = [{
        "actionName": d.action_name,
        "pipelineExecutionId": str(d.execution.execution_id) if d.execution else None,
        "started": d.started,
        "reason": d.reason,
    } for d in outcome.decisions]
    started = outcome.started
    detail = outcome.note or (
        "Started " + ", ".join(f"execution #{d.execution.number}" for d in started)
        if started else "Nothing started.")
    return Response({"detail": detail, "decisions": decisions},
                    status=status.HTTP_202_ACCEPTED if started else status.HTTP_200_OK)


class AwsWebhookApi(APIView):
    """``POST /api/webhooks/{token}/``: a delivery to a webhook made with PutWebhook."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Receive a delivery for a CodePipeline webhook",
        description=("The URL comes from PutWebhook/ListWebhooks; the delivery must pass "
                     "the webhook's authentication (GITHUB_HMAC, IP, UNAUTHENTICATED) and "
                     "every filter (jsonPath equals matchEquals)."),
        request=OpenApiTypes.OBJECT,
        responses={200: PUSH_ANSWER, 202: PUSH_ANSWER,
                   401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
                   404: OpenApiResponse(ErrorSerializer, description="No such webhook."),
                   409: OpenApiResponse(ErrorSerializer, description="A replayed delivery.")},
        auth=[],
    )
    def post(self, request, token: str):
        limit = _refuse_oversized(request)
        body = request._request.read(limit + 1)
        try:
            outcome = services.aws_webhook_receive(
                url_token=token, body=body, headers=request.headers,
                remote_addr=request.META.get("REMOTE_ADDR", ""))
        except services.HookError as error:
            _refuse(error)
        return _push_answer(outcome)


class JobResultApi(APIView):
    """``POST /api/jobs/{token}/result``: an Invoke Webhook receiver reports its result."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # A receiver reports in JSON; nothing else is parsed for a caller known only by a token.
    parser_classes = [BoundedJSONParser]

    @extend_schema(
        summary="Report the result of an Invoke Webhook job",
        description=("The token (from the job Conveyor sent) is good for one report and "
                     "expires with the action's timeout."),
        request=JOB_RESULT,
        responses={200: JOB_ANSWER,
                   400: OpenApiResponse(ErrorSerializer, description="Not a result report."),
                   404: OpenApiResponse(ErrorSerializer, description="Unknown token."),
                   409: OpenApiResponse(ErrorSerializer, description="Already reported."),
                   410: OpenApiResponse(ErrorSerializer, description="The token expired."),
                   413: OpenApiResponse(ErrorSerializer, description="The body is larger "
                                        "than the limit (1 MiB by default).")},
        auth=[],
    )
    def post(self, request, token: str):
        _refuse_oversized(request)
        try:
            # The body is read only after the token is found good (a callable).
            ae = services.job_report(token=token, data=lambda: request.data)
        except services.HookError as error:
            _refuse(error)
        return Response({"actionExecutionId": str(ae.action_execution_id), "status": ae.status,
                         "summary": ae.summary})
