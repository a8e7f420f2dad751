"""The Shell runner: commands in a workspace, artifacts, variables, failures, kills."""

import threading
import time
from datetime import timedelta
from pathlib import Path

from django.utils import timezone

from executions import engine
from executions.models import ActionExecution, Artifact
from runners import get, logfile
from runners.base import ActionFailed, LogWriter, RunContext
from tests.executions.conftest import simple_pipeline
from tests.factories import action


def shell(name, commands, category="Build", **fields):
    return action(name, category, "Shell", commands=commands, **fields)


def test_commands_see_inputs_produce_outputs_and_variables_downstream(driver, settings):
    pipeline = simple_pipeline(stages=[
        ("Build", [shell("Compile", ["cat Src.txt > app.txt", "echo built >> app.txt",
                                     "mkdir -p sub && echo x > sub/extra.txt && echo y > junk"],
                         inputArtifacts=[{"name": "Src"}],
                         outputArtifacts=[{"name": "App", "files": ["app.txt", "sub/*"]}])]),
        ("Deploy", [shell("Release", ["grep -q built app.txt", "test -f sub/extra.txt",
                                      "test ! -e junk",
                                      'echo "version=1.$((2+3))" >> "$CONVEYOR_OUTPUT"'],
                          "Deploy", inputArtifacts=[{"name": "App"}], namespace="Release")]),
    ])
    ex = driver.start(pipeline)
    driver.run()
    ex.refresh_from_db()
    release = ex.action_executions.get(action_name="Release")
    assert ex.status == "Succeeded", ex.action_executions.values_list("summary", flat=True)
    assert release.output_variables == {"version": "1.5"}
    assert release.summary == "4 commands succeeded"
    app = Artifact.objects.get(execution=ex, name="App")
    assert app.file_count == 2
    log = logfile.text(Path(settings.LOG_ROOT) / release.log_path)
    assert "$ grep -q built app.txt" in log
    assert log.splitlines()[0][:2] == "20"                   # timestamped lines


def test_the_first_failing_command_stops_the_action_and_is_named_with_its_exit_code(driver):
    pipeline = simple_pipeline(stages=[
        ("Build", [shell("Compile", ["true", "echo oops; exit 3", "touch never"])]),
        ("Deploy", [shell("Release", ["true"], "Deploy")]),
    ])
    ex = driver.start(pipeline)
    driver.run()
    compile_ = ex.action_executions.get(action_name="Compile")
    assert compile_.status == "Failed"
    assert compile_.summary == "Command 2 of 3 failed with exit code 3: echo oops; exit 3"


def test_variable_values_reach_commands_through_the_environment_never_as_code(
    driver, tmp_path,
):
    marker = tmp_path / "injected"
    pipeline = simple_pipeline(
        stages=[("Build", [shell("Compile", [
            'echo "msg=#{variables.message}" >> "$CONVEYOR_OUTPUT"',
            'echo "id=#{codepipeline.PipelineExecutionId}" >> "$CONVEYOR_OUTPUT"',
            'echo "greeting=$GREETING" >> "$CONVEYOR_OUTPUT"',
            'test -z "$DJANGO_SETTINGS_MODULE"'],
            environmentVariables=[{"name": "GREETING", "value": "hi #{variables.message}"}])]),
            ("Deploy", [shell("Release", ["true"], "Deploy")])],
        variables=[{"name": "message", "defaultValue": "x"}],
    )
    value = f"$(touch {marker}); `touch {marker}`"
    ex = driver.start(pipeline, variables={"message": value})
    driver.run()
    compile_ = ex.action_executions.get(action_name="Compile")
    assert compile_.status == "Succeeded", compile_.summary
    assert compile_.output_variables == {"msg": value, "id": str(ex.execution_id),
                                         "greeting": f"hi {value}"}
    assert not marker.exists()
    # The command text kept its reference; the value travelled in the environment.
    assert compile_.configuration["commands"][0] == 'echo "msg=#{variables.message}" >> ' \
                                                    '"$CONVEYOR_OUTPUT"'


def context(tmp_path, commands, **extra) -> RunContext:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    return RunContext(
        pipeline_name="p", pipeline_execution_id="e", execution_number=1, pipeline_version=1,
        stage_name="Build", action_name="Compile", action_execution_id="a", attempt=1,
        category="Build", provider="Shell", action={"commands": commands}, variables={},
        input_dirs={}, output_dirs={}, workspace=workspace,
        log=LogWriter(tmp_path / "log.txt"), **extra)


def test_stopping_kills_the_whole_process_group_at_once(tmp_path):
    ctx = context(tmp_path, ["sleep 60.0625 & echo $! > grandchild.pid; sleep 60"])
    pidfile = ctx.workspace / "grandchild.pid"
    runner = get("Build", "Shell")
    outcome = {}

    def run():
        try:
            runner.run(ctx)
        except ActionFailed as exc:
            outcome["summary"] = exc.summary

    thread = threading.Thread(target=run)
    thread.start()
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.02)
    # (the pid in the file is the sandbox's own: find the process as the machine sees it)
    grandchild = next(int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
                      if _cmdline(p) == b"sleep\x0060.0625\x00")
    started = time.monotonic()
    ctx.request_stop("abandoned")
    runner.cancel(ctx)
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert outcome["summary"] == "Stopped: abandoned"
    assert not alive(grandchild)


def _cmdline(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody has reaped yet (in a container
    an orphan's zombie may linger: it is dead all the same)."""
    for _ in range(50):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.02)
    return True


def test_a_shell_action_past_its_deadline_is_killed_and_fails_as_timed_out(driver, monkeypatch):
    pipeline = simple_pipeline(stages=[
        ("Build", [shell("Compile", ["sleep 60"], timeoutInMinutes=1)]),
        ("Deploy", [shell("Release", ["true"], "Deploy")]),
    ])
    ex = driver.start(pipeline)
    driver.run_action("Source", "Checkout")
    original = engine.action_claim

    def claim_near_deadline(pk, *, worker):
        claim = original(pk, worker=worker)
        claim.action_execution.deadline_at = timezone.now() + timedelta(seconds=0.5)
        return claim

    monkeypatch.setattr(engine, "action_claim", claim_near_deadline)
    started = time.monotonic()
    assert driver.run_action("Build", "Compile") == "Failed"
    assert time.monotonic() - started < 5
    compile_ = ActionExecution.objects.get(execution=ex, action_name="Compile")
    assert compile_.summary == "Action timed out after 1 min"
    ex.refresh_from_db()
    assert ex.status == "Failed"


def test_shell_validation_needs_commands():
    from pipelines.validation import validate_document
    from tests.factories import definition

    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", "Build", "Shell")]),
    ])
    problems = [str(p) for p in validate_document(doc)]
    assert problems == ["stages[1].actions[0].commands: a Shell action needs at least one "
                        "command"]
