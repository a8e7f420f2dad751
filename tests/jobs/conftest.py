"""Fixtures of the job tests: a custom action type and a pipeline that uses it."""

import pytest

from jobs.action_types import action_type_create
from pipelines.services import pipeline_save
from tests.awsapi.conftest import aws, django_db_modify_db_settings, worker  # noqa: F401
from tests.executions.conftest import _quiet_heartbeat, driver, sim  # noqa: F401
from tests.factories import action, definition

TYPE = {"category": "Build", "owner": "Custom", "provider": "AcmeBuild", "version": "1"}


def type_data(**overrides) -> dict:
    data = {
        "category": "Build", "provider": "AcmeBuild", "version": "1",
        "settings": {"entityUrlTemplate": "https://ci.example.com/{Config:ProjectName}",
                     "executionUrlTemplate":
                         "https://ci.example.com/{Config:ProjectName}/{ExternalExecutionId}"},
        "configurationProperties": [
            {"name": "ProjectName", "required": True, "key": True, "secret": False,
             "queryable": True, "type": "String"},
            {"name": "ApiToken", "required": False, "key": False, "secret": True},
        ],
        "inputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
    }
    data.update(overrides)
    return data


@pytest.fixture
def acme(db):
    """The custom action type Build/Custom/AcmeBuild/1 (queryable ProjectName)."""
    action_type, _ = action_type_create(data=type_data())
    return action_type


def custom_pipeline(name: str = "custom", *, project: str = "web", outputs=True,
                    timeout: int | None = None, **config):
    """Source (Simulate, artifact Src) → Build (the custom AcmeBuild action)."""
    fields = {"inputArtifacts": [{"name": "Src"}]}
    if outputs:
        fields["outputArtifacts"] = [{"name": "Built"}]
    if timeout:
        fields["timeoutInMinutes"] = timeout
    build = action("Acme", "Build", "AcmeBuild",
                   configuration={"ProjectName": project, **config}, **fields)
    doc = definition(name, stages=[
        ("Source", [sim("Checkout", "Source", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [build]),
    ])
    return pipeline_save(document=doc).pipeline
