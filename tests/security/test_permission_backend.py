"""config.auth_backends.ModelBackend grants exactly what Django's ModelBackend grants.

It reads a user's permissions (own and through groups) in one query compiled
once per process instead of two built per request; each case here is
compared with Django's own backend on the same user.
"""

import pytest
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from config.auth_backends import ModelBackend

pytestmark = pytest.mark.django_db


def _both(user: User) -> tuple[set, set]:
    """(ours, Django's), each on a fresh copy of the user (no cached permissions)."""
    ours = ModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
    django = DjangoModelBackend().get_all_permissions(User.objects.get(pk=user.pk))
    return ours, django


def test_own_and_group_permissions_are_djangos(operator, viewer):
    operator.user_permissions.add(Permission.objects.get(codename="add_group"))
    ours, django = _both(operator)
    assert ours == django
    assert {"auth.add_group", "executions.start_pipelineexecution",
            "pipelines.view_pipeline"} <= ours
    ours, django = _both(viewer)
    assert ours == django and "executions.start_pipelineexecution" not in ours


def test_a_user_in_no_group_and_an_inactive_one_have_none(outsider, operator):
    assert _both(outsider) == (set(), set())
    operator.is_active = False
    operator.save()
    assert _both(operator) == (set(), set())


def test_a_superuser_has_them_all(db):
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    ours, django = _both(root)
    assert ours == django and len(ours) == Permission.objects.count()


def test_leaving_a_group_takes_its_permissions_away(operator):
    operator.groups.remove(Group.objects.get(name="operators"))
    assert _both(operator) == (set(), set())


def test_one_query_then_the_requests_cache(operator):
    user = User.objects.get(pk=operator.pk)
    with CaptureQueriesContext(connection) as captured:
        assert user.has_perm("executions.start_pipelineexecution")
        assert user.has_perms(["pipelines.view_pipeline", "executions.stop_pipelineexecution"])
        assert not user.has_perm("pipelines.delete_pipeline")
    assert len(captured) == 1
