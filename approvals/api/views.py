"""The approvals API: thin views over ``approvals.services``.

``GET /api/approvals/?status=Pending`` lists the requests the caller is a
reviewer of (across pipelines, newest first); ``POST
/api/approvals/{id}/decision/`` decides one. Errors use the one error body:
403 for a caller who may not decide, 409 for a closed request.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services
from approvals.api.serializers import ApprovalSerializer, DecisionInput
from approvals.choices import ApprovalStatus, DecisionSurface
from pipelines.api.serializers import ErrorSerializer

ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not signed in."),
}


class ApprovalListApi(generics.ListAPIView):
    """The approvals the caller is a reviewer of, newest first."""

    serializer_class = ApprovalSerializer
    # The list is already narrowed by the service (reviewers, status).
    filter_backends: list = []

    def get_queryset(self):
        wanted = self.request.query_params.get("status") or None
        if wanted is not None and wanted not in ApprovalStatus.values:
            raise ValidationError({"status": [
                f'"{wanted}" is not a status: use ' + ", ".join(ApprovalStatus.values)]})
        return services.approval_list(user=self.request.user, status=wanted)

    @extend_schema(
        summary="List the caller's approvals",
        parameters=[OpenApiParameter(
            "status", OpenApiTypes.STR, OpenApiParameter.QUERY, enum=ApprovalStatus.values,
            description="Only requests with this status (Pending: those waiting for a "
                        "decision now).")],
        responses={200: ApprovalSerializer(many=True),
                   400: OpenApiResponse(ErrorSerializer, description="Unknown status."),
                   **ERRORS},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ApprovalDecisionApi(APIView):
    """Approve or reject one approval request."""

    @extend_schema(
        summary="Approve or reject",
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                     description="The approval's id.")],
        request=DecisionInput,
        responses={
            201: ApprovalSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Not Approved or Rejected."),
            403: OpenApiResponse(ErrorSerializer, description="The caller may not decide it "
                                 "(not a reviewer, or approving their own execution)."),
            404: OpenApiResponse(ErrorSerializer, description="No approval has this id."),
            409: OpenApiResponse(ErrorSerializer, description="The approval is closed, or "
                                 "the caller already decided it."),
            **ERRORS,
        },
    )
    def post(self, request, id):  # noqa: A002  (the URL's name for it)
        # Who may not decide is refused (403/404) before their body is looked at (400).
        approval = services.approval_get(approval_id=id, user=request.user)
        body = DecisionInput(data=request.data)
        body.is_valid(raise_exception=True)
        # A refusal (ApprovalError) is answered by config.api_errors, the API's one mapping.
        services.approval_decide(request=approval, user=request.user,
                                 status=body.validated_data["status"],
                                 summary=body.validated_data["summary"],
                                 surface=DecisionSurface.API)
        approval.refresh_from_db()
        return Response(ApprovalSerializer(approval).data, status=status.HTTP_201_CREATED)
