"""The list and detail endpoints ask the database a fixed number of questions.

Each endpoint is read once with few rows and once with many; the query count
must not grow (select_related / prefetch_related), and stays under a bound.
"""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from executions.models import ActionExecution, PipelineExecution
from tests.executions.conftest import sim, simple_pipeline
from tests.executions.test_api import post


def run_executions(driver, client, count):
    for _ in range(count):
        post(driver, client, "/api/pipelines/demo/executions/",
             {"sourceRevisions": [{"actionName": "Checkout", "revisionValue": "abc"}]})
        driver.run()


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return len(captured)


def test_the_execution_list_costs_the_same_for_two_or_twelve_executions(
        driver, api, viewer, operator, django_assert_max_num_queries):
    simple_pipeline()
    client = api(viewer)
    run_executions(driver, api(operator), 2)
    few = queries(client, "/api/pipelines/demo/executions/")
    run_executions(driver, api(operator), 10)
    assert PipelineExecution.objects.count() == 12
    assert queries(client, "/api/pipelines/demo/executions/") == few
    with django_assert_max_num_queries(10):
        client.get("/api/pipelines/demo/executions/")


def test_the_action_execution_list_costs_the_same_for_few_or_many_attempts(
        driver, api, viewer, operator, django_assert_max_num_queries):
    simple_pipeline(stages=[("Build", [sim("A", outputArtifacts=[{"name": "OutA"}]),
                                       sim("B", Outcome="Failed")])])
    client = api(operator)
    post(driver, client, "/api/pipelines/demo/executions/")
    driver.run()
    ex = PipelineExecution.objects.get()
    url = f"/api/executions/{ex.execution_id}/actions/"
    few = queries(api(viewer), url)
    for _ in range(4):
        post(driver, client, f"/api/executions/{ex.execution_id}/stages/Build/retry/",
             {"retryMode": "ALL_ACTIONS"})
        driver.run()
    assert ActionExecution.objects.count() == 11
    assert queries(api(viewer), url) == few
    with django_assert_max_num_queries(10):
        api(viewer).get(url)


def test_an_execution_s_detail_and_events_cost_the_same_however_many_actions_ran(
        driver, api, viewer, operator, django_assert_max_num_queries):
    simple_pipeline(stages=[("Build", [sim("A", outputArtifacts=[{"name": "OutA"}]),
                                       sim("B", Outcome="Failed")])])
    client = api(operator)
    post(driver, client, "/api/pipelines/demo/executions/")
    driver.run()
    ex = PipelineExecution.objects.get()
    detail = f"/api/executions/{ex.execution_id}/"
    events = f"/api/executions/{ex.execution_id}/events/"
    few = (queries(api(viewer), detail), queries(api(viewer), events))
    for _ in range(4):
        post(driver, client, f"/api/executions/{ex.execution_id}/stages/Build/retry/",
             {"retryMode": "ALL_ACTIONS"})
        driver.run()
    assert (queries(api(viewer), detail), queries(api(viewer), events)) == few
    with django_assert_max_num_queries(10):
        api(viewer).get(detail)
    with django_assert_max_num_queries(10):
        api(viewer).get(events)


def test_the_pipeline_state_does_not_grow_with_the_number_of_executions(
        driver, api, viewer, operator, django_assert_max_num_queries):
    simple_pipeline()
    run_executions(driver, api(operator), 1)
    few = queries(api(viewer), "/api/pipelines/demo/state/")
    run_executions(driver, api(operator), 5)
    assert queries(api(viewer), "/api/pipelines/demo/state/") == few
    # Per stage and per action of the definition (3 and 3 here), not per execution.
    with django_assert_max_num_queries(20):
        api(viewer).get("/api/pipelines/demo/state/")
