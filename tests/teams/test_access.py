"""teams.access: one query per user object (per request), then answers from the cache."""

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.models import Pipeline
from teams.access import pipeline_allows, pipelines_visible, visible_group_ids
from teams.models import PipelineGroup, RoleGrant
from tests.executions.conftest import simple_pipeline

pytestmark = pytest.mark.django_db


def test_a_users_roles_are_read_with_one_query_and_then_cached():
    web = PipelineGroup.objects.create(name="web")
    team = Group.objects.create(name="web-team")
    pipeline = simple_pipeline("site")
    Pipeline.objects.filter(pk=pipeline.pk).update(group=web)
    pipeline.refresh_from_db()
    user = User.objects.create_user("u")
    user.groups.add(team)
    RoleGrant.objects.create(pipeline_group=web, role="viewer", user=user)
    RoleGrant.objects.create(pipeline_group=web, role="operator", group=team)
    user = User.objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as queries:
        assert pipeline_allows(user, pipeline, "operate")      # through the Django group
        assert not pipeline_allows(user, pipeline, "own")
        assert not pipeline_allows(user, pipeline, "review")
        assert visible_group_ids(user) == {web.pk}
    assert len(queries) == 1
    assert list(pipelines_visible(user).values_list("name", flat=True)) == ["site"]


def test_administrators_and_superusers_may_do_everything_and_strangers_nothing():
    pipeline = simple_pipeline("site")
    admin = User.objects.create_user("a")
    admin.groups.add(Group.objects.get_or_create(name="administrators")[0])
    root = User.objects.create_superuser("r", "r@example.com", "pw")
    stranger = User.objects.create_user("s")
    for act in ("view", "operate", "review", "own"):
        assert pipeline_allows(admin, pipeline, act) and pipeline_allows(root, pipeline, act)
        assert not pipeline_allows(stranger, pipeline, act)
    assert visible_group_ids(admin) is None and visible_group_ids(stranger) == set()
