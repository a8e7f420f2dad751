"""The executions admin: read-only pages, search, and the actions that call the services."""

import pytest
from django.contrib.auth.models import Group, User

from executions.models import ActionExecution
from tests.executions.conftest import sim, simple_pipeline

CHANGELIST = "/admin/executions/pipelineexecution/"


def change_url(ex):
    return f"{CHANGELIST}{ex.pk}/change/"


@pytest.fixture
def staff(client, owner):
    """The owner, signed in to the admin."""
    client.force_login(owner)
    return client


def act(driver, client, action, *executions):
    return driver.call(client.post, CHANGELIST, {
        "action": action, "_selected_action": [ex.pk for ex in executions]}, follow=True)


def texts(response):
    return [str(m) for m in response.context["messages"]]


def outcome_pipeline():
    return simple_pipeline(
        stages=[("Build", [sim("Compile", Outcome="#{variables.outcome}")]),
                ("Deploy", [sim("Release")])],
        variables=[{"name": "outcome", "defaultValue": "Succeeded"}])


def test_the_list_shows_pipeline_number_status_trigger_start_and_duration(driver, staff, owner):
    pipeline = outcome_pipeline()
    driver.start(pipeline, user=owner)
    driver.run()
    driver.start(pipeline, user=owner)
    response = staff.get(CHANGELIST)
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Pipeline", "Number", "Status", "Trigger", "Started at", "Duration"):
        assert f">{header}<" in html
    assert "Started by a person or a client (olivia)" in html
    assert "so far" in html            # the running one's duration counts up
    assert " s</td>" in html            # the ended one's is fixed


def test_executions_are_read_only_in_the_admin(driver, staff, owner):
    ex = driver.start(outcome_pipeline(), user=owner)
    driver.run()
    page = staff.get(change_url(ex))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert "Stage executions (every attempt)" in html and "Action executions" in html
    assert "Events" in html and "Compile" in html
    assert f"/api/executions/{ex.execution_id}/artifacts/Src/" in html
    compile_ = ActionExecution.objects.get(action_name="Compile")
    assert f"/api/action-executions/{compile_.action_execution_id}/log/" in html
    assert staff.post(change_url(ex), {"status": "Failed"}).status_code == 403
    assert staff.get(f"{CHANGELIST}add/").status_code == 403
    assert staff.get(f"{CHANGELIST}{ex.pk}/delete/").status_code == 403
    ex.refresh_from_db()
    assert ex.status == "Succeeded"


def test_the_list_searches_by_execution_id_number_and_pipeline_and_filters_by_status(
        driver, staff, owner):
    pipeline = outcome_pipeline()
    first = driver.start(pipeline, user=owner)
    driver.run()
    second = driver.start(pipeline, user=owner, variables={"outcome": "Failed"})
    driver.run()

    def found(**query):
        response = staff.get(CHANGELIST, query)
        assert response.status_code == 200
        return {ex.number for ex in response.context["cl"].result_list}

    assert found(q=str(second.execution_id)) == {2}
    assert found(q=str(first.execution_id).upper()) == {1}
    assert found(q="#1") == {1}
    assert found(q="demo") == {1, 2}
    assert found(q="no-such-thing") == set()
    assert found(status__exact="Failed") == {2}


def test_stop_and_wait_from_the_admin_lets_running_actions_finish(driver, staff, owner):
    pipeline = simple_pipeline(stages=[("Build", [sim("Compile", Outcome="Waiting")])])
    ex = driver.start(pipeline, user=owner)
    driver.run()
    response = act(driver, staff, "stop_and_wait", ex)
    assert "Stopping 1 execution." in texts(response)
    ex.refresh_from_db()
    assert ex.status == "Stopping"
    assert ex.status_summary == "Stopped by olivia in the admin"
    assert ActionExecution.objects.get(action_name="Compile").status == "InProgress"


def test_stop_and_abandon_from_the_admin_ends_at_once_and_reports_what_it_could_not_stop(
        driver, staff, owner):
    pipeline = simple_pipeline(stages=[("Build", [sim("Compile", Outcome="Waiting")])])
    running = driver.start(pipeline, user=owner)
    driver.run()                                    # Compile waits, InProgress
    finished_pipeline = simple_pipeline("other")
    finished = driver.start(finished_pipeline, user=owner)
    driver.run()
    response = act(driver, staff, "stop_and_abandon", running, finished)
    messages = texts(response)
    assert "Stopped 1 execution." in messages
    assert "other #1: Execution #1 has already ended (Succeeded): it cannot be stopped." in (
        messages)
    running.refresh_from_db()
    assert running.status == "Stopped"
    assert ActionExecution.objects.get(execution=running, action_name="Compile").status == (
        "Abandoned")


def test_retry_from_the_admin_reruns_the_failed_actions_of_the_failed_stage(driver, staff,
                                                                          owner):
    pipeline = outcome_pipeline()
    failed = driver.start(pipeline, user=owner, variables={"outcome": "Failed"})
    driver.run()
    response = act(driver, staff, "retry_failed_actions", failed)
    assert "Retrying 1 execution." in texts(response)
    failed.refresh_from_db()
    assert failed.status == "InProgress"
    retried = failed.stage_executions.get(stage_name="Build", attempt=2)
    assert retried.retry_mode == "FAILED_ACTIONS"
    assert len(driver.pending) == 1


def test_retry_from_the_admin_refuses_an_execution_with_nothing_failed(driver, staff, owner):
    ex = driver.start(outcome_pipeline(), user=owner)
    driver.run()
    response = act(driver, staff, "retry_failed_actions", ex)
    assert texts(response) == [
        "demo #1: Execution #1 has no failed or stopped stage to retry."]
    assert ex.stage_executions.count() == 3


def test_a_staff_viewer_sees_executions_but_no_commands(driver, client, owner):
    viewer = User.objects.create_user("vic", is_staff=True)
    viewer.groups.add(Group.objects.get(name="viewers"))
    pipeline = simple_pipeline(stages=[("Build", [sim("Compile", Outcome="Waiting")])])
    ex = driver.start(pipeline, user=owner)
    driver.run()
    client.force_login(viewer)
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert "stop_and_abandon" not in response.content.decode()
    act(driver, client, "stop_and_abandon", ex)
    ex.refresh_from_db()
    assert ex.status == "InProgress"


def test_no_model_of_conveyor_is_named_in_the_plural_by_a_bare_s_after_a_consonant_y():
    # Django's default plural is the name plus "s": "hook deliverys" in the admin.
    from pathlib import Path

    from django.apps import apps
    from django.conf import settings

    base = Path(settings.BASE_DIR).resolve()
    ours = [m for m in apps.get_models()
            if Path(m._meta.app_config.path).resolve().is_relative_to(base)
            and "site-packages" not in m._meta.app_config.path]
    assert any(m._meta.label == "executions.HookDelivery" for m in ours)
    wrong = [f"{m._meta.label}: {m._meta.verbose_name_plural}" for m in ours
             if str(m._meta.verbose_name_plural)[-3:-2] not in "aeiou"
             and str(m._meta.verbose_name_plural).endswith("ys")]
    assert wrong == []
