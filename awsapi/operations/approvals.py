"""PutApprovalResult, over ``approvals.services``.

The caller presents the token GetPipelineState shows for the waiting approval
action; ``approvals.services.approval_decide_by_token`` finds the request,
checks the caller is one of its reviewers and records the decision with the
"aws" surface. The adapter only renders its errors as CodePipeline's.
"""

from __future__ import annotations

from approvals import services
from approvals.choices import DecisionStatus, DecisionSurface
from approvals.errors import (
    ApprovalError,
)
from awsapi import errors
from awsapi.operations.base import (
    NAME,
    epoch,
    field_enum,
    field_object,
    field_string,
    operation,
    pipeline_named,
)
from teams.choices import Act


def _not_found(pipeline, stage_name: str, action_name: str) -> errors.AwsError:
    """Why no request holds the token: no such stage, no such action, or a wrong token."""
    stages = {s["name"]: s for s in pipeline.document.get("stages", [])}
    if stage_name not in stages:
        return errors.AwsError("StageNotFoundException",
                               f"Stage '{stage_name}' does not exist in pipeline "
                               f"'{pipeline.name}'.")
    if action_name not in {a["name"] for a in stages[stage_name].get("actions", [])}:
        return errors.AwsError("ActionNotFoundException",
                               f"Action '{action_name}' does not exist in stage "
                               f"'{stage_name}' of pipeline '{pipeline.name}'.")
    return errors.AwsError("InvalidApprovalTokenException",
                           f"The token is not valid for action '{action_name}' of stage "
                           f"'{stage_name}' in pipeline '{pipeline.name}'.")


# Deciding needs the reviewers' permission, as in the REST API and the dashboard;
# the service checks it again along with the request's own Reviewers narrowing.
@operation("PutApprovalResult", act=Act.REVIEW)
def put_approval_result(caller, body: dict) -> dict:
    pipeline = pipeline_named(field_string(body, "pipelineName", required=True, pattern=NAME,
                                           max_length=100))
    stage_name = field_string(body, "stageName", required=True, pattern=NAME, max_length=100)
    action_name = field_string(body, "actionName", required=True, pattern=NAME,
                               max_length=100)
    result = field_object(body, "result", required=True)
    status = field_enum(result, "status", DecisionStatus.values, required=True)
    # The model allows an empty summary (min 0), so it is read as it is.
    summary = result.get("summary")
    if summary is None or not isinstance(summary, str):
        raise errors.validation("1 validation error detected: Value at 'result.summary' "
                                "failed to satisfy constraint: Member must not be null")
    if len(summary) > 512:
        raise errors.validation("1 validation error detected: Value at 'result.summary' "
                                "failed to satisfy constraint: Member must have length less "
                                "than or equal to 512")
    token = field_string(body, "token", required=True, max_length=64)
    try:
        decision = services.approval_decide_by_token(
            pipeline_name=pipeline.name, stage_name=stage_name, action_name=action_name,
            token=token, user=caller.user, status=status, summary=summary,
            surface=DecisionSurface.AWS,
        )
    except ApprovalError as exc:
        raise errors.service_error(
            exc, not_found=_not_found(pipeline, stage_name, action_name)) from None
    return {"approvedAt": epoch(decision.decided_at)}
