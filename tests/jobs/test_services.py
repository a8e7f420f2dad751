"""The job services (the contract Conveyor's agent builds on), driven through the engine."""

import pytest
from django.utils import timezone

from executions import engine
from executions.choices import ActionExecutionStatus as A
from executions.models import ActionExecution, PipelineExecution
from jobs import errors, services
from jobs.choices import JobStatus
from jobs.models import Job
from tests.jobs.conftest import TYPE, custom_pipeline


def _to_job(driver, **kwargs):
    pipeline = custom_pipeline(**kwargs)
    ex = driver.start(pipeline)
    driver.run()   # Source runs; the Build action becomes a job and waits
    return ex, Job.objects.get(action_execution__execution=ex)


def test_a_custom_action_becomes_a_queued_job_and_no_worker_holds_it(driver, acme):
    ex, job = _to_job(driver)
    ae = job.action_execution
    assert job.status == JobStatus.QUEUED and job.query_value == "web"
    assert ae.status == A.IN_PROGRESS and ae.waiting_since is not None
    assert ae.lease_expires_at is None          # no django-q2 worker holds a lease on it
    assert job.data["inputArtifacts"] == ["Src"] and job.data["outputArtifacts"] == ["Built"]


def test_poll_acknowledge_and_succeed_end_the_action_with_its_variables(driver, acme):
    ex, job = _to_job(driver, outputs=False)
    [polled] = services.job_poll(action_type=TYPE, query={"ProjectName": "web"})
    assert polled.status == JobStatus.DISPATCHED and polled.nonce
    assert services.job_poll(action_type=TYPE) == []      # handed out once
    with pytest.raises(errors.InvalidNonce):
        services.job_acknowledge(job_id=str(job.job_id), nonce="not-it")
    assert services.job_acknowledge(job_id=str(job.job_id), nonce=polled.nonce) == "InProgress"
    driver.call(services.job_succeed, job_id=str(job.job_id), output_variables={"Url": "x"},
                execution_details={"summary": "built", "externalExecutionId": "42"})
    ae = ActionExecution.objects.get(pk=job.action_execution_id)
    assert ae.status == A.SUCCEEDED and ae.output_variables == {"Url": "x"}
    assert ae.summary == "built" and ae.external_url == "https://ci.example.com/web/42"
    assert PipelineExecution.objects.get(pk=ex.pk).status == "Succeeded"


def test_a_query_param_for_another_value_finds_nothing(driver, acme):
    _to_job(driver)
    assert services.job_poll(action_type=TYPE, query={"ProjectName": "api"}) == []


def test_failure_fails_the_action_with_the_type_and_message(driver, acme):
    ex, job = _to_job(driver)
    [polled] = services.job_poll(action_type=TYPE)
    services.job_acknowledge(job_id=str(job.job_id), nonce=polled.nonce)
    driver.call(services.job_fail, job_id=str(job.job_id), failure_type="JobFailed",
                message="tests failed")
    ae = ActionExecution.objects.get(pk=job.action_execution_id)
    assert ae.status == A.FAILED and ae.summary == "JobFailed: tests failed"
    with pytest.raises(errors.InvalidJobState):
        services.job_fail(job_id=str(job.job_id), failure_type="JobFailed", message="again")


def test_a_continuation_queues_the_next_job_with_the_token(driver, acme):
    ex, job = _to_job(driver, outputs=False)
    [polled] = services.job_poll(action_type=TYPE)
    services.job_acknowledge(job_id=str(job.job_id), nonce=polled.nonce)
    driver.call(services.job_succeed, job_id=str(job.job_id), continuation_token="step-2",
                execution_details={"summary": "half way", "percentComplete": 50})
    ae = ActionExecution.objects.get(pk=job.action_execution_id)
    assert ae.status == A.IN_PROGRESS and ae.summary == "half way"
    [again] = services.job_poll(action_type=TYPE)
    assert again.continuation_token == "step-2" and again.attempt == 2
    services.job_acknowledge(job_id=str(again.job_id), nonce=again.nonce)
    with pytest.raises(errors.JobInvalid):
        services.job_succeed(job_id=str(again.job_id), continuation_token="t",
                             output_variables={"a": "b"})


def test_an_unacknowledged_job_times_out_at_the_sweep_and_fails_its_action(driver, acme,
                                                                        settings):
    settings.CONVEYOR_JOB_ACK_SECONDS = 0.0
    ex, job = _to_job(driver)
    services.job_poll(action_type=TYPE)
    driver.call(engine.sweep, now=timezone.now() + timezone.timedelta(seconds=1))
    job.refresh_from_db()
    ae = ActionExecution.objects.get(pk=job.action_execution_id)
    assert job.status == JobStatus.TIMED_OUT
    assert ae.status == A.FAILED and "not acknowledged" in ae.summary


def test_stopping_the_execution_ends_the_job_and_a_later_result_is_refused(driver, acme,
                                                                          operator):
    from executions import services as execution_services

    ex, job = _to_job(driver)
    [polled] = services.job_poll(action_type=TYPE)
    services.job_acknowledge(job_id=str(job.job_id), nonce=polled.nonce)
    driver.call(execution_services.execution_stop, execution=ex, abandon=True, reason="no",
                user=operator)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    with pytest.raises(errors.InvalidJobState):
        services.job_succeed(job_id=str(job.job_id))
