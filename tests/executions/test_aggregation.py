"""The pure aggregation rules, without a database."""

from executions.engine import ActionView, StageDecision, execution_outcome, stage_step


def views(*items):
    return [ActionView(name, order, status) for name, order, status in items]


def test_a_new_stage_starts_its_lowest_run_order_group_only():
    decision = stage_step(views(("A", 1, None), ("B", 1, None), ("C", 2, None)),
                          stopping=False)
    assert decision == StageDecision(start=("A", "B"))


def test_the_next_group_starts_when_the_whole_group_has_succeeded():
    assert stage_step(views(("A", 1, "Succeeded"), ("B", 1, "InProgress"), ("C", 2, None)),
                      stopping=False) == StageDecision()
    assert stage_step(views(("A", 1, "Succeeded"), ("B", 1, "Succeeded"), ("C", 2, None)),
                      stopping=False) == StageDecision(start=("C",))


def test_a_failed_action_starts_nothing_new_and_waits_for_running_ones():
    running = views(("A", 1, "Failed"), ("B", 1, "InProgress"), ("C", 2, None))
    assert stage_step(running, stopping=False) == StageDecision()
    done = views(("A", 1, "Failed"), ("B", 1, "Succeeded"), ("C", 2, None))
    assert stage_step(done, stopping=False) == StageDecision(status="Failed")


def test_a_stage_succeeds_when_every_action_succeeded():
    assert stage_step(views(("A", 1, "Succeeded"), ("C", 2, "Succeeded")),
                      stopping=False).status == "Succeeded"


def test_stopping_wins_over_failure_and_success_once_nothing_runs():
    assert stage_step(views(("A", 1, "InProgress")), stopping=True) == StageDecision()
    assert stage_step(views(("A", 1, "Failed")), stopping=True).status == "Stopped"
    assert stage_step(views(("A", 1, "Succeeded"), ("B", 2, None)),
                      stopping=True).status == "Stopped"


def test_an_abandoned_action_stops_the_stage():
    assert stage_step(views(("A", 1, "Abandoned"), ("B", 1, "Failed")),
                      stopping=False).status == "Stopped"


def test_execution_goes_on_while_stages_remain():
    assert execution_outcome(["Succeeded", None, None], stopping=False) is None
    assert execution_outcome(["Succeeded", "InProgress", None], stopping=False) is None


def test_execution_outcome_precedence_stopped_then_failed_then_succeeded():
    assert execution_outcome(["Succeeded", "Failed", None], stopping=False) == "Failed"
    assert execution_outcome(["Succeeded", "Stopped", None], stopping=False) == "Stopped"
    assert execution_outcome(["Succeeded", "Failed"], stopping=True) == "Stopped"
    assert execution_outcome(["Succeeded", "Succeeded"], stopping=False) == "Succeeded"
    assert execution_outcome(["Succeeded", "Stopping"], stopping=True) is None


def test_an_execution_with_nothing_run_has_no_outcome():
    assert execution_outcome([], stopping=False) is None
