"""schemathesis against ``/api/schema/``: every operation of the REST API fuzzed in-process
(WSGI), with schema-conforming and schema-violating inputs, as a signed-in superuser.

Checked on every answer: no 5xx, and every 4xx carries the API's one error body (a JSON
object with a ``detail`` string). Bounded: ``EXAMPLES`` per operation and mode,
derandomized, so a run is repeatable and stays under a minute. The number of cases run is
printed (``-s``) and asserted to be at least the planned floor.
"""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager

import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode

from config.api_auth import token_create

EXAMPLES = 10
# A whole definition document per case: generating and validating one costs about a
# second here, so these two get fewer (the pipelines tests fuzz validation itself).
EXAMPLES_BY_OPERATION = {"POST /api/pipelines/": 4, "PUT /api/pipelines/{name}/": 4}


@contextmanager
def connection_kept():
    """Requests served by the WSGI handler itself (not Django's test client) must not close
    the test's database connection when they finish, as the test client also arranges
    (and undoes after each of its own requests: so this wraps the fuzzing only)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _problem(response) -> str | None:
    status = response.status_code
    if status >= 500:
        return f"{status} server error"
    if 400 <= status < 500:
        if status == 405 and not response.content:
            return None
        try:
            body = json.loads(response.content)
        except ValueError:
            return f"{status} without a JSON body: {response.content[:120]!r}"
        if not isinstance(body, dict) or not isinstance(body.get("detail"), str):
            return f"{status} without the error body: {response.content[:200]!r}"
    return None


def test_fuzzing_the_api_finds_no_server_error_and_one_error_body(
        world, api, release, capsys):
    admin = User.objects.create_superuser("root", "root@example.com", "pw-root")
    _, token = token_create(user=admin)
    auth = {"Authorization": f"Token {token}"}
    answer = api(admin).get("/api/schema/?format=json")
    assert answer.status_code == 200
    schema = schemathesis.openapi.from_dict(json.loads(answer.content))
    schema.app = get_wsgi_application()

    started = time.monotonic()
    cases, problems, statuses, unsatisfiable = 0, {}, {}, []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    known = {
        "name": "demo", "pipeline": "demo", "stage": "Production", "number": 1,
        "id": str(world["execution"].execution_id),
    }
    by_prefix = {
        "/api/action-executions/": {"id": str(world["action_execution"].action_execution_id)},
        "/api/approvals/": {"id": str(world["approval"].pk)},
        "/api/executions/{id}/artifacts/": {"name": "Src"},
    }

    def aim(case, operation) -> None:
        """Point the path at the world's objects, so bodies and queries reach the code
        behind the lookups (random names mostly meet a 404)."""
        values = dict(known)
        for prefix, extra in by_prefix.items():
            if operation.path.startswith(prefix):
                values.update(extra)
        for key in list(case.path_parameters or {}):
            if key in values:
                case.path_parameters[key] = values[key]

    def fuzz(operation, mode) -> None:
        @given(case=operation.as_strategy(generation_mode=mode), aimed=st.booleans())
        @settings(max_examples=EXAMPLES_BY_OPERATION.get(operation.label, EXAMPLES),
                  deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def probe(case, aimed):
            nonlocal cases
            # A DELETE aimed at the world would take it away from the operations after it.
            if aimed and operation.method.upper() != "DELETE":
                aim(case, operation)
            # The engine's queue is held (release.call captures on-commit work).
            response = release.call(case.call, headers=auth)
            cases += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            problem = _problem(response)
            if problem:
                key = f"{operation.label}: {problem}"
                problems.setdefault(key, case.as_curl_command(headers=auth))

        try:
            probe()
        except Unsatisfiable:      # no input can violate this operation's schema
            unsatisfiable.append(f"{operation.label} ({mode})")

    spent: dict[str, float] = {}
    with connection_kept():
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                begun = time.monotonic()
                fuzz(operation, mode)
                spent[operation.label] = spent.get(operation.label, 0) + (
                    time.monotonic() - begun)
    # Every method on every path, also those the schema does not list (OPTIONS, HEAD, and
    # the router's 405s): OPTIONS on a pipeline and its webhook once answered 500
    # (finding 9). Hostile bodies on each: none, empty, nested deeper than the limit, and
    # an alias-expanding YAML document (findings 1-2).
    client = api(admin)
    bodies = [(None, None), ("{}", "application/json"),
              ("[" * 5000 + "]" * 5000, "application/json"),
              ("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n", "application/yaml"),
              ("{" * 300 + "}" * 300, "application/yaml")]
    methods = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
    swept = 0
    with connection_kept():
        for path in sorted({operation.path for operation in operations}):
            for method in methods:
                aimed = method != "DELETE"  # keep the world for the methods after it
                values = dict(known) if aimed else {}
                for prefix, extra in by_prefix.items():
                    if aimed and path.startswith(prefix):
                        values.update(extra)
                url = re.sub(r"{(\w+)}",
                             lambda m, v=values: str(v.get(m.group(1), "no-such")), path)
                for body, content_type in bodies:
                    if body is not None and method in ("GET", "HEAD", "OPTIONS", "DELETE"):
                        continue
                    kind = {"content_type": content_type} if content_type else {}
                    response = release.call(client.generic, method, url, body or "", **kind)
                    swept += 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    problem = _problem(response)
                    if method == "HEAD" and problem and response.status_code < 500:
                        problem = None  # a HEAD answer has no body to carry the error
                    if problem:
                        problems.setdefault(f"{method} {path}: {problem}",
                                            f"{method} {url} {content_type or ''}")
    elapsed = time.monotonic() - started
    with capsys.disabled():
        print(f"\nevery method on every path: {swept} requests")
        print(f"\nschemathesis: {cases} cases over {len(operations)} operations in "
              f"{elapsed:.1f} s; statuses {dict(sorted(statuses.items()))}; "
              f"no negative input for {unsatisfiable or 'none'}; slowest "
              + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(
                  spent.items(), key=lambda kv: -kv[1])[:4]))
    assert not problems, "\n".join(f"{k}\n    {v}" for k, v in problems.items())
    assert cases >= 300
