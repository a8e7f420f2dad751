"""Nothing a pipeline document says is silently ignored.

The test walks the CodePipeline API's own model of a pipeline (botocore's
``PipelineDeclaration`` with all its nested members, loaded through botocore's
loader) and checks each member is in exactly one class of ``pipelines.fields``:

- implemented: a value of the wrong type is reported as an error at its path
  (validation reads it);
- inert AWS infrastructure: accepted without a problem, kept by the export, and
  listed in docs/conditions.md;
- warned: reported as a warning at its path.

When botocore grows a field, it shows up here, unclassified.
"""

from pathlib import Path

import pytest
from botocore.loaders import Loader

from pipelines import fields
from pipelines.validation import validate_document
from tests.factories import action, definition

pytestmark = pytest.mark.usefixtures("known_providers")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "conditions.md"
CONDITION_KINDS = ("beforeEntry", "onSuccess", "onFailure")


def model_paths() -> dict[str, str]:
    """Every member path of PipelineDeclaration (``[]`` for list items) -> its shape type."""
    shapes = Loader().load_service_model("codepipeline", "service-2")["shapes"]
    out: dict[str, str] = {}

    def walk(shape_name: str, path: str) -> None:
        shape = shapes[shape_name]
        if shape["type"] == "structure":
            for member, ref in shape["members"].items():
                child = f"{path}.{member}" if path else member
                out[child] = shapes[ref["shape"]]["type"]
                walk(ref["shape"], child)
        elif shape["type"] == "list":
            walk(shape["member"]["shape"], f"{path}[]")

    walk("PipelineDeclaration", "")
    return out


PATHS = model_paths()


def base_document() -> dict:
    """A valid pipeline with one of every object the model nests, to put a member into."""
    doc = definition(variables=[{"name": "Env", "defaultValue": "prod"}], stages=[
        ("Source", [action("Checkout", "Source", "Git", namespace="SourceVariables",
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", commands=["make"], inputArtifacts=[{"name": "Src"}],
                          outputArtifacts=[{"name": "App"}],
                          environmentVariables=[{"name": "A", "value": "b"}])]),
    ])
    doc["triggers"] = [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Checkout",
        "push": [{"branches": {"includes": ["main"]}, "tags": {"includes": ["v*"]},
                  "filePaths": {"includes": ["src/**"]}}],
        "pullRequest": [{"events": ["OPEN"], "branches": {"includes": ["main"]},
                         "filePaths": {"includes": ["src/**"]}}]}}]
    doc["artifactStore"] = {"type": "S3", "location": "bucket",
                            "encryptionKey": {"id": "k", "type": "KMS"}}
    rule = {"name": "r", "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                        "provider": "Commands", "version": "1"},
            "commands": ["true"], "inputArtifacts": [{"name": "Src"}]}
    stage = doc["stages"][1]
    stage["blockers"] = [{"name": "b", "type": "Schedule"}]
    stage["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [dict(rule)]}]}
    stage["onSuccess"] = {"conditions": [{"result": "FAIL", "rules": [dict(rule)]}]}
    stage["onFailure"] = {"result": "ROLLBACK", "retryConfiguration": {"retryMode": "ALL_ACTIONS"},
                          "conditions": [{"result": "ROLLBACK", "rules": [dict(rule)]}]}
    return doc


def covered(path: str, classified) -> bool:
    """Whether ``path`` or one of its ancestors is in ``classified``."""
    parts = path.split(".")
    prefixes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(p in classified or p.removesuffix("[]") in classified for p in prefixes)


IMPLEMENTED = sorted(p for p in PATHS
                     if not covered(p, fields.INERT) and not covered(p, fields.WARNED))


def locate(doc: dict, path: str) -> tuple[dict, str, str]:
    """The object holding the member at ``path`` in ``doc``, the member, and its real path."""
    *parents, member = path.split(".")
    obj, real = doc, ""
    for part in parents:
        name, items = part.removesuffix("[]"), part.endswith("[]")
        obj = obj[name]
        real = f"{real}.{name}" if real else name
        if items:
            index = 1 if name == "stages" else 0
            obj = obj[index]
            real += f"[{index}]"
    return obj, member, f"{real}.{member}" if real else member


WRONG = {"string": ["x"], "integer": "x", "list": "x", "structure": "x", "map": "x",
         "boolean": "x"}


def test_every_member_of_the_model_is_in_one_class():
    assert not (fields.INERT & set(fields.WARNED))
    assert set(PATHS) >= fields.INERT, fields.INERT - set(PATHS)
    assert set(fields.WARNED) <= set(PATHS)
    assert len(IMPLEMENTED) > 60  # the walk found the model


@pytest.mark.parametrize("path", IMPLEMENTED)
def test_an_implemented_member_is_read_by_validation(path):
    doc = base_document()
    obj, member, real = locate(doc, path)
    obj[member] = WRONG[PATHS[path]]
    reported = [p for p in validate_document(doc) if p.severity == "error"]
    assert any(p.path == real or p.path.startswith(real + ".") or p.path.startswith(real + "[")
               for p in reported), (real, [str(p) for p in reported])


INERT_VALUES = {"pipelineType": "V2", "version": 3,
                "artifactStores": {"eu-west-1": {"type": "S3", "location": "b"}}}


@pytest.mark.parametrize("path", sorted(fields.INERT))
def test_an_inert_member_is_kept_without_a_problem_and_listed_in_the_rules(path):
    doc = base_document()
    obj, member, real = locate(doc, path)
    obj.setdefault(member, INERT_VALUES.get(member, "arn:aws:iam::1:role/x"))
    assert [str(p) for p in validate_document(doc)
            if p.path == real or p.path.startswith(real + ".")] == []
    assert f"`{path}`" in DOCS.read_text()


@pytest.mark.parametrize("path", sorted(fields.WARNED))
def test_a_warned_member_is_reported_at_its_path(path):
    doc = base_document()
    obj, member, real = locate(doc, path)
    obj.setdefault(member, [{"events": ["OPEN"]}] if member == "pullRequest" else ["V"])
    assert (real, "warning") in [(p.path, p.severity) for p in validate_document(doc)]


def test_a_member_of_no_class_is_reported_at_its_path():
    doc = base_document()
    doc["stages"][1]["actions"][0]["runorder"] = 2
    doc["stages"][1]["onSuccess"]["conditions"][0]["rules"][0]["timeout"] = 5
    warned = [p.path for p in validate_document(doc) if p.severity == "warning"
              and not p.path.endswith(".conditions")]
    assert warned == ["stages[1].actions[0].runorder",
                      "stages[1].onSuccess.conditions[0].rules[0].timeout"]
