"""The ``nextToken`` of the per-pipeline lists (ListPipelineExecutions,
ListActionExecutions, ListRuleExecutions): one check (``awsapi.operations.base
.pipeline_page_after``) refuses a token that was not ours, one given out by another
operation, and one given out for another pipeline, with CodePipeline's
InvalidNextTokenException."""

from types import SimpleNamespace

import pytest

from awsapi import errors
from awsapi.operations import dispatch
from awsapi.operations.base import pipeline_page_token
from awsapi.operations.conditions import _RULES_SALT
from awsapi.operations.executions import _ACTIONS_SALT, _EXECUTIONS_SALT
from pipelines.services import pipeline_save
from tests.factories import definition

LISTS = {"ListPipelineExecutions": _EXECUTIONS_SALT, "ListActionExecutions": _ACTIONS_SALT,
         "ListRuleExecutions": _RULES_SALT}


@pytest.fixture
def two_pipelines(owner):
    return [pipeline_save(document=definition(name), user=owner).pipeline
            for name in ("mine", "theirs")]


def _refusal(caller, operation: str, body: dict) -> str:
    with pytest.raises(errors.AwsError) as refused:
        dispatch(operation, caller, body)
    assert refused.value.code == "InvalidNextTokenException"
    return refused.value.message


@pytest.mark.parametrize("operation", sorted(LISTS))
def test_a_next_token_is_good_only_for_its_operation_and_pipeline(operation, two_pipelines,
                                                                  viewer):
    mine, theirs = two_pipelines
    caller = SimpleNamespace(user=viewer, region="eu-west-1")
    body = {"pipelineName": "mine"}
    # A token given out for this pipeline pages it (nothing older than position 1 here).
    answer = dispatch(operation, caller, {**body, "nextToken": pipeline_page_token(
        mine, 1, salt=LISTS[operation])})
    assert "nextToken" not in answer

    assert _refusal(caller, operation, {**body, "nextToken": "3"}) == (
        f"The nextToken was not returned by {operation}.")
    other = next(o for o in LISTS if o != operation)
    assert _refusal(caller, operation, {**body, "nextToken": pipeline_page_token(
        mine, 1, salt=LISTS[other])}) == f"The nextToken was not returned by {operation}."
    assert _refusal(caller, operation, {**body, "nextToken": pipeline_page_token(
        theirs, 1, salt=LISTS[operation])}) == (
        "The nextToken was not returned for this pipeline.")
