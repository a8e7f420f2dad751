"""Jobs follow the pipeline groups: a job is offered to, looked up by and answered by
only a user holding the operator (or owner) role on its pipeline's group
(``jobs.services.may_work`` through ``teams.access``). The job operations name no
pipeline, so they filter instead of refusing (tests/security/test_group_roles.py)."""

import pytest
from django.contrib.auth.models import User

from jobs import errors, services
from jobs.models import Job
from pipelines.models import Pipeline
from teams.choices import Role
from teams.models import PipelineGroup, RoleGrant
from tests.jobs.conftest import TYPE, custom_pipeline

MAY_WORK = {Role.OPERATOR, Role.OWNER}


@pytest.fixture
def jobs_of_two_groups(driver, acme):
    jobs = {}
    for side in ("alpha", "beta"):
        group = PipelineGroup.objects.create(name=side)
        pipeline = custom_pipeline(f"custom-{side}")
        Pipeline.objects.filter(pk=pipeline.pk).update(group=group)
        ex = driver.start(pipeline)
        driver.run()
        jobs[side] = Job.objects.get(action_execution__execution=ex)
    return jobs


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_a_user_works_only_the_jobs_of_groups_where_they_operate(jobs_of_two_groups, role):
    user = User.objects.create_user(f"w-{role}", f"{role}@example.com", "pw")
    RoleGrant.objects.create(pipeline_group=PipelineGroup.objects.get(name="alpha"),
                             role=role, user=user)
    alpha, beta = jobs_of_two_groups["alpha"], jobs_of_two_groups["beta"]

    offered = services.job_poll(action_type=TYPE, max_batch_size=10, user=user)
    assert [j.job_id for j in offered] == ([alpha.job_id] if role in MAY_WORK else [])
    # beta's job is never offered nor found, whatever the role held in alpha
    with pytest.raises(errors.JobNotFound):
        services.job_get(job_id=str(beta.job_id), user=user)
    if role not in MAY_WORK:
        with pytest.raises(errors.JobNotFound):
            services.job_get(job_id=str(alpha.job_id), user=user)
