"""The OpenAPI schema describes the executions endpoints in the API's camelCase shapes."""

import pytest


@pytest.mark.django_db
def test_the_schema_lists_every_executions_endpoint_with_its_shapes(api, viewer):
    response = api(viewer).get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    expected = {
        "/api/pipelines/{name}/state/": {"get"},
        "/api/pipelines/{name}/stages/{stage}/transition/": {"post"},
        "/api/pipelines/{name}/stages/{stage}/rollback/": {"post"},
        "/api/pipelines/{name}/executions/": {"get", "post"},
        "/api/executions/{id}/": {"get"},
        "/api/executions/{id}/stop/": {"post"},
        "/api/executions/{id}/stages/{stage}/retry/": {"post"},
        "/api/executions/{id}/actions/": {"get"},
        "/api/executions/{id}/events/": {"get"},
        "/api/executions/{id}/artifacts/{name}/": {"get"},
        "/api/action-executions/{id}/log/": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    start = paths["/api/pipelines/{name}/executions/"]["post"]
    assert set(start["responses"]) >= {"201", "400", "401", "403", "404", "409"}
    listing = paths["/api/pipelines/{name}/executions/"]["get"]
    assert {"status", "limit", "offset"} <= {p["name"] for p in listing["parameters"]}
    components = schema["components"]["schemas"]
    assert {"pipelineExecutionId", "pipelineName", "artifactRevisions", "stages",
            "lastUpdateTime"} <= set(components["PipelineExecution"]["properties"])
    assert components["PipelineExecutionStatusEnum"]["enum"] == [
        "InProgress", "Stopping", "Stopped", "Succeeded", "Superseded", "Failed"]
    download = paths["/api/executions/{id}/artifacts/{name}/"]["get"]["responses"]["200"]
    assert "application/zip" in download["content"]
