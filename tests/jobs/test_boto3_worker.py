"""An unmodified boto3 job worker against a live Conveyor: the proof of docs/job-workers.md.

The worker is this test: a boto3 ``codepipeline`` client (PollForJobs, AcknowledgeJob,
GetJobDetails, PutJob*Result) and a boto3 ``s3`` client for the artifacts, both with
``endpoint_url`` pointing at the live server. The pipeline's other actions run in the
``worker`` thread (the django-q2 stand-in of tests/awsapi).
"""

import io
import os
import time
import zipfile

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.contrib.auth.models import Group, Permission, User
from django.utils import timezone

from executions import engine
from executions import services as execution_services
from executions.models import ActionExecution, Artifact, PipelineExecution
from jobs.action_types import action_type_create
from jobs.models import Job
from tests.awsapi.conftest import wait_for
from tests.jobs.conftest import TYPE, custom_pipeline, type_data
from tests.roles import ensure_role_groups

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def job_worker_user(transactional_db):
    """A machine user of group "operators": may work the jobs of the pipelines it operates."""
    ensure_role_groups()
    user = User.objects.create_user("acme-worker", "w@example.com", "pw")
    user.groups.add(Group.objects.get(name="operators"))
    return user


def s3_client(live_server, creds: dict):
    return boto3.session.Session().client(
        "s3", endpoint_url=live_server.url + "/s3", region_name="us-east-1",
        aws_access_key_id=creds["accessKeyId"], aws_secret_access_key=creds["secretAccessKey"],
        aws_session_token=creds["sessionToken"],
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}))


def zipped(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def poll(client, **kwargs):
    return wait_for(lambda: client.poll_for_jobs(actionTypeId=TYPE, maxBatchSize=1,
                                                 **kwargs)["jobs"],
                    what="a job to poll", timeout=30)


def started(pipeline, user):
    return execution_services.execution_start(pipeline=pipeline, user=user)


def status(ex) -> str:
    return PipelineExecution.objects.get(pk=ex.pk).status


@pytest.fixture
def acknowledged(aws, worker, job_worker_user):
    """``acknowledged(**pipeline)``: the worker's prelude. Registers AcmeBuild, starts a
    ``custom_pipeline(**pipeline)``, polls its job and acknowledges it; returns
    (the execution, the worker's boto3 client, the job as PollForJobs gave it)."""

    def start(**pipeline):
        action_type_create(data=type_data())
        ex = started(custom_pipeline(**pipeline), job_worker_user)
        cp = aws(job_worker_user)
        [job] = poll(cp)
        assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
        return ex, cp, job

    return start


def test_a_boto3_worker_runs_a_custom_action_end_to_end_with_artifacts(
        live_server, aws, worker, job_worker_user):
    action_type_create(data=type_data())
    pipeline = custom_pipeline(ApiToken="s3cret")
    ex = started(pipeline, job_worker_user)
    cp = aws(job_worker_user)

    [job] = poll(cp, queryParam={"ProjectName": "web"})
    data = job["data"]
    assert data["actionTypeId"] == TYPE
    assert data["actionConfiguration"]["configuration"] == {"ProjectName": "web",
                                                            "ApiToken": "s3cret"}
    assert data["pipelineContext"]["pipelineName"] == "custom"
    assert data["pipelineContext"]["stage"]["name"] == "Build"
    assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"
    details = cp.get_job_details(jobId=job["id"])["jobDetails"]["data"]
    [source] = details["inputArtifacts"]
    [built] = details["outputArtifacts"]
    s3 = s3_client(live_server, details["artifactCredentials"])

    loc = source["location"]["s3Location"]
    head = s3.head_object(Bucket=loc["bucketName"], Key=loc["objectKey"])
    body = s3.get_object(Bucket=loc["bucketName"], Key=loc["objectKey"])["Body"].read()
    assert head["ContentLength"] == len(body)
    assert zipfile.ZipFile(io.BytesIO(body)).namelist()   # the Source's zip, as on AWS

    out = built["location"]["s3Location"]
    s3.put_object(Bucket=out["bucketName"], Key=out["objectKey"],
                  Body=zipped({"app.txt": "built by acme"}))
    cp.put_job_success_result(jobId=job["id"], outputVariables={"BuildUrl": "u-1"},
                              executionDetails={"summary": "Acme build 7 passed",
                                                "externalExecutionId": "7",
                                                "percentComplete": 100})

    wait_for(lambda: status(ex) == "Succeeded", what="the execution to succeed")
    ae = ActionExecution.objects.get(execution=ex, action_name="Acme")
    assert ae.output_variables == {"BuildUrl": "u-1"}
    assert ae.summary == "Acme build 7 passed"
    assert ae.external_url == "https://ci.example.com/web/7"
    artifact = Artifact.objects.get(execution=ex, name="Built")
    from executions import artifacts as stored

    with stored.storage().open(artifact.storage_name, "rb") as f:
        assert zipfile.ZipFile(f).read("app.txt") == b"built by acme"
    # The job has ended: its credentials with it.
    with pytest.raises(ClientError) as denied:
        s3.get_object(Bucket=loc["bucketName"], Key=loc["objectKey"])
    assert denied.value.response["Error"]["Code"] == "ExpiredToken"


def test_a_failure_result_fails_the_action_with_its_message(acknowledged):
    ex, cp, job = acknowledged()
    cp.put_job_failure_result(jobId=job["id"], failureDetails={
        "type": "JobFailed", "message": "3 tests failed", "externalExecutionId": "8"})
    wait_for(lambda: status(ex) == "Failed", what="the execution to fail")
    ae = ActionExecution.objects.get(execution=ex, action_name="Acme")
    assert ae.summary == "JobFailed: 3 tests failed"
    assert ae.external_url == "https://ci.example.com/web/8"
    with pytest.raises(cp.exceptions.InvalidJobStateException):
        cp.put_job_success_result(jobId=job["id"])


def test_a_wrong_nonce_is_refused_and_the_job_stays_dispatched(live_server, aws, worker,
                                                             job_worker_user):
    action_type_create(data=type_data())
    started(custom_pipeline(), job_worker_user)
    cp = aws(job_worker_user)
    [job] = poll(cp)
    with pytest.raises(cp.exceptions.InvalidNonceException):
        cp.acknowledge_job(jobId=job["id"], nonce="someone-else")
    assert Job.objects.get(job_id=job["id"]).status == "Dispatched"


def test_a_continuation_token_offers_the_job_again_and_keeps_the_action_in_progress(
        acknowledged):
    ex, cp, job = acknowledged(outputs=False)
    cp.put_job_success_result(jobId=job["id"], continuationToken="page-2",
                              executionDetails={"summary": "deploying 1 of 2",
                                                "percentComplete": 50})
    ae = ActionExecution.objects.get(execution=ex, action_name="Acme")
    assert ae.status == "InProgress" and ae.summary == "deploying 1 of 2"
    [again] = poll(cp)
    assert again["id"] != job["id"]
    assert again["data"]["continuationToken"] == "page-2"
    with pytest.raises(cp.exceptions.ValidationException):   # variables only at the end
        cp.acknowledge_job(jobId=again["id"], nonce=again["nonce"])
        cp.put_job_success_result(jobId=again["id"], continuationToken="page-3",
                                  outputVariables={"a": "b"})
    cp.put_job_success_result(jobId=again["id"], outputVariables={"Done": "yes"})
    wait_for(lambda: status(ex) == "Succeeded", what="the execution to succeed")


def test_an_unacknowledged_job_times_out_at_the_sweep(live_server, aws, worker,
                                                      job_worker_user, settings):
    settings.CONVEYOR_JOB_ACK_SECONDS = 0.5
    action_type_create(data=type_data())
    ex = started(custom_pipeline(), job_worker_user)
    cp = aws(job_worker_user)
    [job] = poll(cp)
    time.sleep(0.6)
    engine.sweep()
    wait_for(lambda: status(ex) == "Failed", what="the execution to fail")
    ae = ActionExecution.objects.get(execution=ex, action_name="Acme")
    assert ae.summary == "Job timed out: not acknowledged within 0.5 s"
    assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "TimedOut"
    with pytest.raises(cp.exceptions.InvalidJobStateException):
        cp.put_job_success_result(jobId=job["id"])


def test_the_action_timeout_fails_an_acknowledged_job_that_never_answers(acknowledged):
    ex, cp, job = acknowledged(timeout=1)
    engine.sweep(now=timezone.now() + timezone.timedelta(minutes=2))
    wait_for(lambda: status(ex) == "Failed", what="the execution to fail")
    assert Job.objects.get(job_id=job["id"]).status == "TimedOut"
    with pytest.raises(cp.exceptions.InvalidJobStateException):
        cp.put_job_failure_result(jobId=job["id"], failureDetails={"type": "JobFailed",
                                                                   "message": "late"})


def test_a_stopped_execution_refuses_a_later_result(acknowledged):
    ex, cp, job = acknowledged()
    cp.stop_pipeline_execution(pipelineName="custom", pipelineExecutionId=str(ex.execution_id),
                               abandon=True, reason="wrong branch")
    wait_for(lambda: status(ex) == "Stopped", what="the execution to stop")
    with pytest.raises(cp.exceptions.InvalidJobStateException):
        cp.put_job_success_result(jobId=job["id"], outputVariables={"x": "y"})
    assert ActionExecution.objects.get(execution=ex, action_name="Acme").status == "Abandoned"


def test_a_third_party_worker_polls_by_client_id_and_answers_with_its_client_token(
        live_server, aws, worker, job_worker_user):
    action_type, token = action_type_create(data=type_data(provider="PartnerScan"),
                                            owner="ThirdParty")
    from pipelines.services import pipeline_save
    from tests.factories import action, definition
    from tests.jobs.conftest import sim

    doc = definition("partner", stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Scan", "Build", "PartnerScan", configuration={"ProjectName": "p"},
                          inputArtifacts=[{"name": "Src"}]) | {"actionTypeId": {
                              "category": "Build", "owner": "ThirdParty",
                              "provider": "PartnerScan", "version": "1"}}]),
    ])
    ex = started(pipeline_save(document=doc).pipeline, job_worker_user)
    cp = aws(job_worker_user)
    third = {**TYPE, "owner": "ThirdParty", "provider": "PartnerScan"}
    with pytest.raises(cp.exceptions.ValidationException):
        cp.poll_for_jobs(actionTypeId=third)          # PollForJobs is for Custom types
    [job] = wait_for(lambda: cp.poll_for_third_party_jobs(actionTypeId=third)["jobs"],
                     what="a third-party job")
    assert job["clientId"] == str(action_type.client_id)
    with pytest.raises(cp.exceptions.InvalidClientTokenException):
        cp.get_third_party_job_details(jobId=job["jobId"], clientToken="guess")
    details = cp.get_third_party_job_details(jobId=job["jobId"], clientToken=token)
    nonce = details["jobDetails"]["nonce"]
    assert cp.acknowledge_third_party_job(jobId=job["jobId"], nonce=nonce,
                                          clientToken=token)["status"] == "InProgress"
    cp.put_third_party_job_success_result(jobId=job["jobId"], clientToken=token,
                                          executionDetails={"summary": "no findings"})
    wait_for(lambda: status(ex) == "Succeeded", what="the execution to succeed")
    with pytest.raises(cp.exceptions.InvalidJobStateException):
        cp.put_third_party_job_failure_result(jobId=job["jobId"], clientToken=token,
                                              failureDetails={"type": "JobFailed",
                                                              "message": "late"})


def test_artifact_credentials_reach_only_their_own_jobs_objects(live_server, aws, worker,
                                                                job_worker_user):
    action_type_create(data=type_data())
    started(custom_pipeline("one"), job_worker_user)
    started(custom_pipeline("two", project="api"), job_worker_user)
    cp = aws(job_worker_user)
    [first] = poll(cp, queryParam={"ProjectName": "web"})
    [second] = poll(cp, queryParam={"ProjectName": "api"})
    s3 = s3_client(live_server, first["data"]["artifactCredentials"])
    mine = first["data"]["inputArtifacts"][0]["location"]["s3Location"]
    theirs = second["data"]["inputArtifacts"][0]["location"]["s3Location"]
    assert s3.get_object(Bucket=mine["bucketName"], Key=mine["objectKey"])["Body"].read()
    for bucket, key in ((theirs["bucketName"], theirs["objectKey"]),
                        ("other-bucket", mine["objectKey"])):
        with pytest.raises(ClientError) as denied:
            s3.get_object(Bucket=bucket, Key=key)
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as denied:       # inputs are read-only
        s3.put_object(Bucket=mine["bucketName"], Key=mine["objectKey"], Body=zipped({}))
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    # The same credentials are no key of /aws/.
    creds = first["data"]["artifactCredentials"]
    as_key = aws(key_id=creds["accessKeyId"], secret=creds["secretAccessKey"])
    with pytest.raises(ClientError) as refused:
        as_key.list_pipelines()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    # A forged session token is refused.
    forged = s3_client(live_server, {**creds, "sessionToken": "forged"})
    with pytest.raises(ClientError) as bad:
        forged.get_object(Bucket=mine["bucketName"], Key=mine["objectKey"])
    assert bad.value.response["Error"]["Code"] == "InvalidToken"


def test_a_user_who_may_not_operate_pipelines_cannot_poll(live_server, aws, worker):
    ensure_role_groups()
    viewer = User.objects.create_user("vera", "v@example.com", "pw")
    viewer.groups.add(Group.objects.get(name="viewers"))
    action_type_create(data=type_data())
    cp = aws(viewer)
    with pytest.raises(ClientError) as denied:
        cp.poll_for_jobs(actionTypeId=TYPE)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


def test_boto3_registers_reads_updates_lists_and_deletes_a_custom_action_type(
        live_server, aws, owner):
    for codename in ("add_customactiontype", "delete_customactiontype",
                     "change_customactiontype"):
        owner.user_permissions.add(Permission.objects.get(codename=codename))
    cp = aws(owner)
    data = type_data()
    made = cp.create_custom_action_type(
        category=data["category"], provider=data["provider"], version=data["version"],
        settings=data["settings"], configurationProperties=data["configurationProperties"],
        inputArtifactDetails=data["inputArtifactDetails"],
        outputArtifactDetails=data["outputArtifactDetails"])["actionType"]
    assert made["id"] == TYPE
    assert made["actionConfigurationProperties"][0]["queryable"] is True
    with pytest.raises(cp.exceptions.ValidationException):    # the same id again
        cp.create_custom_action_type(**{k: data[k] for k in (
            "category", "provider", "version", "inputArtifactDetails", "outputArtifactDetails")})
    listed = cp.list_action_types(actionOwnerFilter="Custom")["actionTypes"]
    assert TYPE in [t["id"] for t in listed]
    assert any(t["id"]["provider"] == "Shell" for t in listed)       # built-ins too
    assert cp.list_action_types(actionOwnerFilter="ThirdParty")["actionTypes"] == []
    declared = cp.get_action_type(**TYPE)["actionType"]
    assert declared["properties"][1] == {"name": "ApiToken", "optional": True, "key": False,
                                         "noEcho": True, "queryable": False}
    declared["urls"]["entityUrlTemplate"] = "https://ci.example.com/p/{Config:ProjectName}"
    declared["description"] = "Acme's builds"
    cp.update_action_type(actionType=declared)
    again = cp.get_action_type(**TYPE)["actionType"]
    assert again["urls"]["entityUrlTemplate"] == "https://ci.example.com/p/{Config:ProjectName}"
    assert again["description"] == "Acme's builds"
    cp.delete_custom_action_type(category="Build", provider="AcmeBuild", version="1")
    with pytest.raises(cp.exceptions.ActionTypeNotFoundException):
        cp.get_action_type(**TYPE)
    with pytest.raises(cp.exceptions.ActionTypeNotFoundException):
        cp.poll_for_jobs(actionTypeId=TYPE)
    assert TYPE not in [t["id"] for t in cp.list_action_types()["actionTypes"]]


def test_get_pipeline_masks_a_custom_actions_secret(live_server, aws, owner):
    action_type_create(data=type_data())
    custom_pipeline(ApiToken="hunter2")
    config = aws(owner).get_pipeline(name="custom")["pipeline"]["stages"][1]["actions"][0][
        "configuration"]
    assert config == {"ProjectName": "web", "ApiToken": "****"}


def test_a_large_output_is_uploaded_in_parts_by_boto3s_upload_fileobj(live_server,
                                                                    acknowledged):
    from boto3.s3.transfer import TransferConfig

    ex, cp, job = acknowledged()
    s3 = s3_client(live_server, job["data"]["artifactCredentials"])
    out = job["data"]["outputArtifacts"][0]["location"]["s3Location"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("big.bin", os.urandom(6 * 1024 * 1024))
    five = 5 * 1024 * 1024
    buffer.seek(0)
    s3.upload_fileobj(buffer, out["bucketName"], out["objectKey"],
                      Config=TransferConfig(multipart_threshold=five, multipart_chunksize=five,
                                            use_threads=False))
    size = s3.head_object(Bucket=out["bucketName"], Key=out["objectKey"])["ContentLength"]
    assert size == len(buffer.getvalue())
    cp.put_job_success_result(jobId=job["id"])
    wait_for(lambda: status(ex) == "Succeeded", what="the execution to succeed")
    assert Artifact.objects.get(execution=ex, name="Built").size == size
