"""The REST pipeline state carries the condition states (docs/conditions.md §7), built
field for field as the serializer builds it (tests/executions/test_read_shapes.py)."""

from __future__ import annotations

from rest_framework.renderers import JSONRenderer

from executions import selectors
from executions.api.state import PipelineStateSerializer, pipeline_state_data
from tests.conditions.conftest import check, condition, gated_pipeline


def test_the_rest_state_shows_each_evaluated_condition_with_its_rules(cdriver, api,
                                                                    operator):
    pipeline = gated_pipeline(
        beforeEntry=condition("FAIL", check("#{variables.gate}", name="Branch")),
        onSuccess=condition("FAIL", check("#{variables.gate}", name="First"),
                            check("#{variables.gate}", "x", name="Second"),
                            check("#{variables.gate}", name="Third")))
    cdriver.start(pipeline)
    cdriver.run()
    state = selectors.pipeline_state(pipeline)
    render = JSONRenderer().render
    assert render(pipeline_state_data(state)) == render(PipelineStateSerializer(state).data)
    answer = api(operator).get(f"/api/pipelines/{pipeline.name}/state/")
    assert answer.status_code == 200
    deploy = answer.json()["stageStates"][1]
    assert deploy["beforeEntryConditionState"]["latestExecution"]["status"] == "Succeeded"
    on_success = deploy["onSuccessConditionState"]
    assert on_success["latestExecution"]["status"] == "Failed"
    rules = on_success["conditionStates"][0]["ruleStates"]
    assert [(r["ruleName"], r["latestExecution"] and r["latestExecution"]["status"])
            for r in rules] == [("First", "Succeeded"), ("Second", "Failed"), ("Third", None)]
    assert rules[0]["latestExecution"]["lastStatusChange"].endswith("Z")
    assert "onFailureConditionState" not in deploy
    # Stages without conditions keep their former shape.
    assert "beforeEntryConditionState" not in answer.json()["stageStates"][2]
