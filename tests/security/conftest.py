"""The world the security tests attack: a release pipeline with a pending approval.

``demo`` is Source → Staging → Production (Manual approval, then a deploy), of
Simulate actions; execution #1 waits for its approval. The engine runs for real
through the executions tests' Driver (only the django-q2 queue is held, the
edge the tests hold); approval notifications run inline.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group, User
from django.urls import URLPattern, URLResolver, get_resolver

from tests.approvals.conftest import (  # noqa: F401  (fixtures)
    _inline_approval_tasks,
    _quiet_heartbeat,
    release,
    release_pipeline,
)
from tests.executions.conftest import driver  # noqa: F401  (fixture)
from tests.runners.conftest import repo  # noqa: F401  (fixture)

WEBHOOK_SECRET = "security-webhook-s3cret"


@pytest.fixture
def reviewer(db) -> User:
    """Decides approvals (group "reviewers") and nothing else."""
    user = User.objects.create_user("rita", "rita@example.com", "pw-rita")
    user.groups.add(Group.objects.get(name="reviewers"))
    return user


@pytest.fixture
def world(release, owner):  # noqa: F811  (the imported fixture)
    from executions.models import ActionExecution
    from pipelines.models import Pipeline

    pipeline = release_pipeline("demo")
    Pipeline.objects.filter(pk=pipeline.pk).update(webhook_secret=WEBHOOK_SECRET)
    approval = release.to_approval(pipeline, user=owner)
    execution = approval.execution
    checkout = ActionExecution.objects.get(execution=execution, action_name="Checkout")
    return {"pipeline": pipeline, "execution": execution, "approval": approval,
            "action_execution": checkout}


# --- walking the URLconf ------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One URL pattern of the project, with a concrete path that resolves to it."""

    pattern: str          # the full pattern, as Django prints it
    name: str             # "namespace:name", or the pattern when it has no name
    path: str             # a concrete path (``{placeholders}`` filled by ``fill``)
    callback: object

    @property
    def view_class(self):
        return getattr(self.callback, "view_class", None) or getattr(
            self.callback, "cls", None)

    def implements(self, method: str) -> bool:
        """Whether the view has a handler for ``method`` (function views: unknown, True)."""
        cls = self.view_class
        if cls is None:
            return True
        return hasattr(cls, method.lower())


# Sample values for path parameters, by parameter name; ``{...}`` are filled from the
# world (see ``fill``). Parameters whose value must name a specific kind of object
# are overridden per route name in ``BY_ROUTE``.
SAMPLES = {
    "name": "demo", "pipeline": "demo", "stage": "Production", "action": "Checkout",
    "number": "1", "id": "{execution}", "pk": "{approval}", "token": "a" * 32,
    "signed": "not-a-signed-link", "object_id": "{object}", "content_type_id": "1",
    "app_label": "pipelines", "url": "no-such-page/", "job_id": "{action_execution}",
}
BY_ROUTE = {
    "action": {"stage": "Source"},
    "action-log": {"stage": "Source"},
    "api-action-execution-log": {"id": "{action_execution}"},
    "api-rule-log": {"stage": "Source", "condition_type": "BEFORE_ENTRY", "rule": "Checks"},
    "rule-log": {"stage": "Source", "condition_type": "BEFORE_ENTRY", "rule": "Checks"},
    "api-approval-decision": {"id": "{approval}"},
    "api-artifact-download": {"name": "Src"},
    "api-notification-rule": {"pk": "{object}"},
    "api-notification-deliveries": {"pk": "{object}"},
}


def _concrete(pattern: str, values: dict[str, str]) -> str:
    """A path for a route or regex pattern with each parameter given a sample value."""
    def regex_param(match):
        return values.get(match.group(1), "x")
    path = re.sub(r"\(\?P<(\w+)>(?:[^()]|\([^()]*\))*\)", regex_param, pattern)

    def route_param(match):
        return values.get(match.group(2), "x")
    path = re.sub(r"<(?:(\w+):)?(\w+)>", route_param, path)
    path = path.replace("^", "").replace("$", "").replace("/?", "/").replace("\\.", ".")
    return "/" + path


def _walk(resolver: URLResolver, prefix: str = "", namespace: str = ""):
    for item in resolver.url_patterns:
        if isinstance(item, URLResolver):
            ns = f"{namespace}{item.namespace}:" if item.namespace else namespace
            yield from _walk(item, prefix + str(item.pattern), ns)
        elif isinstance(item, URLPattern):
            full = prefix + str(item.pattern)
            yield full, (f"{namespace}{item.name}" if item.name else full), item.callback


def all_routes() -> list[Route]:
    """Every URL pattern of the project (walked from ``get_resolver()``), each with a
    concrete path that resolves back to it."""
    from django.urls import Resolver404, resolve

    routes = []
    for pattern, name, callback in _walk(get_resolver()):
        values = {**SAMPLES, **BY_ROUTE.get(name.split(":")[-1], {})}
        path = _concrete(pattern, values)
        routes.append(Route(pattern, name, path, callback))
    # Every path must resolve to its own pattern, or the walk tests the wrong view.
    for route in routes:
        probe = route.path.format(execution="00000000-0000-0000-0000-000000000001",
                                  approval="00000000-0000-0000-0000-000000000002",
                                  action_execution="00000000-0000-0000-0000-000000000003",
                                  object="1")
        try:
            match = resolve(probe)
        except Resolver404:
            raise AssertionError(f"{route.pattern}: {probe} does not resolve") from None
        assert match.func == route.callback or match.route == route.pattern.replace(
            "^", "").replace("$", ""), f"{route.pattern}: {probe} resolves to {match.route}"
    return routes


def fill(route: Route, world) -> str:
    """The route's path with the world's ids (an admin object: the pipeline, or its version)."""
    pipeline = world["pipeline"]
    obj = (pipeline.versions.order_by("pk").first().pk
           if "pipelineversion" in route.pattern else pipeline.pk)
    return route.path.format(
        execution=world["execution"].execution_id, approval=world["approval"].pk,
        action_execution=world["action_execution"].action_execution_id, object=obj)


def snapshot() -> dict:
    """Every row of the project's own tables, field by field (sessions, tokens and the
    users' last_login aside: signing in changes those)."""
    from django.apps import apps

    rows = {}
    for label in ("pipelines", "executions", "approvals", "awsapi"):
        for model in apps.get_app_config(label).get_models():
            rows[model._meta.label] = list(model.objects.order_by("pk").values_list())
    for model_label in ("auth.Group", "django_q.Schedule"):
        model = apps.get_model(model_label)
        rows[model_label] = list(model.objects.order_by("pk").values_list())
    rows["auth.User"] = list(User.objects.order_by("pk").values_list(
        "username", "is_staff", "is_superuser", "is_active", "password"))
    return rows


def error_body(response) -> dict:
    """The error body, JSON — or YAML where the schema view renders its own errors in the
    schema's media type (``application/vnd.oai.openapi``)."""
    if response["Content-Type"].startswith("application/vnd.oai.openapi"):
        import yaml

        return yaml.safe_load(response.content)
    try:
        return json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.request['PATH_INFO']}: {response.status_code} "
                             f"{response['Content-Type']} {response.content[:200]!r}") from None
