"""The Python invoke runner: a dotted-path function called in the worker."""

from __future__ import annotations

import threading
import time

import pytest

from executions.models import ActionExecution
from pipelines.services import pipeline_save
from pipelines.validation import validate_document
from runners import ActionFailed
from runners.python import PythonInvokeRunner
from tests.factories import action, definition
from tests.runners.conftest import log_text, make_ctx

runner = PythonInvokeRunner()
TARGETS = "tests.runners.invoke_targets"


def invoke(function, **config) -> dict:
    return action("Notes", "Invoke", "Python",
                  configuration={"Function": function, **config})


def run(tmp_path, function, **config):
    ctx = make_ctx(tmp_path, invoke(function, **config))
    return ctx, runner.run(ctx)


def test_the_returned_dict_becomes_the_output_variables(tmp_path):
    ctx, result = run(tmp_path, f"{TARGETS}.release_notes", UserParameters="#releases")
    assert result.output_variables == {"Files": "0", "Channel": "#releases",
                                       "Execution": ctx.pipeline_execution_id}
    assert result.summary == f"{TARGETS}.release_notes returned 3 output variables"
    assert "notes written" in log_text(ctx)


def test_a_colon_separates_the_function_as_well(tmp_path):
    _, result = run(tmp_path, f"{TARGETS}:nothing")
    assert result.output_variables == {}


def test_an_exception_fails_the_action_with_its_message_and_logs_the_traceback(tmp_path):
    ctx = make_ctx(tmp_path, invoke(f"{TARGETS}.explode"))
    with pytest.raises(ActionFailed, match=r"^ValueError: the release calendar is closed$"):
        runner.run(ctx)
    assert "Traceback (most recent call last)" in log_text(ctx)


def test_action_failed_keeps_the_functions_own_summary(tmp_path):
    with pytest.raises(ActionFailed, match=r"^Change freeze until Monday$"):
        run(tmp_path, f"{TARGETS}.refuse")


def test_a_function_returning_something_else_than_a_dict_fails(tmp_path):
    with pytest.raises(ActionFailed, match="returned a list, not a dict of output variables"):
        run(tmp_path, f"{TARGETS}.wrong_type")


@pytest.mark.parametrize("function, message", [
    ("tests.runners.no_such_module.f", "cannot import tests.runners.no_such_module"),
    (f"{TARGETS}.missing", f'{TARGETS} has no function "missing"'),
    (f"{TARGETS}.not_callable", f'{TARGETS} has no function "not_callable"'),
    ("os.system; rm", "is not a dotted path"),
])
def test_a_function_that_cannot_be_found_fails_saying_why(tmp_path, function, message):
    with pytest.raises(ActionFailed, match=message):
        run(tmp_path, function)


def test_a_stopped_action_returns_at_once_and_the_function_sees_it(tmp_path):
    ctx = make_ctx(tmp_path, invoke(f"{TARGETS}.patient"))
    threading.Timer(0.3, ctx.request_stop, args=("abandoned",)).start()
    started = time.monotonic()
    with pytest.raises(ActionFailed, match="^Stopped: abandoned"):
        runner.run(ctx)
    assert time.monotonic() - started < 5  # the function itself would never return


def test_the_function_path_is_checked_when_the_pipeline_is_saved():
    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Invoke", [action("A", "Invoke", "Python", configuration={}),
                    action("B", "Invoke", "Python", configuration={"Function": "a b"})]),
    ])
    found = [str(p) for p in validate_document(doc)]
    assert "stages[1].actions[0].configuration.Function: is required" in found
    assert 'stages[1].actions[1].configuration.Function: "a b" is not a dotted path such as ' \
           "package.module.name" in found


def test_an_invoke_reads_its_input_and_feeds_variables_downstream(driver):
    doc = definition("py-e2e", stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Notes", [action("Write", "Invoke", "Python", namespace="Notes",
                          configuration={"Function": f"{TARGETS}.release_notes",
                                         "UserParameters": "#{codepipeline.PipelineName}"},
                          inputArtifacts=[{"name": "Src"}],
                          outputArtifacts=[{"name": "NotesOut"}]),
                   action("Use", "Invoke", "Simulate", runOrder=2,
                          configuration={
                              "Summary": "#{Notes.Files} file(s) in #{Notes.Channel}"})]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    assert ActionExecution.objects.get(execution=execution, action_name="Use").summary == \
        "1 file(s) in py-e2e"
