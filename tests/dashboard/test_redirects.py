"""After a dashboard button, the browser goes back to a page of this site only."""

import pytest

from pipelines import services
from tests.factories import action, definition


@pytest.fixture
def pipeline(db):
    doc = definition("gated", stages=[
        ("Source", [action("Checkout", "Source", "Simulate",
                           outputArtifacts=[{"name": "SourceOutput"}])]),
        ("Build", [action("Compile", provider="Simulate")]),
    ])
    return services.pipeline_save(document=doc).pipeline


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example/",
                                    "https://evil.example/", "javascript:alert(1)"])
def test_a_next_outside_the_site_is_ignored(client, operator, pipeline, target):
    client.force_login(operator)
    answer = client.post("/pipelines/gated/stages/Build/transition/",
                         {"enabled": "false", "reason": "freeze", "next": target})
    assert answer.status_code == 302
    assert answer["Location"] == "/pipelines/gated/"


def test_a_next_on_this_site_is_followed(client, operator, pipeline):
    client.force_login(operator)
    answer = client.post("/pipelines/gated/stages/Build/transition/",
                         {"enabled": "false", "reason": "freeze",
                          "next": "/pipelines/gated/executions/"})
    assert answer["Location"] == "/pipelines/gated/executions/"
