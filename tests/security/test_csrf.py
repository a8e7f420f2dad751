"""CSRF: every write a browser session could make needs the CSRF token (every URL pattern,
walked); the endpoints exempt from it are those that never read the session cookie."""

from __future__ import annotations

import json

from django.test import Client

from executions.models import PipelineExecution
from tests.security.conftest import all_routes, error_body, fill, snapshot

ROUTES = all_routes()
# Exempt from CSRF because their only credential is in the request itself: a browser's
# cookie is never looked at, so a forged cross-site request carries nothing of value.
CSRF_EXEMPT = {
    "api-push-hook": "HMAC signature with the pipeline's webhook secret",
    "api-job-result": "the job's single-use token in the URL",
    "api-aws-webhook": "the webhook's unguessable URL token, then its own authentication",
    "awsapi:endpoint": "SigV4 signature with a user's access key, or an agent key in the "
                       "Authorization header (awsapi/agents.py)",
    "s3-object": "SigV4 signature with a job's artifact credentials (docs/job-workers.md)",
}


def _signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_every_session_write_without_the_csrf_token_is_refused(world, owner):
    client = _signed_in(owner)          # may do almost anything: only CSRF can stop it
    before = snapshot()
    problems = []
    for route in ROUTES:
        if route.name in CSRF_EXEMPT:
            continue
        path = fill(route, world)
        methods = ["POST"]
        if path.startswith("/api/"):
            methods += [m for m in ("PUT", "PATCH", "DELETE") if route.implements(m)]
        for method in methods:
            response = client.generic(method, path, data="{}", content_type="application/json")
            # The Swagger UI page renders a bare "403 Forbidden" of its own.
            refused = response.status_code == 403 and (
                b"CSRF" in response.content or route.name == "api-docs")
            if not refused:
                problems.append(f"{method} {path}: {response.status_code}")
            elif path.startswith("/api/") and route.name != "api-docs" and not (
                    error_body(response)["detail"].startswith("CSRF Failed")):
                problems.append(f"{method} {path}: not the API's error body: "
                                f"{response.content[:80]!r}")
    assert not problems, "\n".join(problems)
    assert snapshot() == before


def test_the_exempt_endpoints_ignore_the_session(world, owner):
    client = _signed_in(owner)
    paths = {r.name: fill(r, world) for r in ROUTES if r.name in CSRF_EXEMPT}
    assert set(paths) == set(CSRF_EXEMPT)
    before = snapshot()
    hook = client.post(paths["api-push-hook"], "{}", content_type="application/json",
                       HTTP_X_GITHUB_EVENT="push")
    assert (hook.status_code, hook.json()) == (
        401, {"detail": "The webhook signature is missing or wrong."})
    assert client.post(paths["api-job-result"], "{}",
                       content_type="application/json").status_code == 404
    aws = client.post(paths["awsapi:endpoint"], "{}", content_type="application/x-amz-json-1.1",
                      HTTP_X_AMZ_TARGET="CodePipeline_20150709.DeletePipeline")
    assert aws.status_code in (400, 403) and "__type" in json.loads(aws.content)
    for operation in ("PollForJobs", "ConveyorRenewJobLease", "PutJobSuccessResult"):
        agent = client.post(paths["awsapi:endpoint"], "{}",
                            content_type="application/x-amz-json-1.1",
                            HTTP_X_AMZ_TARGET=f"CodePipeline_20150709.{operation}")
        # A signed-in owner is no agent (nor a signer): refused before anything is read.
        assert json.loads(agent.content)["__type"] in (
            "UnrecognizedClientException", "UnknownOperationException"), operation
    s3 = client.put(paths["s3-object"], b"PK", content_type="application/zip")
    assert s3.status_code == 403 and b"<Code>AccessDenied</Code>" in s3.content
    assert snapshot() == before


def test_with_the_token_the_same_session_writes_go_through(world, owner, release):
    """Positive control: the refusals above are CSRF's, not the requests'."""
    client = _signed_in(owner)
    assert client.get("/pipelines/demo/").status_code == 200
    token = client.cookies["csrftoken"].value
    started = release.call(client.post, "/api/pipelines/demo/executions/", "{}",
                           content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert started.status_code == 201, started.content
    released = release.call(client.post, "/pipelines/demo/release/",
                            {"csrfmiddlewaretoken": token})
    assert released.status_code == 302
    assert PipelineExecution.objects.count() == 3
