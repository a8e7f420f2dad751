"""Validation of arbitrary input never crashes: it returns problems or accepts."""

import contextlib

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import documents, services
from pipelines.validation import errors, validate_document
from tests.pipelines.strategies import definitions

pytestmark = pytest.mark.usefixtures("known_providers")

KEYS = ["name", "stages", "actions", "actionTypeId", "category", "provider", "owner", "version",
        "runOrder", "namespace", "inputArtifacts", "outputArtifacts", "configuration",
        "commands", "environmentVariables", "timeoutInMinutes", "value", "type", "files",
        "variables", "defaultValue", "triggers", "gitConfiguration", "sourceActionName",
        "push", "pullRequest", "branches", "includes", "executionMode", "pipelineType", "x"]
LEAVES = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
          | st.text(max_size=8)
          | st.sampled_from(["Source", "Build", "Git", "Shell", "S3", "#{a.b}", "#{variables.v}",
                             "#{", "SUPERSEDED", "V2", "A", "B"]))
json_values = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=6),
    max_leaves=50,
)


@st.composite
def mutated_definitions(draw):
    """A valid definition with a few values replaced by arbitrary JSON."""
    doc = draw(definitions())
    for _ in range(draw(st.integers(1, 4))):
        target = doc
        while True:
            if isinstance(target, dict) and target:
                key = draw(st.sampled_from(sorted(target)))
            elif isinstance(target, list) and target:
                key = draw(st.integers(0, len(target) - 1))
            else:
                break
            if draw(st.booleans()) or not isinstance(target[key], dict | list):
                target[key] = draw(json_values)
                break
            target = target[key]
    return doc


def check(doc) -> None:
    problems = validate_document(doc)
    for problem in problems:
        assert isinstance(problem.path, str) and problem.message
        assert problem.severity in ("error", "warning")
    if not errors(problems):
        documents.normalize(doc)


@settings(max_examples=300, deadline=None)
@given(doc=json_values)
def test_arbitrary_json_gets_problems_not_a_crash(doc):
    check(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=mutated_definitions())
def test_a_definition_broken_anywhere_gets_problems_not_a_crash(doc):
    check(doc)


class _Rollback(Exception):
    pass


@pytest.mark.django_db
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(doc=mutated_definitions())
def test_whatever_validation_accepts_saves(doc):
    """Accepted documents must also fit the rows (no database error after validation)."""
    with contextlib.suppress(_Rollback), transaction.atomic():
        with contextlib.suppress(services.DefinitionInvalid):
            services.pipeline_save(document=doc)
        raise _Rollback


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=100))
def test_any_text_loads_or_is_refused_with_a_problem(text):
    try:
        services.document_load(text)
    except services.DefinitionInvalid as refused:
        assert refused.problems and refused.problems[0].message
