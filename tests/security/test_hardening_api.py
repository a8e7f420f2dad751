"""The API answers hostile or unusual requests with a 4xx naming the reason, never a 5xx:
OPTIONS on every endpoint, nested bodies, alias-expanding YAML (security review, issue 19)."""


import time

import pytest

from tests.factories import definition


@pytest.fixture
def demo(owner, api):
    response = api(owner).post("/api/pipelines/", definition(name="demo"), format="json")
    assert response.status_code == 201, response.content
    return "demo"


@pytest.mark.parametrize("path", [
    "/api/pipelines/", "/api/pipelines/demo/", "/api/pipelines/demo/webhook/",
    "/api/pipelines/demo/versions/", "/api/pipelines/demo/versions/1/",
])
def test_options_on_pipeline_endpoints_describes_them_instead_of_failing(demo, owner, api, path):
    response = api(owner).options(path)
    assert response.status_code == 200, response.content
    assert response.json()["name"]


def laughs(levels: int) -> str:
    """The review's document: each anchor level lists the previous one ten times."""
    lines = ['a0: &a0 "lol"']
    for n in range(1, levels + 1):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def nested_yaml(depth: int) -> str:
    """Mappings in mappings (flow style: block style would take megabytes of indentation)."""
    return "{k: " * depth + "v" + "}" * depth


def timed(call):
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def test_an_alias_bomb_to_the_job_result_endpoint_is_refused_before_any_parsing(api):
    body = laughs(7)
    assert len(body) < 600
    response, seconds = timed(lambda: api(None).generic(
        "POST", "/api/jobs/x/result", body, content_type="application/yaml"))
    assert response.status_code == 404  # no job has this token: the body was never read
    assert seconds < 1.0  # was 22 s (7 alias levels); bench/refusals.py prints the figures


def test_a_job_report_sent_as_yaml_is_refused_as_an_unsupported_media_type(api):
    response = api(None).generic("POST", "/api/jobs/x/result", "status: Succeeded\n",
                                 content_type="application/yaml")
    # The token is checked first (404), and YAML would not be parsed anyway.
    assert response.status_code == 404


def test_an_alias_bomb_from_a_signed_in_owner_is_refused_in_milliseconds(owner, api):
    response, seconds = timed(lambda: api(owner).generic(
        "POST", "/api/pipelines/", laughs(7), content_type="application/yaml"))
    assert response.status_code == 400
    assert "aliases" in response.json()["detail"]
    assert seconds < 1.0  # was 22 s (7 alias levels); bench/refusals.py prints the figures


@pytest.mark.parametrize("content_type,body", [
    ("application/json", nested_json(50_000)),
    ("application/yaml", nested_json(50_000)),
    ("application/yaml", nested_yaml(1_500)),
])
def test_deeply_nested_bodies_answer_400_naming_the_depth(owner, api, content_type, body):
    response, seconds = timed(lambda: api(owner).generic(
        "POST", "/api/pipelines/", body, content_type=content_type))
    assert response.status_code == 400, response.content
    assert "64 levels deep" in response.json()["detail"]
    assert seconds < 1.0  # was 22 s (7 alias levels); bench/refusals.py prints the figures


def test_deeply_nested_json_to_any_json_endpoint_answers_400(demo, operator, api):
    response = api(operator).generic("POST", "/api/pipelines/demo/executions/",
                                     nested_json(50_000), content_type="application/json")
    assert response.status_code == 400
    assert "levels deep" in response.json()["detail"]


def test_a_yaml_document_with_too_many_values_is_refused(owner, api):
    body = "x: [" + ", ".join("1" for _ in range(30_000)) + "]\n"
    response = api(owner).generic("POST", "/api/pipelines/", body,
                                  content_type="application/yaml")
    assert response.status_code == 400
    assert "more than 20000 values" in response.json()["detail"]


def test_a_body_larger_than_the_limit_is_refused_with_413(owner, api, settings):
    settings.CONVEYOR_MAX_BODY_BYTES = 1000
    response = api(owner).generic("POST", "/api/pipelines/", "[" + "1," * 1000 + "1]",
                                  content_type="application/json")
    assert response.status_code == 413
    assert "larger than 1000 bytes" in response.json()["detail"]


def test_yaml_is_not_parsed_where_no_definition_is_expected(demo, operator, api):
    response = api(operator).generic("POST", "/api/pipelines/demo/executions/",
                                     "a: 1\n", content_type="application/yaml")
    assert response.status_code == 415
