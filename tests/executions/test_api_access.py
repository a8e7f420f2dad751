"""Who may do what through the executions API: the five personas on every endpoint.

Viewers read; operators and owners also start, stop, retry, roll back and
toggle transitions; an outsider (signed in, in no group) is refused everything
with 403 before any lookup, as in the pipelines API; an anonymous caller 401.
A refused request changes nothing.
"""

import pytest
from django.contrib.auth.models import Group

from executions.models import ActionExecution, ExecutionEvent, PipelineExecution
from tests.executions.conftest import sim, simple_pipeline
from tests.executions.test_api import post


@pytest.fixture
def world(driver, owner):
    """#1 succeeded (artifacts, logs), #2 failed in Build, #3 holds the Source stage."""
    simple_pipeline(
        stages=[("Build", [sim("Compile", Outcome="#{variables.outcome}")]),
                ("Deploy", [sim("Release")])],
        variables=[{"name": "outcome", "defaultValue": "Succeeded"}],
    )
    from pipelines.models import Pipeline

    pipeline = Pipeline.objects.get()
    first = driver.start(pipeline, user=owner)
    driver.run()
    second = driver.start(pipeline, user=owner, variables={"outcome": "Failed"})
    driver.run()
    third = driver.start(pipeline, user=owner)
    assert [e.status for e in PipelineExecution.objects.order_by("number")] == [
        "Succeeded", "Failed", "InProgress"]
    return {"first": first, "second": second, "third": third,
            "log": ActionExecution.objects.get(execution=first, action_name="Compile")}


def requests(world):
    first, second, third = world["first"], world["second"], world["third"]
    ae = world["log"]
    return {
        "state": ("get", "/api/pipelines/demo/state/", None),
        "transition": ("post", "/api/pipelines/demo/stages/Deploy/transition/",
                       {"enabled": False, "reason": "freeze"}),
        "list": ("get", "/api/pipelines/demo/executions/", None),
        "start": ("post", "/api/pipelines/demo/executions/", {}),
        "detail": ("get", f"/api/executions/{first.execution_id}/", None),
        "stop": ("post", f"/api/executions/{third.execution_id}/stop/", {"abandon": True}),
        "retry": ("post", f"/api/executions/{second.execution_id}/stages/Build/retry/",
                  {"retryMode": "FAILED_ACTIONS"}),
        "rollback": ("post", "/api/pipelines/demo/stages/Deploy/rollback/",
                     {"targetPipelineExecutionId": str(first.execution_id)}),
        "actions": ("get", f"/api/executions/{first.execution_id}/actions/", None),
        "log": ("get", f"/api/action-executions/{ae.action_execution_id}/log/", None),
        "artifact": ("get", f"/api/executions/{first.execution_id}/artifacts/Src/", None),
        "events": ("get", f"/api/executions/{first.execution_id}/events/", None),
    }


READS = {"state": 200, "list": 200, "detail": 200, "actions": 200, "log": 200,
         "artifact": 200, "events": 200}
COMMANDS = {"transition": 200, "start": 201, "stop": 200, "retry": 200, "rollback": 201}
ENDPOINTS = [*READS, *COMMANDS]
EXPECTED = {
    "owner": {**READS, **COMMANDS},
    "operator": {**READS, **COMMANDS},
    "viewer": {**READS, **dict.fromkeys(COMMANDS, 403)},
    "outsider": dict.fromkeys(ENDPOINTS, 403),
    "anonymous": dict.fromkeys(ENDPOINTS, 401),
}


def snapshot():
    return (list(PipelineExecution.objects.order_by("number").values_list("status", flat=True)),
            ExecutionEvent.objects.count(), ActionExecution.objects.count())


@pytest.mark.parametrize("persona", list(EXPECTED))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_each_persona_gets_what_its_role_allows(driver, api, request, world, persona, endpoint):
    user = None if persona == "anonymous" else request.getfixturevalue(persona)
    method, url, body = requests(world)[endpoint]
    before = snapshot()
    client = api(user)
    response = client.get(url) if method == "get" else post(driver, client, url, body)
    assert response.status_code == EXPECTED[persona][endpoint], response.content
    if response.status_code in (401, 403):
        assert set(response.json()) == {"detail"}
        assert snapshot() == before                      # nothing changed
    elif method == "post":
        assert snapshot() != before                      # the command did something


def test_an_outsider_learns_nothing_about_what_exists(api, outsider, world):
    missing = api(outsider).get("/api/executions/00000000-0000-0000-0000-000000000000/")
    present = api(outsider).get(f"/api/executions/{world['first'].execution_id}/")
    assert missing.status_code == present.status_code == 403
    assert missing.json() == present.json()


def test_an_anonymous_caller_is_told_to_authenticate_with_a_token(api, world):
    response = api(None).get("/api/pipelines/demo/executions/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_viewer_granted_the_operator_role_on_the_group_may_stop(driver, api, viewer, world):
    from teams.models import RoleGrant

    url = f"/api/executions/{world['third'].execution_id}/stop/"
    assert post(driver, api(viewer), url, {"abandon": True}).status_code == 403
    RoleGrant.objects.create(pipeline_group=world["third"].pipeline.group, role="operator",
                             user=viewer)
    assert post(driver, api(viewer), url, {"abandon": True}).status_code == 200


def test_reading_needs_a_role_on_the_pipelines_group_not_a_model_permission(api, world):
    from django.contrib.auth.models import Permission, User

    from teams.models import RoleGrant

    user = User.objects.create_user("half")
    user.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_pipelineexecution", "view_pipeline"]))
    assert api(user).get("/api/pipelines/demo/executions/").status_code == 403
    RoleGrant.objects.create(pipeline_group=world["third"].pipeline.group, role="viewer",
                             user=user)
    assert api(user).get("/api/pipelines/demo/executions/").status_code == 200


def test_the_role_groups_hold_the_execution_permissions(db):
    perms = {g.name: set(g.permissions.values_list("codename", flat=True))
             for g in Group.objects.filter(name__in=["viewers", "operators", "owners"])}
    commands = {"start_pipelineexecution", "stop_pipelineexecution", "retry_pipelineexecution",
                "rollback_pipelineexecution", "toggle_transition"}
    assert "view_pipelineexecution" in perms["viewers"] and not commands & perms["viewers"]
    assert commands <= perms["operators"] and commands <= perms["owners"]
