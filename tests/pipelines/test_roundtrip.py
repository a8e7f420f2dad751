"""Export → import gives the same pipeline: generated definitions and real ones, JSON and YAML."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings

from pipelines import documents, services
from pipelines.models import Pipeline
from pipelines.validation import validate_document
from tests.pipelines.conftest import load_fixture
from tests.pipelines.strategies import definitions

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("known_providers")]

FIXTURE_DEFINITIONS = [
    "awscli-create-pipeline-input-MySecondPipeline.json",
    "awscli-get-pipeline-MyFirstPipeline.json",
    "brain-tasks-pipeline-codestar-connection.json",
    "cicdtest-java-github-v1-cloudformation-changeset.json",
    "moto-create-pipeline-response-s3-source-manual-approval.json",
    "moto-update-pipeline-request-minimal-fields.json",
    "secureops-pipeline-ecs-deploy.json",
    "tic-tac-toe-pipeline-github-v1-ecs.json",
]


class _Rollback(Exception):
    pass


def assert_round_trip(document, fmt: str) -> None:
    """Save, export, import the export (no change), delete, import again (the same)."""
    first = services.pipeline_save(document=document)
    assert first.created
    pipeline = first.pipeline
    text = documents.dump(services.pipeline_export(pipeline=pipeline), fmt)
    again = services.pipeline_save(document=services.document_load(text)[0])
    assert (again.created, again.changed) == (False, False)
    assert again.pipeline.version == 1
    exported = services.pipeline_export(pipeline=pipeline)["pipeline"]

    services.pipeline_delete(pipeline=pipeline)
    fresh = services.pipeline_save(document=services.document_load(text)[0]).pipeline
    assert services.pipeline_export(pipeline=fresh)["pipeline"] == exported
    # The rows the admin edits give the same document back.
    fresh = Pipeline.objects.get(pk=fresh.pk)
    assert documents.normalize(services.document_from_rows(fresh)) == fresh.document


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=definitions())
def test_generated_definitions_are_valid_and_round_trip_in_json_and_yaml(document):
    # A field of no CodePipeline shape ("x-team") is kept and warned at its path.
    assert [(p.path, p.severity) for p in validate_document(document)] == (
        [("x-team", "warning")] if "x-team" in document else [])
    for fmt in ("json", "yaml"):
        try:
            with transaction.atomic():
                assert_round_trip(document, fmt)
                raise _Rollback
        except _Rollback:
            pass


@pytest.mark.parametrize("fmt", ["json", "yaml"])
@pytest.mark.parametrize("fixture", FIXTURE_DEFINITIONS)
def test_codepipeline_documents_round_trip(fixture, fmt):
    assert_round_trip(load_fixture(fixture), fmt)


def test_normalizing_twice_changes_nothing():
    for fixture in FIXTURE_DEFINITIONS:
        doc, _ = documents.unwrap(load_fixture(fixture))
        once = documents.normalize(doc)
        assert documents.normalize(once) == once


def test_an_export_reads_like_get_pipeline():
    pipeline = services.pipeline_save(
        document=load_fixture("moto-update-pipeline-request-minimal-fields.json")).pipeline
    text = documents.dump(services.pipeline_export(pipeline=pipeline), "json")
    doc = services.document_load(text)[0]
    assert list(doc)[:4] == ["name", "roleArn", "artifactStore", "stages"]
    approval = doc["stages"][1]["actions"][0]
    # CodePipeline's server-side defaults are filled in, in its key order.
    assert approval == {
        "name": "Action-1",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual",
                         "version": "1"},
        "runOrder": 1, "configuration": {}, "outputArtifacts": [], "inputArtifacts": [],
    }
    assert list(approval) == ["name", "actionTypeId", "runOrder", "configuration",
                              "outputArtifacts", "inputArtifacts"]
