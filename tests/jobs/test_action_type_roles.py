"""Who manages custom action types (docs/job-workers.md): the Django groups "owners" and
"administrators" register, change and delete them — through REST, the AWS endpoint and
the admin — as the data migration ``jobs/0002_action_type_roles`` grants; operators,
viewers and reviewers may only read them."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from rest_framework.test import APIClient

from awsapi import errors
from awsapi.operations import dispatch
from jobs.models import CustomActionType
from tests.jobs.conftest import type_data
from tests.roles import ensure_role_groups

MANAGERS = {"owners", "administrators"}


def _member(group: str, **extra) -> User:
    ensure_role_groups()
    user = User.objects.create_user(f"m-{group}", f"{group}@example.com", "pw", **extra)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.mark.parametrize("group", ["owners", "administrators", "operators", "viewers",
                                   "reviewers"])
def test_owners_and_administrators_manage_custom_action_types_and_others_read(db, group):
    user = _member(group)
    api = APIClient()
    api.force_authenticate(user)
    made = api.post("/api/action-types/", type_data(), format="json")
    url = "/api/action-types/Build/Custom/AcmeBuild/1/"
    if group in MANAGERS:
        assert made.status_code == 201, made.content
        assert api.get(url).status_code == 200
        assert api.put(url, type_data(description="v2"), format="json").status_code == 200
        assert api.delete(url).status_code == 204
    else:
        assert made.status_code == 403
        assert not CustomActionType.objects.exists()
        assert api.get("/api/action-types/").status_code == 200


@pytest.mark.parametrize("group", ["owners", "administrators", "operators"])
def test_the_aws_endpoint_lets_the_same_groups_create_a_custom_action_type(db, group):
    caller = SimpleNamespace(user=_member(group), region="eu-west-1")
    data = type_data()
    body = {k: data[k] for k in ("category", "provider", "version", "settings",
                                 "configurationProperties", "inputArtifactDetails",
                                 "outputArtifactDetails")}
    if group in MANAGERS:
        made = dispatch("CreateCustomActionType", caller, body)
        assert made["actionType"]["id"]["provider"] == "AcmeBuild"
    else:
        with pytest.raises(errors.AwsError) as refused:
            dispatch("CreateCustomActionType", caller, body)
        assert refused.value.code == "AccessDeniedException"


def test_a_staff_owner_registers_a_type_in_the_admin(db):
    owner = _member("owners", is_staff=True)
    client = Client()
    client.force_login(owner)
    assert client.get("/admin/jobs/customactiontype/").status_code == 200
    assert client.get("/admin/jobs/customactiontype/add/").status_code == 200
    viewer = _member("viewers", is_staff=True)
    client.force_login(viewer)
    assert client.get("/admin/jobs/customactiontype/").status_code == 200
    assert client.get("/admin/jobs/customactiontype/add/").status_code == 403
