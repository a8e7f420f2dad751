"""Validation of stage conditions (beforeEntry, onSuccess, onFailure) with JSON paths.

Each case changes one stage of a valid pipeline and asserts the complete list
of problems, so a rule that stops firing, or fires at the wrong path, fails.
"""

import copy

import pytest

from pipelines.validation import validate_document
from tests.factories import action, definition

pytestmark = pytest.mark.usefixtures("known_providers")


def rule(provider="VariableCheck", name="r1", **more) -> dict:
    config = {"Variable": "#{SourceVariables.BranchName}", "Value": "main", "Operator": "EQ"}
    out = {"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS",
                                        "provider": provider, "version": "1"}}
    if provider == "VariableCheck":
        out["configuration"] = config
    out.update(more)
    return out


def pipeline(mode: str = "SUPERSEDED", **deploy) -> dict:
    """Source, Build, Deploy; ``deploy`` adds fields to the Deploy stage."""
    doc = definition(executionMode=mode, stages=[
        ("Source", [action("Checkout", "Source", "Git", namespace="SourceVariables",
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", commands=["make"], inputArtifacts=[{"name": "Src"}],
                          outputArtifacts=[{"name": "App"}])]),
        ("Deploy", [action("Release", "Deploy", "Shell", inputArtifacts=[{"name": "App"}])]),
    ])
    doc["stages"][2].update(copy.deepcopy(deploy))
    return doc


def problems(doc: dict) -> list[tuple[str, str, str]]:
    return [(p.path, p.severity, p.message) for p in validate_document(doc)]


def test_conditions_are_evaluated_so_a_valid_condition_draws_no_warning():
    doc = pipeline(beforeEntry={"conditions": [{"result": "FAIL", "rules": [rule()]}]},
                   onSuccess={"conditions": [{"result": "FAIL", "rules": [rule()]}]},
                   onFailure={"conditions": [{"result": "RETRY", "rules": [rule()]}]})
    assert validate_document(doc) == []


def test_every_kind_of_condition_with_each_allowed_result_is_valid():
    for before in ("FAIL", "SKIP"):
        for success in ("ROLLBACK", "FAIL"):
            doc = pipeline(
                beforeEntry={"conditions": [{"result": before, "rules": [rule()]}]},
                onSuccess={"conditions": [{"result": success, "rules": [rule()]}]},
                onFailure={"conditions": [{"result": "ROLLBACK", "rules": [rule()]}]},
            )
            assert problems(doc) == []
    for failure in ({"result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}},
                    {"result": "RETRY"}, {"result": "ROLLBACK"}, {"result": "FAIL"}):
        assert problems(pipeline(onFailure=failure)) == []


@pytest.mark.parametrize(("deploy", "expected"), [
    ({"beforeEntry": {"conditions": [{"result": "ROLLBACK", "rules": [rule()]}]}},
     [("stages[2].beforeEntry.conditions[0].result", "error",
       '"ROLLBACK" is not a result of a beforeEntry condition: use FAIL, SKIP')]),
    ({"onSuccess": {"conditions": [{"result": "SKIP", "rules": [rule()]}]}},
     [("stages[2].onSuccess.conditions[0].result", "error",
       '"SKIP" is not a result of a onSuccess condition: use ROLLBACK, FAIL')]),
    ({"onFailure": {"result": "SKIP"}},
     [("stages[2].onFailure.result", "error",
       '"SKIP" is not a result of onFailure: use ROLLBACK, RETRY, FAIL')]),
    ({"onFailure": {"result": "FAIL", "retryConfiguration": {"retryMode": "SOME"}}},
     [("stages[2].onFailure.retryConfiguration", "error", "applies only with result RETRY"),
      ("stages[2].onFailure.retryConfiguration.retryMode", "error",
       '"SOME" is not a retry mode: use FAILED_ACTIONS, ALL_ACTIONS')]),
    ({"onFailure": {}},
     [("stages[2].onFailure.result", "error",
       "is required when onFailure has no conditions: use ROLLBACK, RETRY, FAIL")]),
    ({"onFailure": {"result": "RETRY", "conditions": [{"result": "ROLLBACK",
                                                       "rules": [rule()]}]}},
     [("stages[2].onFailure.result", "error",
       '"RETRY" differs from the result of onFailure.conditions[0], "ROLLBACK": with '
       "conditions, the condition's result applies; remove one of them")]),
    ({"beforeEntry": {"conditions": []}},
     [("stages[2].beforeEntry.conditions", "error", "must hold exactly one condition, not 0")]),
    ({"beforeEntry": {}}, [("stages[2].beforeEntry.conditions", "error", "is required")]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [rule(name=f"r{i}")
                                                                  for i in range(6)]}]}},
     [("stages[2].beforeEntry.conditions[0].rules", "error",
       "a condition has 1 to 5 rules, this one has 6")]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [rule(), rule()]}]}},
     [("stages[2].beforeEntry.conditions[0].rules[1].name", "error",
       'rule name "r1" is used twice in this condition')]),
    ({"beforeEntry": {"conditions": [{"rules": [rule()]}]}},
     [("stages[2].beforeEntry.conditions[0].result", "error", "is required: use FAIL, SKIP")]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
        rule(timeoutInMinutes=2, inputArtifacts=[{"name": "Nope"}])]}]}},
     [("stages[2].beforeEntry.conditions[0].rules[0].inputArtifacts[0]", "error",
       'artifact "Nope" is not produced by any action before this rule'),
      ("stages[2].beforeEntry.conditions[0].rules[0].timeoutInMinutes", "error",
       "must be between 5 and 86400 minutes, not 2")]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
        rule("Commands", commands=["curl -f http://health"], configuration={"A": "b"})]}]}},
     [("stages[2].beforeEntry.conditions[0].rules[0].configuration", "error",
       "a Commands rule takes no configuration: its commands are in commands")]),
    ({"beforeEntry": {"conditions": [{"result": "SKIP", "rules": [
        rule("Commands", commands=["true"])]}]}},
     [("stages[2].beforeEntry.conditions[0].rules[0].ruleTypeId.provider", "error",
       'a SKIP condition cannot use rule "Commands": use VariableCheck, Webhook')]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
        rule("CloudWatchAlarm", configuration={"AlarmName": "errors"})]}]}},
     [("stages[2].beforeEntry.conditions[0].rules[0].ruleTypeId.provider", "warning",
       'rule "CloudWatchAlarm" exists only on AWS: it cannot be evaluated in Conveyor '
       "(see the metrics and webhook rules)")]),
    ({"onSuccess": {"conditions": [{"result": "FAIL", "rules": [
        rule("LambdaInvoke", configuration={"FunctionName": "check"})]}]}},
     [("stages[2].onSuccess.conditions[0].rules[0].ruleTypeId.provider", "warning",
       'rule "LambdaInvoke" exists only on AWS: it cannot be evaluated in Conveyor '
       "(see the metrics and webhook rules)")]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [
        rule("Coin", ruleTypeId={"category": "Action", "owner": "Me", "provider": "Coin",
                                 "version": "2"})]}]}},
     [("stages[2].beforeEntry.conditions[0].rules[0].ruleTypeId.category", "error",
       '"Action" is not a rule category: use Rule'),
      ("stages[2].beforeEntry.conditions[0].rules[0].ruleTypeId.owner", "error",
       '"Me" is not a rule owner: use AWS'),
      ("stages[2].beforeEntry.conditions[0].rules[0].ruleTypeId.version", "error",
       '"2" is not a rule version: use "1"'),
      ("stages[2].beforeEntry.conditions[0].rules[0].ruleTypeId.provider", "error",
       '"Coin" is not a rule provider: use Commands, DeploymentWindow, Metrics, '
       "VariableCheck, Webhook")]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [rule(configuration={
        "Variable": "#{Nowhere.X}", "Value": "1", "Operator": "EQ"})]}]}},
     [("stages[2].beforeEntry.conditions[0].rules[0].configuration.Variable", "error",
       '"#{Nowhere.X}" refers to namespace "Nowhere", which no earlier action defines')]),
    ({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [rule(colour="red")],
                                      "mood": "calm"}]}},
     [("stages[2].beforeEntry.conditions[0].mood", "warning",
       '"mood" is not a field of a CodePipeline pipeline at this place: Conveyor does not '
       "use it (a typo?)"),
      ("stages[2].beforeEntry.conditions[0].rules[0].colour", "warning",
       '"colour" is not a field of a CodePipeline pipeline at this place: Conveyor does not '
       "use it (a typo?)")]),
    ({"beforeentry": {"conditions": []}},
     [("stages[2].beforeentry", "warning",
       '"beforeentry" is not a field of a CodePipeline pipeline at this place: Conveyor does '
       "not use it (a typo?)")]),
])
def test_a_wrong_condition_is_reported_at_its_path(deploy, expected):
    assert problems(pipeline(**deploy)) == expected


def test_rollback_is_refused_in_parallel_mode_and_in_the_source_stage():
    doc = pipeline("PARALLEL", onFailure={"result": "ROLLBACK"})
    assert problems(doc) == [("stages[2].onFailure", "error",
                              "PARALLEL pipelines have no stage rollback: a ROLLBACK result is "
                              "not allowed (use QUEUED or SUPERSEDED)")]
    doc = pipeline()
    doc["stages"][0]["onFailure"] = {"result": "ROLLBACK"}
    doc["stages"][0]["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [
        rule("Commands", commands=["true"])]}]}
    assert [(p, m.split(":")[0]) for p, _, m in problems(doc)] == [
        ("stages[0].beforeEntry", "the first (Source) stage cannot have beforeEntry conditions"),
        ("stages[0].onFailure", "the first (Source) stage cannot be rolled back"),
    ]


def test_a_source_stage_may_retry_automatically():
    doc = pipeline()
    doc["stages"][0]["onFailure"] = {"result": "RETRY"}
    assert problems(doc) == []


def test_an_on_success_rule_sees_the_artifacts_and_variables_of_its_own_stage():
    doc = pipeline()
    doc["stages"][1]["actions"][0]["namespace"] = "BuildVariables"
    doc["stages"][1]["onSuccess"] = {"conditions": [{"result": "FAIL", "rules": [
        rule("Commands", commands=["test -f app"], inputArtifacts=[{"name": "App"}]),
        rule(name="r2", configuration={"Variable": "#{BuildVariables.Version}", "Value": "1",
                                       "Operator": "NE"})]}]}
    assert problems(doc) == []
    doc["stages"][1]["beforeEntry"] = {"conditions": [{"result": "FAIL", "rules": [
        rule("Commands", commands=["true"], inputArtifacts=[{"name": "App"}])]}]}
    assert [p for p, _, _ in problems(doc)] == [
        "stages[1].beforeEntry.conditions[0].rules[0].inputArtifacts[0]"]
