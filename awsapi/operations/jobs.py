"""Custom action types and the job-worker protocol (docs/job-workers.md).

The operations call ``jobs.action_types`` and ``jobs.services``; they only shape
AWS's members. A job worker signs with an access key acting as its user, who must
hold the operator role on the group of the pipeline whose jobs it works
(``jobs.services.may_work``, through ``teams.access``). Custom action types are shared
by every group, as build projects and connections are: registering, changing and
deleting one needs the global model permission (``_require``).
"""

from __future__ import annotations

from awsapi import errors
from awsapi.operations.base import (
    EXECUTION_ID,
    account_id,
    compact,
    field_enum,
    field_int,
    field_list,
    field_object,
    field_string,
    operation,
    pipeline_arn,
)
from jobs import action_types, artifacts, services
from jobs.errors import JobError
from jobs.models import CustomActionType, Job
from teams.access import visible_group_ids
from teams.choices import Act

WORK = Act.OPERATE
CATEGORIES = ("Source", "Build", "Deploy", "Test", "Invoke", "Approval", "Compute")
NAME = r"[0-9A-Za-z_-]+"


def _require(caller, permission: str, operation: str) -> None:
    """Action types are shared by every pipeline group: a global model permission."""
    if not caller.user.has_perm(permission):
        raise errors.access_denied(user=caller.user, operation=operation)


def _may_poll(caller, operation: str) -> None:
    """A key whose user may operate no pipeline at all works no job: AccessDenied, as
    on AWS for a principal without codepipeline:PollForJobs (the jobs of pipelines it
    may operate are then filtered by ``services.job_poll``)."""
    if visible_group_ids(caller.user, Act.OPERATE) == set():
        raise errors.access_denied(user=caller.user, operation=operation)


def _aws(exc: JobError) -> errors.AwsError:
    if isinstance(exc, action_types.ActionTypeInvalid):
        return errors.validation("; ".join(f"{p}: {m}" for p, m in exc.problems))
    return errors.AwsError(exc.code, exc.detail)


# --- action types ------------------------------------------------------------------------


def action_type_shape(t: CustomActionType) -> dict:
    return action_types.action_type_export(t)


def custom_action_types(owner: str | None) -> list[dict]:
    """The undeleted custom types for ListActionTypes (``owner``: its actionOwnerFilter)."""
    qs = CustomActionType.objects.filter(deleted_at__isnull=True)
    if owner is not None:
        qs = qs.filter(owner=owner)
    return [action_type_shape(t) for t in qs]


def _type_fields(body: dict) -> dict:
    field_enum(body, "category", CATEGORIES, required=True)
    field_string(body, "provider", required=True, pattern=NAME, max_length=35)
    field_string(body, "version", required=True, pattern=NAME, max_length=9)
    field_object(body, "settings")
    field_list(body, "configurationProperties", max_length=10)
    field_object(body, "inputArtifactDetails", required=True)
    field_object(body, "outputArtifactDetails", required=True)
    return body


@operation("CreateCustomActionType", act=Act.OWN)
def create_custom_action_type(caller, body: dict) -> dict:
    _require(caller, "jobs.add_customactiontype", "CreateCustomActionType")
    data = _type_fields(body)
    if body.get("tags"):
        raise errors.validation("tags: custom action types take no tags here")
    try:
        action_type, _ = action_types.action_type_create(data=data, user=caller.user)
    except JobError as exc:
        raise _aws(exc) from None
    return {"actionType": action_type_shape(action_type)}


def _type_named(body: dict, owner: str | None = None) -> CustomActionType:
    field_enum(body, "category", CATEGORIES, required=True)
    try:
        return action_types.action_type_get(
            category=body["category"],
            owner=owner or field_string(body, "owner", required=True),
            provider=field_string(body, "provider", required=True),
            version=field_string(body, "version", required=True))
    except JobError as exc:
        raise _aws(exc) from None


@operation("DeleteCustomActionType", act=Act.OWN)
def delete_custom_action_type(caller, body: dict) -> dict:
    """AWS answers nothing, and deleting a type that is not there is not an error."""
    _require(caller, "jobs.delete_customactiontype", "DeleteCustomActionType")
    try:
        action_type = _type_named(body, owner="Custom")
    except errors.AwsError as exc:
        if exc.code == "ActionTypeNotFoundException":
            return {}
        raise
    action_types.action_type_delete(action_type=action_type)
    return {}


def declaration(t: CustomActionType) -> dict:
    """An ActionTypeDeclaration (GetActionType, UpdateActionType)."""
    return compact({
        "description": t.description or None,
        "executor": {"configuration": {"jobWorkerExecutorConfiguration": {}},
                     "type": "JobWorker"},
        "id": t.type_id,
        "inputArtifactDetails": {"minimumCount": t.input_minimum,
                                 "maximumCount": t.input_maximum},
        "outputArtifactDetails": {"minimumCount": t.output_minimum,
                                  "maximumCount": t.output_maximum},
        "properties": [compact({"name": p["name"], "optional": not p["required"],
                                "key": p["key"], "noEcho": p["secret"],
                                "queryable": p.get("queryable", False),
                                "description": p.get("description")})
                       for p in t.properties()],
        "urls": {"configurationUrl": t.third_party_configuration_url or None,
                 "entityUrlTemplate": t.entity_url_template or None,
                 "executionUrlTemplate": t.execution_url_template or None,
                 "revisionUrlTemplate": t.revision_url_template or None},
    })


@operation("GetActionType", act=Act.VIEW)
def get_action_type(caller, body: dict) -> dict:
    return {"actionType": declaration(_type_named(body))}


@operation("UpdateActionType", act=Act.OWN)
def update_action_type(caller, body: dict) -> dict:
    """Replace a registered type's properties, URLs and artifact counts from a declaration."""
    _require(caller, "jobs.change_customactiontype", "UpdateActionType")
    decl = field_object(body, "actionType", required=True)
    type_id = field_object(decl, "id", required=True)
    action_type = _type_named(type_id)
    urls = decl.get("urls") or {}
    data = {
        "settings": {k: v for k, v in {
            "thirdPartyConfigurationUrl": urls.get("configurationUrl"),
            "entityUrlTemplate": urls.get("entityUrlTemplate"),
            "executionUrlTemplate": urls.get("executionUrlTemplate"),
            "revisionUrlTemplate": urls.get("revisionUrlTemplate")}.items() if v},
        "configurationProperties": [
            {"name": p.get("name"), "required": not p.get("optional", False),
             "key": p.get("key"), "secret": p.get("noEcho"),
             "queryable": p.get("queryable", False),
             **({"description": p["description"]} if p.get("description") else {})}
            for p in decl.get("properties") or []],
        "inputArtifactDetails": decl.get("inputArtifactDetails"),
        "outputArtifactDetails": decl.get("outputArtifactDetails"),
    }
    try:
        action_types.action_type_update(action_type=action_type, data=data)
    except JobError as exc:
        raise _aws(exc) from None
    if "description" in decl:
        CustomActionType.objects.filter(pk=action_type.pk).update(
            description=str(decl["description"] or "")[:1024])
    return {}


# --- jobs ----------------------------------------------------------------------------------


def _type_id(body: dict) -> dict:
    type_id = field_object(body, "actionTypeId", required=True)
    field_enum(type_id, "category", CATEGORIES, required=True)
    for member in ("owner", "provider", "version"):
        field_string(type_id, member, required=True)
    return {k: type_id[k] for k in ("category", "owner", "provider", "version")}


def _polled_type(type_id: dict, owner: str) -> CustomActionType:
    if type_id["owner"] != owner:
        raise errors.validation(f"actionTypeId.owner must be {owner} for this operation")
    try:
        return action_types.action_type_get(**type_id)
    except JobError as exc:
        raise _aws(exc) from None


def job_data(caller, job: Job, *, credentials: dict | None = None) -> dict:
    """AWS's JobData: the configuration with its secrets opened, the pipeline context,
    the artifacts' S3 locations and the job's artifact credentials."""
    from executions.models import Artifact
    from pipelines import secrets as sealed

    data = job.data
    config = {k: sealed.unseal(v) for k, v in
              data.get("actionConfiguration", {}).get("configuration", {}).items()}
    inputs = {a.name: a for a in Artifact.objects.filter(
        execution_id=job.action_execution.execution_id,
        name__in=data.get("inputArtifacts", [])).order_by("id")}
    context = dict(data.get("pipelineContext", {}))
    context["pipelineArn"] = pipeline_arn(caller, context.get("pipelineName", ""))
    return compact({
        "actionTypeId": job.type_id,
        "actionConfiguration": {"configuration": config},
        "pipelineContext": context,
        "inputArtifacts": [
            {"name": name,
             "revision": inputs[name].sha256 if name in inputs else None,
             "location": artifacts.location(job, "input", name)}
            for name in data.get("inputArtifacts", [])],
        "outputArtifacts": [{"name": name, "location": artifacts.location(job, "output", name)}
                            for name in data.get("outputArtifacts", [])],
        "artifactCredentials": credentials or artifacts.credentials(job),
        "continuationToken": job.continuation_token or None,
    })


@operation("PollForJobs", act=WORK)
def poll_for_jobs(caller, body: dict) -> dict:
    """Jobs of a Custom type; ``queryParam`` must name the type's queryable property."""
    _may_poll(caller, "PollForJobs")
    type_id = _type_id(body)
    size = field_int(body, "maxBatchSize", minimum=1) or 1
    query = field_object(body, "queryParam") or {}
    action_type = _polled_type(type_id, "Custom")
    queryable = action_type.queryable_property()
    if len(query) > 1:
        raise errors.validation("queryParam holds at most one entry")
    if query and (queryable is None or set(query) != {queryable}):
        raise errors.validation(
            "queryParam must be empty: this action type has no queryable property"
            if queryable is None else f"queryParam must name the queryable property "
            f"{queryable}, not {', '.join(query)}")
    for value in query.values():
        field_string({"v": value}, "v", pattern=r"[a-zA-Z0-9_-]+", max_length=50)
    jobs = services.job_poll(action_type=type_id, query=query or None,
                             max_batch_size=min(size, 100), user=caller.user)
    return {"jobs": [{"id": str(j.job_id), "data": job_data(caller, j, credentials=None),
                      "nonce": j.nonce, "accountId": account_id()} for j in jobs]}


def _job_id(body: dict) -> str:
    return field_string(body, "jobId", required=True, pattern=EXECUTION_ID)


@operation("AcknowledgeJob", act=WORK)
def acknowledge_job(caller, body: dict) -> dict:
    job_id = _job_id(body)
    nonce = field_string(body, "nonce", required=True, max_length=50)
    try:
        return {"status": services.job_acknowledge(job_id=job_id, nonce=nonce,
                                                   user=caller.user)}
    except JobError as exc:
        raise _aws(exc) from None


@operation("GetJobDetails", act=WORK)
def get_job_details(caller, body: dict) -> dict:
    try:
        job = services.job_get(job_id=_job_id(body), user=caller.user)
    except JobError as exc:
        raise _aws(exc) from None
    if job.owner != "Custom":
        raise errors.AwsError("JobNotFoundException", f"Job {job.job_id} is a third-party "
                              "job: use GetThirdPartyJobDetails")
    return {"jobDetails": {"id": str(job.job_id), "data": job_data(caller, job),
                           "accountId": account_id()}}


def _success_fields(body: dict) -> dict:
    details = field_object(body, "executionDetails") or {}
    if details:
        field_string(details, "summary", max_length=2048)
        field_string(details, "externalExecutionId", max_length=1500)
        field_int(details, "percentComplete", minimum=0, maximum=100)
    revision = field_object(body, "currentRevision")
    if revision is not None:
        field_string(revision, "revision", required=True, max_length=1500)
        field_string(revision, "changeIdentifier", required=True, max_length=100)
    token = field_string(body, "continuationToken", max_length=2048)
    return {"execution_details": details, "current_revision": revision,
            "continuation_token": token}


@operation("PutJobSuccessResult", act=WORK)
def put_job_success_result(caller, body: dict) -> dict:
    job_id = _job_id(body)
    fields = _success_fields(body)
    variables = field_object(body, "outputVariables")
    try:
        services.job_succeed(job_id=job_id, output_variables=variables, user=caller.user,
                             **fields)
    except JobError as exc:
        raise _aws(exc) from None
    return {}


def _failure(body: dict) -> dict:
    failure = field_object(body, "failureDetails", required=True)
    return {"failure_type": field_enum(failure, "type", (
                "JobFailed", "ConfigurationError", "PermissionError", "RevisionOutOfSync",
                "RevisionUnavailable", "SystemUnavailable"), required=True),
            "message": field_string(failure, "message", required=True, max_length=5000),
            "external_execution_id": field_string(failure, "externalExecutionId",
                                                  max_length=1500)}


@operation("PutJobFailureResult", act=WORK)
def put_job_failure_result(caller, body: dict) -> dict:
    job_id = _job_id(body)
    try:
        services.job_fail(job_id=job_id, user=caller.user, **_failure(body))
    except JobError as exc:
        raise _aws(exc) from None
    return {}


# --- third-party jobs: the same jobs, with the type's client token ----------------------------


def _third_party_job(caller, body: dict) -> Job:
    job_id = field_string(body, "jobId", required=True, max_length=512)
    token = field_string(body, "clientToken", required=True, max_length=256)
    try:
        job = services.job_get(job_id=job_id, user=caller.user)
        services.client_token_check(job=job, client_token=token)
    except JobError as exc:
        raise _aws(exc) from None
    except Exception:   # a job id that is no UUID
        raise errors.AwsError("JobNotFoundException", f"Job {job_id} was not found") from None
    return job


@operation("PollForThirdPartyJobs", act=WORK)
def poll_for_third_party_jobs(caller, body: dict) -> dict:
    _may_poll(caller, "PollForThirdPartyJobs")
    type_id = _type_id(body)
    size = field_int(body, "maxBatchSize", minimum=1) or 1
    _polled_type(type_id, "ThirdParty")
    jobs = services.job_poll(action_type=type_id, max_batch_size=min(size, 100),
                             user=caller.user)
    return {"jobs": [{"clientId": str(j.client_id), "jobId": str(j.job_id)} for j in jobs]}


@operation("GetThirdPartyJobDetails", act=WORK)
def get_third_party_job_details(caller, body: dict) -> dict:
    job = _third_party_job(caller, body)
    return {"jobDetails": {"id": str(job.job_id), "data": job_data(caller, job),
                           "nonce": job.nonce}}


@operation("AcknowledgeThirdPartyJob", act=WORK)
def acknowledge_third_party_job(caller, body: dict) -> dict:
    job = _third_party_job(caller, body)
    nonce = field_string(body, "nonce", required=True, max_length=50)
    try:
        return {"status": services.job_acknowledge(job_id=str(job.job_id), nonce=nonce,
                                                   user=caller.user)}
    except JobError as exc:
        raise _aws(exc) from None


def _third_party_result(caller, body: dict, *, succeeded: bool) -> dict:
    """A third-party job's result: the job (reached with its type's client token) and
    its action end as the worker says, as ``PutJobSuccessResult`` / ``PutJobFailureResult``
    end a custom job's."""
    job = _third_party_job(caller, body)
    fields = _success_fields(body) if succeeded else _failure(body)
    finish = services.job_succeed if succeeded else services.job_fail
    try:
        finish(job_id=str(job.job_id), user=caller.user, **fields)
    except JobError as exc:
        raise _aws(exc) from None
    return {}


@operation("PutThirdPartyJobSuccessResult", act=WORK)
def put_third_party_job_success_result(caller, body: dict) -> dict:
    return _third_party_result(caller, body, succeeded=True)


@operation("PutThirdPartyJobFailureResult", act=WORK)
def put_third_party_job_failure_result(caller, body: dict) -> dict:
    return _third_party_result(caller, body, succeeded=False)
