"""Pure functions: which rule events an ExecutionEvent is, and the bodies sent for it.

Nothing here touches the database: ``services`` loads the rows and passes them in.
"""

from __future__ import annotations

import uuid

from notifications.choices import NotificationEvent as N

_EXECUTION = {"Succeeded": N.EXECUTION_SUCCEEDED, "Failed": N.EXECUTION_FAILED,
              "Stopped": N.EXECUTION_STOPPED, "Superseded": N.EXECUTION_SUPERSEDED}
_STAGE = {"Succeeded": N.STAGE_SUCCEEDED, "Failed": N.STAGE_FAILED}


def event_keys(*, kind: str, previous: str, status: str, execution_type: str = "STANDARD",
               action_category: str = "") -> list[str]:
    """The rule events an ExecutionEvent stands for, most specific first ([] for none).

    An execution's first InProgress is ``execution.started`` (and
    ``rollback.started`` first for a ROLLBACK execution); InProgress again
    after Failed/Stopped is ``execution.resumed``. An Approval action entering
    InProgress is ``approval.needed``; any action ending Failed ``action.failed``.
    """
    if kind == "PipelineExecution":
        if status == "InProgress" and not previous:
            return ([N.ROLLBACK_STARTED] if execution_type == "ROLLBACK" else []) + [
                N.EXECUTION_STARTED]
        if status == "InProgress" and previous in ("Failed", "Stopped"):
            return [N.EXECUTION_RESUMED]
        return [_EXECUTION[status]] if status in _EXECUTION else []
    if kind == "StageExecution":
        if status == "InProgress" and not previous:
            return [N.STAGE_STARTED]
        return [_STAGE[status]] if status in _STAGE else []
    if kind == "ActionExecution":
        if status == "InProgress" and not previous and action_category == "Approval":
            return [N.APPROVAL_NEEDED]
        if status == "Failed":
            return [N.ACTION_FAILED]
    return []


# CodePipeline's EventBridge "state" values for Conveyor's statuses.
_STATE = {"InProgress": "STARTED", "Succeeded": "SUCCEEDED", "Failed": "FAILED",
          "Stopped": "STOPPED", "Stopping": "STOPPING", "Superseded": "SUPERSEDED",
          "Abandoned": "ABANDONED"}
_DETAIL_TYPE = {"PipelineExecution": "CodePipeline Pipeline Execution State Change",
                "StageExecution": "CodePipeline Stage Execution State Change",
                "ActionExecution": "CodePipeline Action Execution State Change"}


def eventbridge_event(*, event, execution, pipeline_arn: str, region: str, account: str,
                      action=None, link: str, key: str) -> dict:
    """The event as CodePipeline sends it to EventBridge, plus Conveyor's own members.

    ``detail`` has CodePipeline's members (``pipeline``, ``execution-id``,
    ``state``, ``version``, ``stage``, ``action``, ``type``…); ``conveyor``
    carries what it does not have (the rule event, the execution number, the link).
    """
    state = _STATE.get(event.status, event.status.upper())
    if event.status == "InProgress" and event.previous_status in ("Failed", "Stopped"):
        state = "RESUMED"
    detail = {
        "pipeline": execution.pipeline.name,
        "execution-id": str(execution.execution_id),
        "state": state,
        "version": execution.pipeline_version.number,
    }
    if event.kind == "PipelineExecution":
        detail["execution-trigger"] = {"trigger-type": execution.trigger_type,
                                       "trigger-detail": execution.trigger_detail}
    if event.stage_name:
        detail["stage"] = event.stage_name
    if event.action_name:
        detail["action"] = event.action_name
        detail["region"] = region
        if action is not None:
            detail["type"] = {"owner": action.owner, "category": action.category,
                              "provider": action.provider, "version": "1"}
    return {
        "version": "0",
        # Stable per event: a retried delivery carries the same id, so a
        # receiver can recognise a repeat.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"conveyor-event:{event.pk}")),
        "detail-type": _DETAIL_TYPE.get(event.kind, event.kind),
        "source": "aws.codepipeline",
        "account": account,
        "time": event.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [pipeline_arn],
        "detail": detail,
        "conveyor": {"event": key, "executionNumber": execution.number,
                     "summary": event.summary, "link": link},
    }


_EMOJI = {"SUCCEEDED": ":white_check_mark:", "FAILED": ":x:", "STOPPED": ":octagonal_sign:",
          "SUPERSEDED": ":fast_forward:", "STARTED": ":arrow_forward:",
          "RESUMED": ":repeat:"}


def readable(body: dict, label: str) -> str:
    """One line a person reads in chat or an email subject."""
    d = body["detail"]
    where = " / ".join(x for x in (d["pipeline"], d.get("stage"), d.get("action")) if x)
    return f"{label}: {where} (#{body['conveyor']['executionNumber']})"


def slack_message(body: dict, label: str) -> dict:
    """A Slack-compatible incoming-webhook message: readable text with a link."""
    emoji = _EMOJI.get(body["detail"]["state"], ":information_source:")
    text = f"{emoji} {readable(body, label)}"
    summary = body["conveyor"]["summary"]
    if summary:
        text += f"\n{summary}"
    text += f"\n<{body['conveyor']['link']}|Open the execution>"
    return {"text": text}
