"""The pipeline-groups REST contract: ``/api/pipeline-groups/`` and ``metadata.group``."""

import pytest
from django.contrib.auth.models import Group, User

from observability.models import AuditEntry
from pipelines.models import Pipeline
from teams.access import pipeline_allows
from teams.models import PipelineGroup
from tests.approvals.conftest import (  # noqa: F401  (fixtures)
    _inline_approval_tasks,
    _quiet_heartbeat,
    release,
    release_pipeline,
)
from tests.executions.conftest import (
    driver,  # noqa: F401  (fixture)
    simple_pipeline,
)

pytestmark = pytest.mark.django_db
LIST = "/api/pipeline-groups/"


@pytest.fixture
def admin_user():
    user = User.objects.create_user("ada")
    user.groups.add(Group.objects.get_or_create(name="administrators")[0])
    return user


def test_an_administrator_makes_a_group_with_roles_and_reads_it_back(api, admin_user, viewer):
    Group.objects.get_or_create(name="payments-devs")
    body = {"name": "payments", "description": "The payments team",
            "roles": [{"role": "owner", "user": "vera"},
                      {"role": "operator", "group": "payments-devs"}]}
    created = api(admin_user).post(LIST, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json() == body
    assert api(admin_user).get(LIST + "payments/").json() == body
    names = [g["name"] for g in api(admin_user).get(LIST).json()["results"]]
    assert names == ["default", "payments"]
    entry = AuditEntry.objects.filter(action="group.roles").get()
    assert entry.actor == "ada" and entry.detail["group"] == "payments"
    assert entry.detail["after"] == body["roles"]


def test_every_problem_of_a_body_is_named_at_its_path(api, admin_user):
    answer = api(admin_user).post(LIST, {"name": "bad name!", "roles": [
        {"role": "boss", "user": "vera"}, {"role": "viewer", "user": "nobody"},
        {"role": "viewer", "user": "x", "group": "y"}, {"role": "viewer"},
        {"role": "viewer", "group": "no-such-group"}], "colour": "red"}, format="json")
    assert answer.status_code == 400
    paths = {e["path"]: e["message"] for e in answer.json()["errors"]}
    assert "unknown role 'boss'" in paths["roles[0].role"]
    assert paths["roles[1].user"] == 'no user is named "nobody"'
    assert "both a user and a group" in paths["roles[2]"]
    assert "neither a user nor a group" in paths["roles[3]"]
    assert paths["roles[4].group"] == 'no Django group is named "no-such-group"'
    assert "name" in paths and paths["colour"] == "unknown field"
    assert not PipelineGroup.objects.exclude(name="default").exists()


def test_owners_change_their_group_and_others_may_not(api, admin_user, viewer, operator):
    api(admin_user).post(LIST, {"name": "web", "roles": [
        {"role": "owner", "user": "vera"}, {"role": "viewer", "user": "oscar"}]}, format="json")
    assert api(operator).put(LIST + "web/", {"name": "web", "roles": []},
                             format="json").status_code == 403
    changed = api(viewer).put(LIST + "web/", {"name": "web", "description": "d", "roles": [
        {"role": "owner", "user": "vera"}]}, format="json")
    assert changed.status_code == 200, changed.json()
    assert api(operator).get(LIST + "web/").status_code == 404   # no longer a member
    assert api(viewer).delete(LIST + "web/").status_code == 403  # administrators delete


def test_a_group_holding_pipelines_is_not_deleted(api, admin_user):
    api(admin_user).post(LIST, {"name": "web"}, format="json")
    pipeline = simple_pipeline("site")
    Pipeline.objects.filter(pk=pipeline.pk).update(group=PipelineGroup.objects.get(name="web"))
    refused = api(admin_user).delete(LIST + "web/")
    assert refused.status_code == 409
    assert "still holds pipelines (site)" in refused.json()["detail"]
    Pipeline.objects.filter(pk=pipeline.pk).delete()
    assert api(admin_user).delete(LIST + "web/").status_code == 204
    assert AuditEntry.objects.filter(action="group.roles", detail__change="delete").exists()


def test_metadata_group_places_and_moves_a_pipeline(api, admin_user, owner):
    from tests.factories import definition

    api(admin_user).post(LIST, {"name": "web", "roles": [{"role": "owner", "user": "olivia"}]},
                         format="json")
    doc = definition("site")
    created = api(owner).post("/api/pipelines/", {"pipeline": doc,
                                                  "metadata": {"group": "web"}}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["metadata"]["group"] == "web"
    assert api(owner).get("/api/pipelines/site/").json()["metadata"]["group"] == "web"
    moved = api(owner).put("/api/pipelines/site/", {"pipeline": doc,
                                                    "metadata": {"group": "default"}},
                           format="json")
    assert moved.status_code == 200 and moved.json()["metadata"]["group"] == "default"
    unknown = api(owner).put("/api/pipelines/site/", {"pipeline": doc,
                                                      "metadata": {"group": "nope"}},
                             format="json")
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["path"] == "metadata.group"


def test_a_named_reviewer_must_also_hold_the_reviewer_role(release, owner, viewer):  # noqa: F811
    from approvals.services import approval_refusal, approval_reviewers
    from teams.models import RoleGrant

    vera_named = release_pipeline("named", Reviewers="vera")
    approval = release.to_approval(vera_named, user=owner)
    viewer.email = "vera@example.com"
    viewer.save()
    assert "not a reviewer" in approval_refusal(request=approval, user=viewer)
    assert list(approval_reviewers(request=approval)) == []    # nobody to notify
    RoleGrant.objects.create(pipeline_group=vera_named.group, role="reviewer", user=viewer)
    viewer = User.objects.get(pk=viewer.pk)                    # a new request's user
    assert approval_refusal(request=approval, user=viewer) is None
    assert list(approval_reviewers(request=approval)) == [viewer]
    assert pipeline_allows(viewer, vera_named, "review")
