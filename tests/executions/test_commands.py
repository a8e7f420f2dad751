"""``manage.py start_execution``: starts through the service and prints the id and number."""

import io

import pytest
from django.core.management import CommandError, call_command

from executions.models import PipelineExecution
from tests.executions.conftest import sim, simple_pipeline


def start_execution(driver, *args):
    out, err = io.StringIO(), io.StringIO()
    driver.call(call_command, "start_execution", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def variable_pipeline():
    return simple_pipeline(
        stages=[("Build", [sim("Compile", Summary="built #{variables.tag} for #{variables.env}")])],
        variables=[{"name": "tag", "defaultValue": "latest"},
                   {"name": "env", "defaultValue": "staging"}])


def test_it_prints_the_new_execution_s_id_and_number_and_the_actions_go_to_workers(driver):
    simple_pipeline()
    out, _ = start_execution(driver, "demo")
    ex = PipelineExecution.objects.get()
    assert out == f"{ex.execution_id} #1"
    assert (ex.trigger_type, ex.trigger_detail, ex.triggered_by) == (
        "StartPipelineExecution", "manage.py start_execution", None)
    assert len(driver.pending) == 1
    driver.run()
    ex.refresh_from_db()
    assert ex.status == "Succeeded"
    assert start_execution(driver, "demo")[0].endswith(" #2")


def test_variables_and_source_revisions_are_passed_to_the_execution(driver):
    variable_pipeline()
    start_execution(driver, "demo", "--var", "tag=v1=final", "--revision", "Checkout=abc123")
    driver.run()
    ex = PipelineExecution.objects.get()
    assert ex.variables == {"tag": "v1=final", "env": "staging"}
    assert ex.source_revisions.get().revision_id == "abc123"
    assert ex.action_executions.get(action_name="Compile").summary == "built v1=final for staging"


def test_an_unknown_variable_is_refused_with_its_path_and_nothing_starts(driver):
    variable_pipeline()
    with pytest.raises(CommandError, match='"nope" is not a variable'):
        start_execution(driver, "demo", "--var", "nope=1")
    assert not PipelineExecution.objects.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["ghost"], 'No pipeline is named "ghost".'),
    (["demo", "--var", "novalue"], "--var 'novalue': expected NAME=VALUE"),
    (["demo", "--revision", "=abc"], "--revision '=abc': expected NAME=VALUE"),
    (["demo", "--user", "nobody"], 'No user is named "nobody".'),
    (["demo", "--revision", "Compile=abc"], "is not a source action of this pipeline"),
])
def test_a_wrong_argument_is_refused_with_a_sentence(driver, args, message):
    variable_pipeline()
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        start_execution(driver, *args)
    assert not PipelineExecution.objects.exists()


def test_the_user_and_the_token_are_recorded_and_a_repeated_token_prints_the_same(driver,
                                                                                 operator):
    simple_pipeline()
    first, _ = start_execution(driver, "demo", "--user", "oscar",
                               "--client-request-token", "release-7")
    again, _ = start_execution(driver, "demo", "--client-request-token", "release-7")
    assert first == again
    ex = PipelineExecution.objects.get()
    assert ex.triggered_by == operator and ex.trigger_detail == ""
