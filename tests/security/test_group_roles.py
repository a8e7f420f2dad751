"""Every surface, per pipeline-group role: each URL pattern (walked from the resolver),
each websocket route and each AWS operation, for a user holding ONE role (viewer,
operator, reviewer, owner) in group "alpha" and none in group "beta".

On alpha's objects a request is allowed when the role's acts
(``teams.choices.ROLE_ACTS``) include the act the table names, else 403; on beta's
objects it is 404 (AWS: the operation's not-found error), whatever the role — except
that a write one's roles allow nowhere may be refused with 403 before any look-up,
for every name alike. List routes answer 200 without beta's pipeline in them. Every
request runs in a savepoint that is rolled back, so what an allowed request changes
does not leak into the next one.

How to extend (a new endpoint makes ``test_every_url_pattern_is_classified`` or
``test_every_aws_operation_is_classified`` fail until it is classified here):

- a URL pattern: add its name to ``ROUTES`` — ``on_pipeline({"GET": VIEW, "POST":
  OPERATE})`` when its path names a pipeline, execution, approval or rule (give the
  path's sample in ``tests/security/conftest.py``'s ``SAMPLES``/``BY_ROUTE`` if the
  walk cannot build it), ``listing(...)`` for a list filtered by visibility, or
  ``not_per_pipeline("why")`` for what is not per pipeline (shared resources,
  signed or token-authenticated routes: say why). Admin routes are classified by
  model in ``ADMIN_SCOPED``/``ADMIN_GLOBAL``.
- an AWS operation: add it to ``AWS`` with the act it needs and a body for a pipeline
  name (``None`` for operations naming no pipeline).
- a websocket route: add its path and expectation to ``WEBSOCKETS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from asgiref.sync import async_to_sync
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.test import Client

from teams.choices import ROLE_ACTS, Act, Role
from tests.security.conftest import all_routes

VIEW, OPERATE, REVIEW, OWN = Act.VIEW, Act.OPERATE, Act.REVIEW, Act.OWN
ADMINISTER = "administer"       # no role of a group allows it: administrators only
ROLES = [r.value for r in Role]
BETA_NAME = "beta-secret-pipe"  # never shown to anyone holding no role in beta


@dataclass(frozen=True)
class Rule:
    kind: str                                  # "pipeline" | "list" | "global" | "effect"
    acts: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def on_pipeline(acts: dict[str, str]) -> Rule:
    return Rule("pipeline", acts)


def listing(acts: dict[str, str] | None = None) -> Rule:
    """GET answers 200 (or 403 when the role allows the GET act nowhere), never naming
    beta's pipeline; other methods act on the pipeline or group named in the body."""
    return Rule("list", acts or {"GET": VIEW})


def decides(act: str) -> Rule:
    """A page that redirects whatever happens: judged by whether a decision was recorded."""
    return Rule("effect", {"POST": act})


def not_per_pipeline(reason: str) -> Rule:
    return Rule("global", reason=reason)


ROUTES: dict[str, Rule] = {
    # dashboard
    "home": listing(), "dashboard:pipelines": listing(), "dashboard:insights-overview": listing(),
    "dashboard:pipeline": on_pipeline({"GET": VIEW}),
    "dashboard:release": on_pipeline({"POST": OPERATE}),
    "dashboard:transition": on_pipeline({"POST": OPERATE}),
    "dashboard:history": on_pipeline({"GET": VIEW}),
    "dashboard:insights": on_pipeline({"GET": VIEW}),
    "dashboard:execution": on_pipeline({"GET": VIEW}),
    "dashboard:stop": on_pipeline({"POST": OPERATE}),
    "dashboard:retry": on_pipeline({"POST": OPERATE}),
    "dashboard:action": on_pipeline({"GET": VIEW}),
    "dashboard:action-log": on_pipeline({"GET": VIEW}),
    "dashboard:rule-log": on_pipeline({"GET": VIEW}),
    "dashboard-review": decides(REVIEW),
    "pipeline-audit": on_pipeline({"GET": OWN}),
    # approvals
    "approvals:inbox": listing(),
    "approvals:decide": decides(REVIEW),
    "approvals:link": not_per_pipeline("a signed link for one reviewer; deciding through it "
                                       "asks approval_refusal, the reviewer role included "
                                       "(test_approvals' link tests)"),
    "api-approval-list": listing(),
    "api-approval-decision": on_pipeline({"POST": REVIEW}),
    # pipelines
    "api-pipeline-list": listing({"GET": VIEW, "POST": OWN}),
    "api-pipeline-detail": on_pipeline({"GET": VIEW, "PUT": OWN, "DELETE": OWN}),
    "api-pipeline-webhook": on_pipeline({"GET": VIEW, "PUT": OWN}),
    "api-pipeline-version-list": on_pipeline({"GET": VIEW}),
    "api-pipeline-version-detail": on_pipeline({"GET": VIEW}),
    "api-pipeline-group-list": listing({"GET": VIEW, "POST": ADMINISTER}),
    "api-pipeline-group-detail": on_pipeline({"GET": VIEW, "PUT": OWN, "DELETE": ADMINISTER}),
    # executions
    "api-pipeline-state": on_pipeline({"GET": VIEW}),
    "api-stage-transition": on_pipeline({"POST": OPERATE}),
    "api-stage-rollback": on_pipeline({"POST": OPERATE}),
    "api-execution-list": on_pipeline({"GET": VIEW, "POST": OPERATE}),
    "api-execution-detail": on_pipeline({"GET": VIEW}),
    "api-execution-stop": on_pipeline({"POST": OPERATE}),
    "api-stage-retry": on_pipeline({"POST": OPERATE}),
    "api-stage-condition-override": on_pipeline({"POST": OPERATE}),
    "api-action-execution-list": on_pipeline({"GET": VIEW}),
    "api-execution-events": on_pipeline({"GET": VIEW}),
    "api-artifact-download": on_pipeline({"GET": VIEW}),
    "api-action-execution-log": on_pipeline({"GET": VIEW}),
    "api-rule-log": on_pipeline({"GET": VIEW}),
    # audit, notifications
    "api-audit": listing({"GET": OWN}), "api-audit-export": listing({"GET": OWN}),
    "api-notification-rules": listing({"GET": VIEW, "POST": OWN}),
    "api-notification-rule": on_pipeline({"GET": VIEW, "PUT": OWN, "PATCH": OWN,
                                          "DELETE": OWN}),
    "api-notification-deliveries": on_pipeline({"GET": VIEW}),
    # not per pipeline
    "login": not_per_pipeline("signing in"), "logout": not_per_pipeline("signing out"),
    "favicon": not_per_pipeline("the site's icon (a static file)"),
    "nesting_server_data": not_per_pipeline("django-nested-admin's script (staff only)"),
    "api-push-hook": not_per_pipeline("signed with the pipeline's webhook secret, no user"),
    "api-job-result": not_per_pipeline("authenticated by the job's single-use token"),
    "api-aws-webhook": not_per_pipeline("a PutWebhook URL: its token and authentication"),
    "api-connection-list": not_per_pipeline("connections are shared by every group: "
                                            "global model permissions (docs/security.md)"),
    "api-connection-detail": not_per_pipeline("connections: shared, model permissions"),
    "api-build-project-list": not_per_pipeline("build projects are shared by every group: "
                                               "global model permissions"),
    "api-build-project-detail": not_per_pipeline("build projects: shared, model permissions"),
    "awsapi:endpoint": not_per_pipeline("every operation is classified in AWS below"),
    "schema": not_per_pipeline("the OpenAPI schema names no pipeline"),
    "api-docs": not_per_pipeline("the API's documentation page"),
    "healthz": not_per_pipeline("health probe"), "healthz-workers": not_per_pipeline("probe"),
    "metrics": not_per_pipeline("Prometheus: a bearer token or staff (test_metrics.py)"),
    "dashboard:override": on_pipeline({"POST": OPERATE}),
    "api-action-type-list": not_per_pipeline("custom action types are shared by every "
                                             "group: global model permissions"),
    "api-action-type-detail": not_per_pipeline("custom action types: shared, model "
                                               "permissions"),
    "agents:list": not_per_pipeline("build agents are shared by every group: staff only; an "
                                    "agent's current action is named only to those who may "
                                    "view its pipeline (tests/agents/test_api.py)"),
    "s3-object": not_per_pipeline("job artifacts: SigV4 with one job's own session "
                                  "credentials, no user (tests/jobs/test_boto3_worker.py)"),
}

# Admin models whose rows belong to a pipeline (teams.admin_scope.PipelineScopedAdmin),
# and those that do not, each with its reason.
ADMIN_SCOPED = {"pipelines_pipeline", "pipelines_pipelineversion", "pipelines_webhook",
                "pipelines_pipelineschedule", "executions_pipelineexecution",
                "approvals_approvalrequest", "approvals_approvaldecision",
                "triggers_commitstatusreport", "notifications_notificationrule",
                "notifications_notificationdelivery", "teams_pipelinegroup",
                "conditions_conditionexecution", "jobs_job"}
ADMIN_GLOBAL = {
    "auth_group": "users and Django groups: administrators'",
    "auth_user": "users: administrators'", "axes_": "sign-in lock-out records",
    "knox_authtoken": "API tokens, per user", "django_q_": "the task queue",
    "pipelines_connection": "connections: shared by every group",
    "pipelines_buildproject": "build projects: shared by every group",
    "pipelines_commitstatustarget": "forge targets: shared by every group",
    "awsapi_accesskey": "access keys, per user",
    "observability_auditentry": "the whole trail: auditors' (view_auditentry)",
    "jobs_customactiontype": "custom action types: shared by every group",
    "agents_": "build agents and their keys: shared by every group",
}
ADMIN_SITE = {"admin:index", "admin:login", "admin:logout", "admin:password_change",
              "admin:password_change_done", "admin:autocomplete", "admin:jsi18n",
              "admin:view_on_site", "admin:app_list", "admin/(?P<url>.*)$"}


def _admin_model(route) -> str | None:
    parts = route.pattern.split("/")
    return f"{parts[1]}_{parts[2]}" if len(parts) > 3 and route.pattern.startswith(
        "admin/") else None


def test_every_url_pattern_is_classified():
    problems = []
    for route in all_routes():
        if route.name in ROUTES or route.name in ADMIN_SITE:
            continue
        model = _admin_model(route)
        if model and (model in ADMIN_SCOPED or any(model.startswith(g) for g in ADMIN_GLOBAL)):
            continue
        problems.append(f"{route.name} ({route.pattern}): not classified, see the docstring")
    assert not problems, "\n".join(problems)
    names = {r.name for r in all_routes()}
    assert not set(ROUTES) - names, f"stale entries: {set(ROUTES) - names}"


# --- the world: alpha holds "demo" (with a pending approval), beta its twin ------------


@pytest.fixture
def two_groups(world, release, owner):
    from notifications.models import NotificationRule
    from pipelines.models import Pipeline, Webhook
    from teams.models import PipelineGroup
    from tests.approvals.conftest import release_pipeline

    alpha = PipelineGroup.objects.create(name="alpha")
    beta = PipelineGroup.objects.create(name="beta")
    Pipeline.objects.filter(pk=world["pipeline"].pk).update(group=alpha)
    hidden = release_pipeline(BETA_NAME)
    Pipeline.objects.filter(pk=hidden.pk).update(group=beta)
    approval = release.to_approval(hidden, user=owner)
    from executions.models import ActionExecution

    sides = {}
    for side, group, pipeline, appr in (("alpha", alpha, world["pipeline"],
                                         world["approval"]), ("beta", beta, hidden, approval)):
        pipeline.refresh_from_db()
        rule = NotificationRule.objects.create(
            name=f"rule-{side}", pipeline=pipeline, events=["execution.failed"],
            target_kind="webhook", target_url="https://hooks.example.com/x")
        Webhook.objects.create(name=f"wh-{side}", pipeline=pipeline, target_action="Checkout",
                               filters=[{"jsonPath": "$.ref", "matchEquals": "x"}],
                               authentication="UNAUTHENTICATED", url_token=f"tok-{side}")
        _commands_rule_evaluated(appr.execution)
        sides[side] = {
            "group": group, "pipeline": pipeline, "approval": appr,
            "execution": appr.execution, "rule": rule,
            "action_execution": ActionExecution.objects.get(
                execution=appr.execution, action_name="Checkout"),
        }
    return sides


def _commands_rule_evaluated(execution) -> None:
    """A Commands rule "Checks" evaluated before the Source stage (its log is read by
    ``api-rule-log`` and ``dashboard:rule-log``): rows only, no log file (an empty log)."""
    from conditions.models import ConditionExecution, RuleExecution

    ce = ConditionExecution.objects.create(
        stage_execution=execution.stage_executions.get(stage_name="Source"),
        kind="beforeEntry", result="FAIL", status="Succeeded")
    RuleExecution.objects.create(condition_execution=ce, rule_name="Checks",
                                 provider="Commands", status="Succeeded")


def persona(role: str) -> User:
    from teams.models import PipelineGroup, RoleGrant

    user = User.objects.create_user(f"p-{role}", f"{role}@example.com", "pw")
    RoleGrant.objects.create(pipeline_group=PipelineGroup.objects.get(name="alpha"),
                             role=role, user=user)
    return user


def allows(role: str, act: str) -> bool:
    return act in ROLE_ACTS[role]


def path_for(route, side: dict) -> str:
    pipeline = side["pipeline"]
    path = route.path.replace("/pipelines/demo/", f"/pipelines/{pipeline.name}/")
    path = path.replace("/pipeline-groups/demo/", f"/pipeline-groups/{side['group'].name}/")
    return path.format(execution=side["execution"].execution_id, approval=side["approval"].pk,
                       action_execution=side["action_execution"].action_execution_id,
                       object=side["rule"].pk)


def body_for(route, method: str, side: dict):
    if route.name == "api-pipeline-list" and method == "POST":
        document = dict(side["pipeline"].document, name=f"new-{side['group'].name}")
        return {"pipeline": document, "metadata": {"group": side["group"].name}}
    if route.name == "api-notification-rules" and method == "POST":
        return {"name": f"new-{side['group'].name}", "pipelineName": side["pipeline"].name,
                "events": ["execution.failed"], "targetKind": "webhook",
                "targetUrl": "https://hooks.example.com/y"}
    if route.name in ("dashboard-review", "approvals:decide"):
        return {"status": "Approved", "summary": "ok", "next": "/"}
    return {}


def send(user, token: str, route, method: str, path: str, body) -> tuple[int, bytes]:
    """One request, rolled back afterwards (an allowed DELETE deletes nothing for good)."""
    from rest_framework.test import APIClient

    if path.startswith("/api/"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        call = getattr(client, method.lower())
        kwargs = {"format": "json"} if method != "GET" else {}
    else:
        client = Client()
        client.force_login(user)
        call = getattr(client, method.lower())
        kwargs = {}
    savepoint = transaction.savepoint()
    try:
        response = call(path, body if method != "GET" else None, **kwargs)
        content = (b"".join(response.streaming_content) if response.streaming
                   else response.content)
        return response.status_code, content
    finally:
        transaction.savepoint_rollback(savepoint)


def decided(route, user, token, path, body) -> bool:
    from approvals.models import ApprovalDecision

    savepoint = transaction.savepoint()
    try:
        before = ApprovalDecision.objects.count()
        client = Client()
        client.force_login(user)
        client.post(path, body)
        return ApprovalDecision.objects.count() > before
    finally:
        transaction.savepoint_rollback(savepoint)


def _refused(status: int) -> bool:
    return status in (401, 403, 404) or status >= 500


@pytest.mark.parametrize("role", ROLES)
def test_every_route_answers_by_the_role_held_on_the_pipelines_group(two_groups, role):
    from knox.models import AuthToken

    user = persona(role)
    _, token = AuthToken.objects.create(user=user)
    alpha, beta = two_groups["alpha"], two_groups["beta"]
    problems, checked = [], 0
    for route in all_routes():
        rule = ROUTES.get(route.name)
        if rule is None or rule.kind == "global":
            continue
        for method, act in rule.acts.items():
            checked += 1
            at = f"{role} {method} {route.name}"
            if rule.kind == "effect":
                mine = decided(route, user, token, path_for(route, alpha),
                               body_for(route, method, alpha))
                theirs = decided(route, user, token, path_for(route, beta),
                                 body_for(route, method, beta))
                if mine != allows(role, act) or theirs:
                    problems.append(f"{at}: decided alpha={mine} beta={theirs}")
                continue
            if rule.kind == "list" and method == "GET":
                status, content = send(user, token, route, method, route.path, None)
                want_ok = act == VIEW or allows(role, act)
                if (status == 200) != want_ok or (not want_ok and status != 403):
                    problems.append(f"{at}: {status}, expected {200 if want_ok else 403}")
                if BETA_NAME.encode() in content:
                    problems.append(f"{at}: lists beta's pipeline")
                continue
            if rule.kind == "list":   # a write naming its target in the body
                path = route.path
                status, _ = send(user, token, route, method, path,
                                 body_for(route, method, alpha))
                ok = act != ADMINISTER and allows(role, act)
                if _refused(status) == ok or (not ok and status != 403):
                    problems.append(f"{at} (alpha): {status}")
                status, _ = send(user, token, route, method, path, body_for(route, method, beta))
                if status not in ((400,) if ok else (400, 403)):
                    problems.append(f"{at} (beta): {status}, expected refused")
                continue
            status, _ = send(user, token, route, method, path_for(route, alpha),
                             body_for(route, method, alpha))
            ok = act != ADMINISTER and allows(role, act)
            expected = "allowed" if ok else 403
            if (ok and _refused(status)) or (not ok and status != 403):
                problems.append(f"{at} (alpha): {status}, expected {expected}")
            status, _ = send(user, token, route, method, path_for(route, beta),
                             body_for(route, method, beta))
            # One whose roles allow this act nowhere may be refused before the look-up
            # (403 for every name, which tells nothing either).
            if status != 404 and (ok or status != 403):
                problems.append(f"{at} (beta): {status}, expected 404")
    assert checked >= 54
    assert not problems, "\n".join(problems)


def test_a_user_holding_no_role_anywhere_is_refused_before_any_lookup(two_groups, api):
    lonely = User.objects.create_user("lonely")
    for path in ("/api/pipelines/", "/api/pipelines/demo/", "/api/pipeline-groups/",
                 f"/api/executions/{two_groups['alpha']['execution'].execution_id}/"):
        assert api(lonely).get(path).status_code == 403, path


def test_an_administrator_sees_and_manages_every_group(two_groups, api):
    admin = User.objects.create_user("ada")
    admin.groups.add(Group.objects.get(name="administrators"))
    names = {p["name"] for p in api(admin).get("/api/pipelines/").json()["results"]}
    assert {"demo", BETA_NAME} <= names
    assert api(admin).delete("/api/pipeline-groups/beta/").status_code == 409


# --- the admin ------------------------------------------------------------------------


def test_the_admin_lists_and_opens_only_rows_of_visible_pipelines(two_groups):
    """A staff persona with every model permission of the pipeline apps: the role on the
    group still decides which rows exist for them and which they may change."""
    from django.urls import reverse

    staff_models = Group.objects.create(name="staff-models")
    staff_models.permissions.add(*Permission.objects.filter(content_type__app_label__in=[
        "pipelines", "executions", "approvals", "notifications", "teams"]))
    for role in ROLES:
        user = persona(role)
        user.is_staff = True
        user.save()
        user.groups.add(staff_models)
        client = Client()
        client.force_login(user)
        for model, obj_of in (("pipelines_pipeline", lambda s: s["pipeline"]),
                              ("executions_pipelineexecution", lambda s: s["execution"]),
                              ("approvals_approvalrequest", lambda s: s["approval"]),
                              ("notifications_notificationrule", lambda s: s["rule"]),
                              ("teams_pipelinegroup", lambda s: s["group"])):
            listed = client.get(reverse(f"admin:{model}_changelist"))
            assert listed.status_code == 200, (role, model)
            alpha, beta = obj_of(two_groups["alpha"]), obj_of(two_groups["beta"])
            assert client.get(reverse(f"admin:{model}_change", args=[alpha.pk])
                              ).status_code == 200, (role, model)
            # Not visible: the admin's "does not exist" redirect, as for a missing row.
            missing = client.get(reverse(f"admin:{model}_change", args=[beta.pk]))
            assert missing.status_code == 302, (role, model, missing.status_code)
        assert BETA_NAME.encode() not in client.get(
            reverse("admin:pipelines_pipeline_changelist")).content
        delete = reverse("admin:pipelines_pipeline_delete",
                         args=[two_groups["alpha"]["pipeline"].pk])
        savepoint = transaction.savepoint()
        status = client.post(delete, {"post": "yes"}).status_code
        transaction.savepoint_rollback(savepoint)
        assert status == (302 if role == Role.OWNER else 403), (role, status)


# --- websockets -------------------------------------------------------------------------

# path (with {pipeline} / {execution}) -> "object" (refused when not visible) or "all"
WEBSOCKETS = {"ws/pipelines/": "all", "ws/pipelines/<str:name>/": "object",
              "ws/executions/<str:execution_id>/": "object"}


def test_every_websocket_route_is_classified():
    from config.routing import websocket_urlpatterns

    assert {str(p.pattern) for p in websocket_urlpatterns} == set(WEBSOCKETS)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_websockets_refuse_what_one_may_not_view_and_filter_the_all_pipelines_feed(
        client, monkeypatch, django_capture_on_commit_callbacks):
    from channels.testing import WebsocketCommunicator

    from config.asgi import application
    from executions import services, tasks
    from pipelines.models import Pipeline
    from teams.models import PipelineGroup, RoleGrant
    from tests.executions.conftest import simple_pipeline

    monkeypatch.setattr(tasks, "enqueue", lambda pk: None)
    alpha = PipelineGroup.objects.create(name="alpha")
    beta = PipelineGroup.objects.create(name="beta")
    mine, theirs = simple_pipeline("mine"), simple_pipeline(BETA_NAME)
    Pipeline.objects.filter(pk=mine.pk).update(group=alpha)
    Pipeline.objects.filter(pk=theirs.pk).update(group=beta)
    with django_capture_on_commit_callbacks(execute=True):
        ex_mine = services.execution_start(pipeline=mine)
        ex_theirs = services.execution_start(pipeline=theirs)
    user = User.objects.create_user("wsv")
    RoleGrant.objects.create(pipeline_group=alpha, role="viewer", user=user)
    client.force_login(user)
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver"),
               (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]

    async def connect(path):
        comm = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await comm.connect(timeout=5)
        return comm, connected

    async def check():
        for pattern, kind in WEBSOCKETS.items():
            if kind != "object":
                continue
            for name, ex, visible in (("mine", ex_mine, True), (BETA_NAME, ex_theirs, False)):
                path = "/" + pattern.replace("<str:name>", name).replace(
                    "<str:execution_id>", str(ex.execution_id))
                comm, connected = await connect(path)
                assert connected == visible, path
                if connected:
                    await comm.disconnect()
        comm, connected = await connect("/ws/pipelines/?after=0")
        assert connected
        names = set()
        hello = await comm.receive_json_from(timeout=5)
        assert hello["type"] == "hello"
        while not await comm.receive_nothing(timeout=1.5):
            message = await comm.receive_json_from(timeout=2)
            names |= {e["pipelineName"] for e in message.get("events", [])}
        await comm.disconnect()
        return names

    names = async_to_sync(check)()
    assert "mine" in names and BETA_NAME not in names


# --- the AWS endpoint -------------------------------------------------------------------

# operation -> (act, body for a pipeline side (None: names no pipeline), its not-found error)
NOT_FOUND = "PipelineNotFoundException"


def _ids(side):
    return side["pipeline"].name, str(side["execution"].execution_id)


AWS = {
    "GetPipeline": (VIEW, lambda s: {"name": s["pipeline"].name}, NOT_FOUND),
    "UpdatePipeline": (OWN, lambda s: {"pipeline": s["pipeline"].document}, NOT_FOUND),
    "DeletePipeline": (OWN, lambda s: {"name": s["pipeline"].name}, "silent"),
    "ListPipelines": (VIEW, None, None),
    "CreatePipeline": (OWN, None, None),   # into the default group: no persona owns it
    "ListActionTypes": (VIEW, None, None), "ListRuleTypes": (VIEW, None, None),
    "GetPipelineState": (VIEW, lambda s: {"name": s["pipeline"].name}, NOT_FOUND),
    "StartPipelineExecution": (OPERATE, lambda s: {"name": s["pipeline"].name}, NOT_FOUND),
    "StopPipelineExecution": (OPERATE, lambda s: {
        "pipelineName": _ids(s)[0], "pipelineExecutionId": _ids(s)[1], "abandon": True},
        NOT_FOUND),
    "GetPipelineExecution": (VIEW, lambda s: {
        "pipelineName": _ids(s)[0], "pipelineExecutionId": _ids(s)[1]}, NOT_FOUND),
    "ListPipelineExecutions": (VIEW, lambda s: {"pipelineName": _ids(s)[0]}, NOT_FOUND),
    "ListActionExecutions": (VIEW, lambda s: {"pipelineName": _ids(s)[0]}, NOT_FOUND),
    "RetryStageExecution": (OPERATE, lambda s: {
        "pipelineName": _ids(s)[0], "stageName": "Production",
        "pipelineExecutionId": _ids(s)[1], "retryMode": "FAILED_ACTIONS"}, NOT_FOUND),
    "EnableStageTransition": (OPERATE, lambda s: {
        "pipelineName": _ids(s)[0], "stageName": "Production", "transitionType": "Inbound"},
        NOT_FOUND),
    "DisableStageTransition": (OPERATE, lambda s: {
        "pipelineName": _ids(s)[0], "stageName": "Production", "transitionType": "Inbound",
        "reason": "freeze"}, NOT_FOUND),
    "RollbackStage": (OPERATE, lambda s: {
        "pipelineName": _ids(s)[0], "stageName": "Staging",
        "targetPipelineExecutionId": _ids(s)[1]}, NOT_FOUND),
    "PutApprovalResult": (REVIEW, lambda s: {
        "pipelineName": _ids(s)[0], "stageName": "Production", "actionName": "Approve",
        "result": {"summary": "ok", "status": "Approved"}, "token": s["approval"].token},
        NOT_FOUND),
    "TagResource": (OWN, lambda s: {
        "resourceArn": f"arn:aws:codepipeline:us-east-1:000000000000:{_ids(s)[0]}",
        "tags": [{"key": "k", "value": "v"}]}, "ResourceNotFoundException"),
    "UntagResource": (OWN, lambda s: {
        "resourceArn": f"arn:aws:codepipeline:us-east-1:000000000000:{_ids(s)[0]}",
        "tagKeys": ["k"]}, "ResourceNotFoundException"),
    "ListTagsForResource": (VIEW, lambda s: {
        "resourceArn": f"arn:aws:codepipeline:us-east-1:000000000000:{_ids(s)[0]}"},
        "ResourceNotFoundException"),
    "PutWebhook": (OWN, lambda s: {"webhook": {
        "name": f"wh-new-{s['group'].name}", "targetPipeline": _ids(s)[0],
        "targetAction": "Checkout", "filters": [{"jsonPath": "$.ref", "matchEquals": "x"}],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}}, NOT_FOUND),
    "ListWebhooks": (VIEW, None, None),
    "ListRuleExecutions": (VIEW, lambda s: {"pipelineName": _ids(s)[0]}, NOT_FOUND),
    "OverrideStageCondition": (OPERATE, lambda s: {
        "pipelineName": _ids(s)[0], "stageName": "Production",
        "pipelineExecutionId": _ids(s)[1], "conditionType": "BEFORE_ENTRY"}, NOT_FOUND),
    "DeleteWebhook": (OWN, lambda s: {"name": f"wh-{s['group'].name}"}, "silent"),
    "RegisterWebhookWithThirdParty": (OWN, lambda s: {"webhookName": f"wh-{s['group'].name}"},
                                      "WebhookNotFoundException"),
    "DeregisterWebhookWithThirdParty": (OWN, lambda s: {
        "webhookName": f"wh-{s['group'].name}"}, "WebhookNotFoundException"),
}


# Operations that name no pipeline and whose answer is filtered, not refused: a job is
# offered to, and answered by, only a key whose user may operate its pipeline
# (jobs.services.may_work; test_job_operations_follow_the_role_on_the_pipelines_group);
# custom action types are shared by every group, changed with global model permissions.
JOB_OPERATIONS = {
    **{name: OPERATE for name in (
        "PollForJobs", "AcknowledgeJob", "GetJobDetails", "PutJobSuccessResult",
        "PutJobFailureResult", "PollForThirdPartyJobs", "AcknowledgeThirdPartyJob",
        "GetThirdPartyJobDetails", "PutThirdPartyJobSuccessResult",
        "PutThirdPartyJobFailureResult")},
    "GetActionType": VIEW, "CreateCustomActionType": OWN, "DeleteCustomActionType": OWN,
    "UpdateActionType": OWN,
}


def test_every_aws_operation_is_classified():
    from awsapi.operations import OPERATIONS

    assert set(OPERATIONS) == set(AWS) | set(JOB_OPERATIONS), (
        set(OPERATIONS) ^ (set(AWS) | set(JOB_OPERATIONS)))
    for name, (act, _, _) in AWS.items():
        assert OPERATIONS[name].act == act, name
    for name, act in JOB_OPERATIONS.items():
        assert OPERATIONS[name].act == act, name


# What an agent key may call on /aws/ (awsapi.agents): no user, so no role; an agent
# reaches only jobs routed to agents and handed to it (tests/agents/test_api.py:
# test_an_agent_reaches_only_its_own_job, test_an_agent_key_opens_no_other_api).
AGENT_OPERATIONS = {
    "PollForJobs": "the agents' jobs whose labels its own include (long poll, registers it)",
    "AcknowledgeJob": "a job handed to this agent",
    "GetJobDetails": "a job handed to this agent",
    "PutJobSuccessResult": "a job handed to this agent",
    "PutJobFailureResult": "a job handed to this agent",
    "ConveyorRenewJobLease": "a job handed to this agent (Conveyor's extension)",
    "ConveyorAppendJobLog": "a job handed to this agent (Conveyor's extension)",
}


def test_every_agent_operation_is_classified():
    from awsapi.agents import AGENT_OPERATIONS as OPEN
    from awsapi.operations import OPERATIONS

    assert set(OPEN) == set(AGENT_OPERATIONS), set(OPEN) ^ set(AGENT_OPERATIONS)
    # The extensions exist only for agent keys: an access key gets UnknownOperation.
    assert not {name for name in OPEN if name.startswith("Conveyor")} & set(OPERATIONS)


def _aws(key_id: str, secret: str, target: str, body: dict, after=None) -> tuple[int, dict]:
    """The answer (and, with ``after``, ``answer["after"]``: what ``after()`` saw before
    the request's changes were rolled back)."""
    data = json.dumps(body).encode()
    request = AWSRequest(method="POST", url="http://testserver/aws/", data=data, headers={
        "X-Amz-Target": f"CodePipeline_20150709.{target}",
        "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(key_id, secret), "codepipeline", "us-east-1").add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "content-type"}
    headers["Host"] = "testserver"
    savepoint = transaction.savepoint()
    try:
        response = Client().post("/aws/", data=data, content_type="application/x-amz-json-1.1",
                                 headers=headers)
        answer = json.loads(response.content or b"{}")
        if after is not None:
            answer["after"] = after()
        return response.status_code, answer
    finally:
        transaction.savepoint_rollback(savepoint)


@pytest.mark.parametrize("role", ROLES)
def test_every_aws_operation_answers_by_the_role_a_key_s_user_holds(two_groups, role):
    from awsapi.services import access_key_create
    from pipelines.models import Pipeline, Webhook

    key, secret = access_key_create(user=persona(role))
    problems = []
    for name, (act, body, not_found) in AWS.items():
        ok = allows(role, act)
        if body is None:
            status, answer = _aws(key.access_key_id, secret, name,
                                  {"pipeline": dict(two_groups["alpha"]["pipeline"].document,
                                                    name="made-through-aws")}
                                  if name == "CreatePipeline" else {})
            denied = answer.get("__type") == "AccessDeniedException"
            if name == "CreatePipeline":
                ok = False
            if denied == ok:
                problems.append(f"{role} {name}: {answer.get('__type')}")
            if BETA_NAME in json.dumps(answer):
                problems.append(f"{role} {name}: lists beta's pipeline")
            continue
        status, answer = _aws(key.access_key_id, secret, name, body(two_groups["alpha"]))
        kind = answer.get("__type", "")
        if (kind == "AccessDeniedException") == ok or kind == not_found:
            problems.append(f"{role} {name} (alpha): {status} {kind}")
        def still_there():
            return (Pipeline.objects.filter(name=BETA_NAME).exists()
                    and Webhook.objects.filter(name="wh-beta").exists())

        status, answer = _aws(key.access_key_id, secret, name, body(two_groups["beta"]),
                              after=still_there)
        kind = answer.get("__type", "")
        if not_found == "silent":     # as on AWS, deleting what one cannot see "succeeds"
            if status != 200 or not answer["after"]:
                problems.append(f"{role} {name} (beta): {status} {kind} {answer['after']}")
        elif kind != not_found:
            problems.append(f"{role} {name} (beta): {status} {kind}, expected {not_found}")
    assert not problems, "\n".join(problems)
