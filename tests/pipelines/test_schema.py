"""The OpenAPI schema and the browsable docs."""

import io

import pytest
from django.core.management import call_command


def test_the_schema_validates_without_a_single_warning(tmp_path):
    # The same command the README gives; --fail-on-warn turns any warning into an error.
    out = tmp_path / "schema.yaml"
    stderr = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out),
                 stderr=stderr)
    assert out.read_text().startswith("openapi: 3")
    assert "Warning" not in stderr.getvalue()


@pytest.mark.django_db
def test_the_schema_describes_the_pipelines_endpoints_in_camel_case(api, viewer):
    response = api(viewer).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/pipelines/", "/api/pipelines/{name}/", "/api/pipelines/{name}/versions/",
            "/api/pipelines/{name}/versions/{number}/"} <= set(schema["paths"])
    create = schema["paths"]["/api/pipelines/"]["post"]
    assert {"application/json", "application/yaml"} <= set(create["requestBody"]["content"])
    action = schema["components"]["schemas"]["ActionDeclaration"]["properties"]
    assert {"actionTypeId", "runOrder", "inputArtifacts", "outputArtifacts"} <= set(action)
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.django_db
def test_the_docs_page_loads_its_assets_from_this_server(client, viewer):
    client.force_login(viewer)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html and "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html


@pytest.mark.django_db
def test_the_schema_and_docs_answer_401_to_an_anonymous_caller(api):
    assert api(None).get("/api/schema/").status_code == 401
    assert api(None).get("/api/docs/").status_code == 401
