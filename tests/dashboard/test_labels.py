"""The history and the execution page label automatic retries and rollbacks with why.

End to end through the engine (the execution tests' ``driver``), real Shell
subprocesses and, for the rollback, a real Directory deploy (the pipelines of
tests/executions/test_on_failure.py, reused).
"""

import pytest

from executions.models import PipelineExecution
from tests.conditions.conftest import check, condition, gated_pipeline
from tests.executions.conftest import sim
from tests.executions.test_on_failure import flaky, retry_pipeline, rollback_pipeline
from tests.factories import action

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _unsandboxed(settings):
    """The flaky test's marker file lives outside the workspace (see test_on_failure)."""
    settings.CONVEYOR_SANDBOX = "none"


def test_the_history_labels_an_automatic_retry_with_the_failed_actions(driver, tmp_path,
                                                                       client, viewer):
    pipeline = retry_pipeline(tmp_path, flaky(tmp_path / "ran-once"), {
        "result": "RETRY", "retryConfiguration": {"retryMode": "ALL_ACTIONS"}})
    retried = driver.start(pipeline)
    driver.run()
    (tmp_path / "ran-once").unlink()
    plain = retry_pipeline(tmp_path, action("Smoke", "Test", "Shell", runOrder=2,
                                            commands=["true"]), {"result": "RETRY"})
    calm = driver.start(plain)
    driver.run()
    client.force_login(viewer)
    history = client.get(f"/pipelines/{pipeline.name}/executions/").content.decode()
    row = history.split(f'id="execution-{retried.number}"')[1].split("</tr>")[0]
    assert ('<span class="tag">automatic retry</span> Deploy failed (Smoke); retried by its '
            "onFailure RETRY (ALL_ACTIONS)") in row
    other = history.split(f'id="execution-{calm.number}"')[1].split("</tr>")[0]
    assert "automatic retry" not in other


def test_the_execution_page_says_why_a_stage_was_retried_automatically(driver, tmp_path,
                                                                       client, viewer):
    pipeline = retry_pipeline(tmp_path, flaky(tmp_path / "ran-once"), {"result": "RETRY"})
    ex = driver.start(pipeline)
    driver.run()
    client.force_login(viewer)
    page = client.get(f"/pipelines/{pipeline.name}/executions/{ex.number}/").content.decode()
    assert "attempt 2 · automatic retry" in page
    assert ("Automatic retry: Deploy failed (Smoke); retried by its onFailure RETRY "
            "(FAILED_ACTIONS)") in page
    # The first attempt was no retry: one reason only.
    assert page.count("Automatic retry:") == 1


def test_the_history_and_the_execution_page_label_an_automatic_rollback(driver, tmp_path,
                                                                       client, viewer):
    pipeline, _ = rollback_pipeline(tmp_path, tmp_path / "site")
    good = driver.start(pipeline)
    driver.run()
    bad = driver.start(pipeline, variables={"healthy": "no"})
    driver.run()
    rollback = PipelineExecution.objects.get(execution_type="ROLLBACK")
    client.force_login(viewer)
    history = client.get(f"/pipelines/{pipeline.name}/executions/").content.decode()
    row = history.split(f'id="execution-{rollback.number}"')[1].split("</tr>")[0]
    why = (f"Automatic rollback of Deploy to #{good.number}: execution #{bad.number} failed "
           "there (onFailure ROLLBACK)")
    assert f'<span class="tag" title="{why}">automatic rollback</span>' in row
    assert why in row.split("</span>", 1)[1]   # written out, not only in a tooltip
    page = client.get(f"/pipelines/{pipeline.name}/executions/{rollback.number}/")
    text = page.content.decode()
    assert f"rollback of Deploy to #{good.number}" in text and why in text
    # The failed execution says it is being rolled back, and to which execution.
    failed = client.get(f"/pipelines/{pipeline.name}/executions/{bad.number}/")
    assert (f'Rolling back stage &quot;Deploy&quot; to execution #{good.number} '
            "(onFailure ROLLBACK).") in failed.content.decode()


def test_a_retry_decided_by_an_on_failure_condition_says_so(cdriver, client, viewer):
    pipeline = gated_pipeline(deploy=[sim("Release", "Deploy", Outcome="Failed")],
                              onFailure={**condition("RETRY", check("#{variables.gate}")),
                                         "retryConfiguration": {"retryMode": "ALL_ACTIONS"}})
    ex = cdriver.start(pipeline)
    cdriver.run()
    client.force_login(viewer)
    why = ("Deploy failed (Release); retried by its onFailure condition&#x27;s RETRY "
           "(ALL_ACTIONS)")
    assert why in client.get(f"/pipelines/{pipeline.name}/executions/").content.decode()
    page = client.get(f"/pipelines/{pipeline.name}/executions/{ex.number}/").content.decode()
    assert f"Automatic retry: {why}" in page
