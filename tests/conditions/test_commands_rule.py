"""A Commands rule runs in the sandbox of the Commands action (docs/conditions.md §2):
its commands see their input artifact, not Conveyor's code, its database or secrets."""

from __future__ import annotations

from conditions.models import RuleExecution
from tests.conditions.conftest import condition, gated_pipeline, rule


def commands_rule(*commands: str) -> dict:
    return rule("Commands", name="Checks", commands=list(commands),
                inputArtifacts=[{"name": "Src"}])


def test_a_commands_rule_runs_sandboxed_with_its_input_artifact(cdriver, settings):
    settings.CONVEYOR_SANDBOX = "required"  # fail rather than run unsandboxed
    project = settings.BASE_DIR
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", commands_rule(
        "test -f Src.txt",                      # its first input artifact, as CodeBuild's
        f"test ! -e {project}/manage.py",        # Conveyor's code is not there
        f"test ! -e {settings.LOG_ROOT}",        # nor the logs, artifacts, secrets
        f"test ! -e {settings.ARTIFACT_ROOT}",
        'test "$HOME" = /home/build',            # the sandbox's home
        'test -n "$CODEBUILD_BUILD_ID"',         # the Commands action's environment
    )))
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    rule_row = RuleExecution.objects.get()
    assert (rule_row.status, rule_row.summary) == ("Succeeded", "6 commands succeeded")
    assert execution.status == "Succeeded"


def test_a_failing_command_fails_the_rule_and_its_condition(cdriver, settings):
    settings.CONVEYOR_SANDBOX = "required"
    pipeline = gated_pipeline(beforeEntry=condition("FAIL", commands_rule(
        "true", f"cat {settings.BASE_DIR}/pyproject.toml")))
    execution = cdriver.start(pipeline)
    cdriver.run()
    execution.refresh_from_db()
    rule_row = RuleExecution.objects.get()
    assert rule_row.status == "Failed"
    assert rule_row.summary.startswith("Command 2 of 2 failed with exit code 1: cat ")
    assert execution.status == "Failed"
    assert 'Rule "Checks" (Commands) failed: Command 2 of 2 failed' in execution.status_summary
