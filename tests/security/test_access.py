"""Every URL pattern of the project, walked from ``get_resolver()`` (a new URL is covered
the day it is added): who may reach it, who may change anything through it.

- Anonymous callers get 401 from the API, a redirect to the sign-in page from
  pages (the admin's own sign-in page for the admin), and AWS's error shape from
  /aws/ — except the routes in ``ANONYMOUS_ALLOWED``, each with its reason and its
  own expected answer (so the allow-list is checked, not skipped).
- A viewer changes nothing through any route and any unsafe method (the API
  answers 403); an operator cannot change a definition; only reviewers decide
  approvals, through every surface.
Static files are not URL patterns: WhiteNoise serves them, public by nature.
"""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.security.conftest import all_routes, error_body, fill, snapshot

ROUTES = all_routes()
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

# name -> (reason, {method: expected status})
ANONYMOUS_ALLOWED = {
    "login": ("the sign-in page", {"GET": 200}),
    "logout": ("signing out needs no session; POST only", {"GET": 405, "POST": 302}),
    "admin:login": ("the admin's sign-in page", {"GET": 200}),
    "admin:logout": ("signing out of the admin needs no session; it sends to the admin "
                     "index, which sends to its sign-in page", {"GET": 302}),
    "api-push-hook": ("forges sign it with the pipeline's webhook secret, no user: "
                      "test_webhook.py", {"POST": 401}),
    "api-job-result": ("authenticated by the job's single-use token", {"POST": 404}),
    "api-aws-webhook": ("a PutWebhook URL: its unguessable token, then the webhook's own "
                        "authentication (test_webhooks_tags.py)", {"POST": 404}),
    "healthz": ("health probe of load balancers; names nothing (test_health.py)",
                {"GET": 200}),
    "healthz-workers": ("health probe; names nothing (test_health.py); 503 until a "
                        "sweep completed", {"GET": 503}),
    "metrics": ("Prometheus scrapes it with the bearer token CONVEYOR_METRICS_TOKEN (else "
                "staff sessions only): test_metrics.py", {"GET": 401}),
    "s3-object": ("the job artifacts' S3 endpoint: only a SigV4 signature with a job's "
                  "session credentials, answered in S3's words (tests/jobs)",
                  {"GET": 403, "POST": 403}),
    "nesting_server_data": ("django-nested-admin's script: answers 403 to anyone not "
                            "staff by itself", {"GET": 403}),
    "favicon": ("the site's icon, which browsers ask for before anyone signs in: a "
                "redirect to the static file", {"GET": 301, "POST": 405}),
}


# API routes whose answers are HTML for people (the Swagger UI page): refused with the
# same status as the API, in a plain body rather than the JSON error body.
HTML_API_PAGES = {"api-docs"}


def _request(client, method: str, path: str, **extra):
    return getattr(client, method.lower())(path, data=json.dumps({}) if method != "GET"
                                           else None, content_type="application/json", **extra)


def _methods(route) -> list[str]:
    if route.view_class is not None:       # DRF / class-based: every method it handles
        return [m for m in ("GET", *UNSAFE) if route.implements(m)]
    return ["GET", "POST"]


def test_the_walk_finds_every_surface():
    names = {r.name for r in ROUTES}
    assert {"api-pipeline-list", "api-execution-stop", "api-approval-decision",
            "dashboard:release", "approvals:decide", "awsapi:endpoint", "healthz",
            "admin:index", "api-push-hook"} <= names
    assert len(ROUTES) > 100              # the admin alone has dozens
    assert set(ANONYMOUS_ALLOWED) <= names   # no stale allow-list entry


def _anonymous_problems(route, path) -> list[str]:
    if route.name in ANONYMOUS_ALLOWED:
        return [f"{method} {path}: {got} instead of {status}"
                for method, status in ANONYMOUS_ALLOWED[route.name][1].items()
                if (got := _request(Client(), method, path).status_code) != status]
    problems = []
    for method in _methods(route):
        response = _request(Client(), method, path)
        where = f"{method} {path}: {response.status_code} {response.get('Location', '')}"
        if route.name in HTML_API_PAGES:
            ok = response.status_code == 401
        elif path.startswith("/api/"):
            ok = (response.status_code == 401 and set(error_body(response)) == {"detail"}
                  and response["WWW-Authenticate"] == "Token")
        elif path.startswith("/aws/"):
            ok = 400 <= response.status_code < 500 and "__type" in json.loads(response.content)
        elif path.startswith("/admin/"):
            ok = (response.status_code == 302
                  and response["Location"].startswith("/admin/login/?next="))
        else:
            ok = (response.status_code == 302
                  and response["Location"].startswith("/login/?next="))
        if not ok:
            problems.append(where)
    return problems


def test_an_anonymous_caller_is_refused_everywhere_but_the_allow_list(world):
    before = snapshot()
    problems = [p for route in ROUTES for p in _anonymous_problems(route, fill(route, world))]
    assert not problems, "\n".join(problems)
    assert snapshot() == before


def _viewer_problems(route, path, api, viewer) -> list[str]:
    problems = []
    before = snapshot()
    is_api = path.startswith("/api/") and route.name not in ANONYMOUS_ALLOWED
    for method in UNSAFE if path.startswith("/api/") else ("POST",):
        if is_api:
            response = getattr(api(viewer), method.lower())(path, {}, format="json")
            expected = {403} if route.implements(method) else {403, 405}
            if response.status_code not in expected or (
                    route.name not in HTML_API_PAGES
                    and set(error_body(response)) != {"detail"}):
                problems.append(f"{method} {path}: {response.status_code}")
        else:
            client = Client()
            client.force_login(viewer)
            response = _request(client, method, path)
            # A read page may answer a POST with itself (200): the snapshot is the check.
            if response.status_code not in (200, 302, 400, 401, 403, 404, 405):
                problems.append(f"{method} {path}: {response.status_code}")
        if snapshot() != before:
            problems.append(f"{method} {path} changed something")
    return problems


def test_a_viewer_changes_nothing_through_any_route(world, api, viewer):
    """Every unsafe method on every API route is 403 (405 where no one may use the
    method); every page's POST leaves every row as it was."""
    problems = [p for route in ROUTES
                for p in _viewer_problems(route, fill(route, world), api, viewer)]
    assert not problems, "\n".join(problems)


DEFINITION_ROUTES = [r for r in ROUTES if r.name in ("api-pipeline-list", "api-pipeline-detail")
                     or r.pattern.startswith("admin/pipelines/")]


# What an admin POST to each kind of page would change, were it allowed.
ADMIN_ATTEMPTS = {
    "changelist": ("action=delete_selected&_selected_action=1&post=yes", {200, 302, 403}),
    "add": ("name=evil", {403}),
    "change": ("name=evil", {403}),
    "delete": ("post=yes", {403}),
    "import": ("document=name%3A+evil", {403}),
}


def test_an_operator_cannot_change_a_definition(world, api, operator):
    """Every unsafe method on the definition API, every POST to the admin's pipeline
    pages: refused, and nothing changed. Even made staff (the admin open to them), an
    operator's group grants no change."""
    operator.is_staff = True
    operator.save()
    document = world["pipeline"].document
    before = snapshot()
    problems = []
    for route in DEFINITION_ROUTES:
        path = fill(route, world)
        if path.startswith("/api/"):
            for method in UNSAFE:
                response = getattr(api(operator), method.lower())(path, document,
                                                                  format="json")
                if response.status_code not in ({403} if route.implements(method)
                                                else {403, 405}):
                    problems.append(f"{method} {path}: {response.status_code}")
        else:
            kind = route.name.rsplit("_", 1)[-1]
            data, expected = ADMIN_ATTEMPTS.get(kind, ("name=evil", {200, 302, 403, 405}))
            client = Client()
            client.force_login(operator)
            response = client.post(path, data=data,
                                   content_type="application/x-www-form-urlencoded")
            if response.status_code not in expected:
                problems.append(f"POST {path}: {response.status_code}")
        if snapshot() != before:
            problems.append(f"{path} changed something")
    assert not problems, "\n".join(problems)
    kinds = {r.name.rsplit("_", 1)[-1] for r in DEFINITION_ROUTES}
    assert {"changelist", "add", "change", "delete", "import"} <= kinds


def test_the_same_requests_succeed_for_those_whose_role_allows_them(world, api, owner,
                                                                    operator, release):
    """Positive controls: the refusals above are about roles, not broken requests."""
    document = dict(world["pipeline"].document)
    document["stages"][1]["actions"][0]["configuration"] = {"Summary": "edited"}
    assert api(owner).put("/api/pipelines/demo/", document, format="json").status_code == 200
    started = release.call(api(operator).post, "/api/pipelines/demo/executions/", {},
                           format="json")
    assert started.status_code == 201


def _decide_everywhere(user, world, api, release) -> list[int]:
    """Approve through the API, the inbox form and the dashboard's Review button."""
    approval = world["approval"]
    client = Client()
    client.force_login(user)
    return [
        release.call(api(user).post, f"/api/approvals/{approval.pk}/decision/",
                     {"status": "Approved", "summary": "ok"}, format="json").status_code,
        release.call(client.post, f"/approvals/{approval.pk}/decide/",
                     {"status": "Approved", "summary": "ok"}).status_code,
        release.call(client.post, f"/approvals/{approval.pk}/review/",
                     {"status": "Approved", "summary": "ok", "next": "/"}).status_code,
    ]


@pytest.mark.parametrize("persona", ["owner", "operator", "viewer", "outsider"])
def test_only_reviewers_decide_approvals(world, api, release, request, persona):
    from approvals.models import ApprovalDecision

    user = request.getfixturevalue(persona)
    before = snapshot()
    statuses = _decide_everywhere(user, world, api, release)
    assert statuses[0] == 403                     # the API refuses
    assert snapshot() == before                   # and no surface decided anything
    assert not ApprovalDecision.objects.exists()


def test_a_reviewer_decides(world, api, release, reviewer):
    approval = world["approval"]
    response = release.call(api(reviewer).post, f"/api/approvals/{approval.pk}/decision/",
                            {"status": "Approved", "summary": "ok"}, format="json")
    assert response.status_code == 201
    approval.refresh_from_db()
    assert approval.status == "Approved"


def test_an_api_path_that_matches_no_route_answers_the_error_body(world, api, owner):
    for path in ("/api/no-such-thing/", "/api/approvals/not-a-uuid/decision/",
                 "/api/pipelines/demo/versions/one/"):
        response = api(owner).get(path)
        assert (response.status_code, response.json()) == (404, {"detail": "Not found."}), path
    page = Client()
    page.force_login(owner)
    response = page.get("/no-such-page/x/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
