"""Versioning and the other pipeline services."""

import pytest

from pipelines import services
from pipelines.models import Pipeline, PipelineVersion, Stage
from tests.factories import action, definition

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("known_providers")]


def save(doc=None, **kwargs):
    return services.pipeline_save(document=doc or definition(), **kwargs)


def test_each_change_adds_one_version_and_keeps_the_earlier_ones(owner):
    save(user=owner)
    for mode in ("QUEUED", "PARALLEL", "SUPERSEDED"):
        result = save(definition(executionMode=mode), user=owner)
        assert result.changed
    pipeline = Pipeline.objects.get()
    assert pipeline.version == 4
    assert list(pipeline.versions.values_list("number", flat=True)) == [4, 3, 2, 1]
    modes = [services.pipeline_export(pipeline=pipeline, version=n)["pipeline"]["executionMode"]
             for n in (1, 2, 3, 4)]
    assert modes == ["SUPERSEDED", "QUEUED", "PARALLEL", "SUPERSEDED"]
    assert {v.created_by for v in pipeline.versions.all()} == {owner}


def test_a_save_equal_after_normalizing_makes_no_version():
    save()
    spelled_out = definition(executionMode="SUPERSEDED", variables=[], triggers=[])
    for a in (act for stage in spelled_out["stages"] for act in stage["actions"]):
        a.update(runOrder=1, inputArtifacts=a.get("inputArtifacts", []),
                 outputArtifacts=a.get("outputArtifacts", []))
        a["actionTypeId"]["version"] = 1
    result = save(spelled_out)
    assert (result.created, result.changed) == (False, False)
    assert PipelineVersion.objects.count() == 1


def test_an_exported_document_saved_back_makes_no_version():
    pipeline = save().pipeline
    result = save(services.pipeline_export(pipeline=pipeline))
    assert not result.changed and result.pipeline.version == 1


def test_versions_cannot_be_changed_once_saved():
    version = save().pipeline.current_version
    version.document = {}
    with pytest.raises(ValueError, match="immutable"):
        version.save()


def test_the_rows_follow_the_current_version():
    save()
    doc = definition()
    doc["stages"].insert(1, {"name": "Test", "actions": [action("Unit", "Test")]})
    doc["stages"][2]["actions"].insert(0, action("Lint", commands=["ruff"]))
    save(doc)
    pipeline = Pipeline.objects.get()
    assert [(s.name, s.position) for s in pipeline.stages.all()] == [
        ("Source", 0), ("Test", 1), ("Build", 2)]
    assert [a.name for a in pipeline.stages.get(name="Build").actions.all()] == [
        "Lint", "Compile"]


def test_transition_state_survives_a_save_and_goes_with_a_removed_stage(owner):
    save()
    build = Stage.objects.get(name="Build")
    assert services.stage_transition_set(stage=build, enabled=False, reason="freeze",
                                         user=owner)
    doc = definition()
    doc["stages"][1]["actions"][0]["commands"] = ["make"]
    save(doc)
    build = Stage.objects.get(name="Build")
    assert (build.transition_enabled, build.transition_disabled_reason,
            build.transition_changed_by) == (False, "freeze", "olivia")
    # A stage that leaves the definition and comes back starts enabled.
    save(definition(stages=[("Source", doc["stages"][0]["actions"]),
                            ("Other", [action("Compile", commands=["true"])])]))
    save(doc)
    assert Stage.objects.get(name="Build").transition_enabled


def test_disabling_a_transition_needs_a_reason():
    save()
    with pytest.raises(services.DefinitionInvalid) as refused:
        services.stage_transition_set(stage=Stage.objects.get(name="Build"), enabled=False,
                                      reason="  ")
    assert str(refused.value) == "reason: a reason is required to disable a transition"


def test_setting_a_transition_to_its_state_is_not_a_change():
    save()
    assert not services.stage_transition_set(stage=Stage.objects.get(name="Build"),
                                             enabled=True)


def test_create_refuses_an_existing_name_and_update_a_missing_one():
    save()
    with pytest.raises(services.DefinitionInvalid):
        save(create=True)
    with pytest.raises(services.PipelineNotFound):
        save(definition(name="ghost"), create=False)


def test_a_refused_document_changes_nothing():
    save()
    doc = definition()
    doc["stages"][1]["actions"][0]["runOrder"] = 0
    with pytest.raises(services.DefinitionInvalid):
        save(doc)
    assert Pipeline.objects.get().version == 1


def test_deleting_a_pipeline_deletes_its_versions_and_rows():
    pipeline = save().pipeline
    services.pipeline_delete(pipeline=pipeline)
    assert not PipelineVersion.objects.exists() and not Stage.objects.exists()


def test_document_load_reads_json_yaml_and_the_wrapper():
    doc, meta = services.document_load('{"pipeline": {"name": "x"}, "metadata": {"a": 1}}')
    assert (doc, meta) == ({"name": "x"}, {"metadata": {"a": 1}})
    assert services.document_load("name: x\nstages: []\n") == (
        {"name": "x", "stages": []}, None)


def test_document_load_keeps_yaml_dates_as_text():
    doc, _ = services.document_load("name: x\nreleased: 2024-01-31\n")
    assert doc["released"] == "2024-01-31"


@pytest.mark.parametrize(("text", "message"), [
    ("name: [x", "not valid JSON or YAML at line 1, column 9: expected ',' or ']', "
                 "but got '<stream end>'"),
    ('{"name": NaN}', "NaN is not a number JSON allows"),
    ("name: .inf", "name: inf is not a number JSON allows"),
    ("1: x", "the document: key 1 is not a string"),
    (b"\xff\xfe", "the document is not UTF-8 text"),
])
def test_document_load_refuses_what_json_cannot_hold(text, message):
    with pytest.raises(services.DefinitionInvalid) as refused:
        services.document_load(text)
    assert [str(p) for p in refused.value.problems] == [message]
