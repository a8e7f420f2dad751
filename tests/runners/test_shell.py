"""Shell runner extensions: working directory, file globs, JUnit reports, secrets,
and values that must stay inert — with real bash, real files and real git."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from executions.models import ActionExecution
from pipelines.services import pipeline_save
from pipelines.validation import validate_document
from runners import ActionFailed, logfile
from runners.shell import Masker, ShellRunner, parse_junit
from tests.factories import action, definition
from tests.runners.conftest import log_text, make_ctx

runner = ShellRunner()


def shell(commands, category="Build", **fields) -> dict:
    return action("Run", category, "Shell", commands=commands, **fields)


def run(tmp_path, commands, **fields):
    ctx = make_ctx(tmp_path, shell(commands, **fields))
    return ctx, runner.run(ctx)


def problems(act) -> list[str]:
    doc = definition(stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}])]),
        ("Build", [act]),
    ])
    return [str(p) for p in validate_document(doc)]


# --- working directory and globs -------------------------------------------------


def test_commands_run_in_the_working_directory(tmp_path):
    ctx = make_ctx(tmp_path, shell(['pwd > "$CONVEYOR_WORKSPACE/where.txt"'],
                                   configuration={"WorkingDirectory": "app/src"}))
    (ctx.workspace / "app" / "src").mkdir(parents=True)
    runner.run(ctx)
    assert (ctx.workspace / "where.txt").read_text().strip() == \
        str((ctx.workspace / "app" / "src").resolve())


def test_a_missing_working_directory_fails_before_any_command_runs(tmp_path):
    with pytest.raises(ActionFailed, match='WorkingDirectory "app" is not a folder of the '
                                           "workspace"):
        run(tmp_path, ["touch ran"], configuration={"WorkingDirectory": "app"})


def test_a_working_directory_or_glob_leading_outside_the_workspace_is_refused():
    found = problems(shell(["true"], configuration={"WorkingDirectory": "../..",
                                                    "Reports": "/etc/*.xml"},
                           outputArtifacts=[{"name": "Out", "files": ["../../etc/passwd"]}]))
    assert 'stages[1].actions[0].configuration.WorkingDirectory: "../.." leads outside the ' \
           "workspace" in found
    assert 'stages[1].actions[0].configuration.Reports: "/etc/*.xml" is absolute: globs are ' \
           "relative to the workspace" in found
    assert 'stages[1].actions[0].outputArtifacts[0].files[0]: "../../etc/passwd" leads ' \
           "outside the workspace" in found


def test_an_unknown_shell_setting_is_named():
    found = problems(shell(["true"], configuration={"Report": "x.xml"}))
    assert any('configuration.Report: "Report" is not a setting of the Shell provider'
               in p for p in found)


def test_output_globs_collect_nested_files_but_not_links_leading_out(tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("host")
    ctx = make_ctx(tmp_path, shell([
        "mkdir -p dist/lib && echo a > dist/app.js && echo b > dist/lib/util.js",
        "echo c > notes.md", f"ln -s {secret} dist/leak.js"],
        outputArtifacts=[{"name": "Web", "files": ["dist/**/*.js"]}]))
    runner.run(ctx)
    out = ctx.output_dirs["Web"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "dist/app.js", "dist/lib/util.js"]
    assert "Not collected (it leads outside the workspace): dist/leak.js" in log_text(ctx)


# --- JUnit reports ---------------------------------------------------------------

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="unit" tests="5" failures="1" errors="1" skipped="1">
    <testcase classname="tests.test_cart" name="test_total"/>
    <testcase classname="tests.test_cart" name="test_discount"><failure message="1"/></testcase>
    <testcase classname="tests.test_cart" name="test_tax"><error message="boom"/></testcase>
    <testcase classname="tests.test_cart" name="test_later"><skipped/></testcase>
    <testcase name="test_plain"/>
  </testsuite>
</testsuites>
"""


def test_junit_reports_are_counted_with_the_failing_tests_named(tmp_path):
    (tmp_path / "r.xml").write_text(JUNIT)
    report = parse_junit([tmp_path / "r.xml"], tmp_path)
    assert (report.passed, report.failed, report.skipped) == (2, 2, 1)
    assert report.summary() == ("Tests: 2 passed, 2 failed, 1 skipped; failing: "
                                "tests.test_cart.test_discount, tests.test_cart.test_tax")


def test_a_failing_test_run_is_summarized_by_its_report(tmp_path):
    ctx = make_ctx(tmp_path, shell(
        ["mkdir -p reports && cp written-by-the-tests.xml reports/ && exit 1"],
        "Test",
        configuration={"Reports": "reports/*.xml"}))
    (ctx.workspace / "written-by-the-tests.xml").write_text(JUNIT)
    with pytest.raises(ActionFailed) as failed:
        runner.run(ctx)
    assert failed.value.summary.startswith(
        "Tests: 2 passed, 2 failed, 1 skipped; failing: tests.test_cart.test_discount, "
        "tests.test_cart.test_tax. Command 1 of 1 failed with exit code 1")
    assert failed.value.output_variables["TestsFailed"] == "2"


def test_a_real_pytest_run_reports_through_junit(tmp_path, settings):
    # pytest lives in Conveyor's own virtualenv, which no sandbox shows: unsandboxed on purpose.
    settings.CONVEYOR_SANDBOX = "none"
    ctx = make_ctx(tmp_path, shell([f"{sys.executable} -m pytest -q -p no:cacheprovider "
                                    "-p no:django -o addopts= --junitxml=out/junit.xml "
                                    "test_app.py"], "Test",
                                   configuration={"Reports": "out/junit.xml"}))
    (ctx.workspace / "test_app.py").write_text(
        "import pytest\n\ndef test_ok():\n    assert 1\n\ndef test_bad():\n    assert 1 == 2\n\n"
        "@pytest.mark.skip\ndef test_skip():\n    pass\n")
    with pytest.raises(ActionFailed) as failed:
        runner.run(ctx)
    assert failed.value.summary.startswith(
        "Tests: 1 passed, 1 failed, 1 skipped; failing: test_app.test_bad. Command 1 of 1 "
        "failed with exit code 1")


def test_passing_tests_give_the_counts_as_the_summary(tmp_path):
    xml = '<testsuite><testcase name="a"/><testcase name="b"/></testsuite>'
    _, result = run(tmp_path, [f"echo '{xml}' > junit.xml"], category="Test",
                    configuration={"Reports": "junit.xml, missing/*.xml"})
    assert result.summary == "Tests: 2 passed, 0 failed, 0 skipped (1 command succeeded)"
    assert result.output_variables == {"TestsPassed": "2", "TestsFailed": "0",
                                       "TestsSkipped": "0"}


def test_a_report_with_failures_fails_the_action_even_when_the_command_exits_0(tmp_path):
    xml = '<testsuite><testcase name="a"><failure/></testcase></testsuite>'
    with pytest.raises(ActionFailed, match=r"^Tests: 0 passed, 1 failed, 0 skipped; "
                                           r"failing: a$"):
        run(tmp_path, [f"echo '{xml}' > junit.xml || true"], category="Test",
            configuration={"Reports": "junit.xml"})


def test_reports_configured_but_not_written_fail_the_action(tmp_path):
    with pytest.raises(ActionFailed, match="No JUnit report matched reports/\\*.xml: the "
                                           "tests did not run"):
        run(tmp_path, ["true"], category="Test", configuration={"Reports": "reports/*.xml"})


def test_an_unreadable_report_is_named_in_the_log(tmp_path):
    good = '<testsuite><testcase name="a"/></testsuite>'
    ctx = make_ctx(tmp_path, shell([f"echo '{good}' > a.xml", "echo 'not xml <' > b.xml"],
                                   "Test", configuration={"Reports": "*.xml"}))
    assert runner.run(ctx).summary.startswith("Tests: 1 passed")
    assert "Not a JUnit XML report: b.xml" in log_text(ctx)


# --- secrets ---------------------------------------------------------------------


def secret_env(name, value):
    return {"name": name, "value": value, "type": "SECRETS_MANAGER"}


def test_a_secret_from_the_workers_environment_reaches_the_command_and_is_masked(
        tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_SECRET_PROD_DB", "hunter2-s3cr3t")
    ctx = make_ctx(tmp_path, shell([
        'echo "password is $DB_PASSWORD"',
        'test "$DB_PASSWORD" = hunter2-s3cr3t',
        'echo "leak=$DB_PASSWORD" >> "$CONVEYOR_OUTPUT"',
        'env | grep -c CONVEYOR_SECRET_ || true'],
        environmentVariables=[secret_env("DB_PASSWORD", "prod/db")]))
    result = runner.run(ctx)
    log = log_text(ctx)
    assert "hunter2-s3cr3t" not in log
    assert "password is ***" in log
    assert result.output_variables == {"leak": "***"}
    # The worker's other secrets are not in the command's environment.
    assert any(line.endswith(" 0") for line in log.splitlines())


def test_a_secret_from_the_secrets_folder_with_a_json_key(tmp_path, settings):
    settings.CONVEYOR_SECRETS_DIR = tmp_path / "secrets"
    (tmp_path / "secrets" / "prod").mkdir(parents=True)
    (tmp_path / "secrets" / "prod" / "api").write_text(
        json.dumps({"token": "tok-abcdef-123", "user": "deploy"}) + "\n")
    ctx = make_ctx(tmp_path, shell(['echo "token: $TOKEN"; exit 4'],
                                   environmentVariables=[secret_env("TOKEN", "prod/api:token")]))
    with pytest.raises(ActionFailed, match="exit code 4"):
        runner.run(ctx)
    assert "token: ***" in log_text(ctx)
    assert "tok-abcdef-123" not in log_text(ctx)


def test_a_missing_secret_fails_naming_where_it_was_looked_for(tmp_path, settings):
    settings.CONVEYOR_SECRETS_DIR = tmp_path / "secrets"
    with pytest.raises(ActionFailed, match=r'Secret "deploy-key" is not set: give the worker '
                                           r"the environment variable CONVEYOR_SECRET_DEPLOY_KEY"
                                           r" or the file .*/secrets/deploy-key"):
        run(tmp_path, ["true"], environmentVariables=[secret_env("KEY", "deploy-key")])


def test_a_secret_name_cannot_leave_the_secrets_folder(tmp_path):
    found = problems(shell(["true"], environmentVariables=[secret_env("K", "../../etc/passwd")]))
    assert 'stages[1].actions[0].environmentVariables[0].value: "../../etc/passwd" is not a ' \
           "secret name" in found
    with pytest.raises(ActionFailed, match="is not a secret name"):
        run(tmp_path, ["true"], environmentVariables=[secret_env("K", "../../etc/passwd")])


def test_a_multi_line_secret_is_masked_line_by_line_even_across_large_reads(
        tmp_path, monkeypatch):
    key = "-----BEGIN KEY-----\nMIIEabcdefghijk\n-----END KEY-----"
    monkeypatch.setenv("CONVEYOR_SECRET_SSH", key)
    # 3 MB without a new line, then the secret on the same line: the pump must cut
    # this line (it holds at most 1 MiB) and the secret straddles reads.
    ctx = make_ctx(tmp_path, shell([
        "head -c 3000000 /dev/zero | tr '\\0' x; echo \"$KEY\"",
        # ... and here it starts 6 bytes before the first 1 MiB cut.
        "head -c 1048570 /dev/zero | tr '\\0' x; echo \"$KEY\"",
        'printf %s "$KEY"'],
        environmentVariables=[secret_env("KEY", "SSH")]))
    runner.run(ctx)
    log = log_text(ctx)
    assert "MIIEabcdefghijk" not in log and "BEGIN KEY" not in log
    assert log.count("***") == 9


def test_masking_replaces_the_longest_secret_first():
    masker = Masker(["abcd", "abcdefgh", "xy"])
    assert masker.text("abcdefgh abcd xy") == "*** *** xy"


# --- inert values ----------------------------------------------------------------


@pytest.fixture
def fake_home(tmp_path, monkeypatch):
    """HOME of the commands: if `rm -rf ~` ever ran, it would empty this, nothing else."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "keep.txt").write_text("still here")
    monkeypatch.setenv("HOME", str(home))
    return home


def test_a_commit_message_with_shell_syntax_is_inert_in_commands(driver, tmp_path, fake_home):
    from tests.runners.conftest import GitRepo

    marker = tmp_path / "x"
    message = f'$(rm -rf ~) "; touch {marker};" `touch {marker}` \'; touch {marker}; \''
    repo = GitRepo(tmp_path / "repo")
    repo.commit({"app.txt": "app"}, message)
    doc = definition("inert", stages=[
        ("Source", [action("Checkout", "Source", "Git", namespace="SourceVariables",
                           configuration={"RepositoryUrl": str(repo.path),
                                          "BranchName": "main"},
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [shell([
            "echo #{SourceVariables.CommitMessage} > unquoted.txt",
            'echo "#{SourceVariables.CommitMessage}" > quoted.txt',
            'echo "$MSG" > env.txt',
            'echo "message=#{SourceVariables.CommitMessage}" >> "$CONVEYOR_OUTPUT"'],
            inputArtifacts=[{"name": "Src"}],
            environmentVariables=[{"name": "MSG", "value": "#{SourceVariables.CommitMessage}"}],
            outputArtifacts=[{"name": "Out", "files": ["*.txt"]}])]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    build = ActionExecution.objects.get(execution=execution, action_name="Run")
    assert build.status == "Succeeded", build.summary
    assert build.output_variables["message"] == message
    assert not marker.exists()
    assert (fake_home / "keep.txt").read_text() == "still here"


def test_long_output_reaches_the_log_whole_with_every_line_timestamped(tmp_path):
    ctx, _ = run(tmp_path, ["seq 1 200000", "printf 'no newline at the end'"])
    lines = log_text(ctx).splitlines()
    body = [line.split(" ", 1)[1] for line in lines if line.split(" ", 1)[1][:1] != "$"]
    assert body[:200000] == [str(i) for i in range(1, 200001)]
    assert body[200000] == "no newline at the end"
    assert all(line[:2] == "20" and line[10] == "T" for line in lines)


def test_the_log_is_readable_while_the_command_runs(tmp_path):
    import threading
    import time

    ctx = make_ctx(tmp_path, shell(["echo one; sleep 1.5; echo two"]))
    thread = threading.Thread(target=runner.run, args=(ctx,))
    thread.start()
    time.sleep(0.8)
    partial = logfile.read(Path(ctx.log.path), 0, 1 << 20, final=False).text
    thread.join()
    assert re.search(r"Z one$", partial, re.M) and not re.search(r"Z two$", partial, re.M)


def test_a_block_of_lines_is_stamped_once_per_line_after_any_unfinished_line(tmp_path):
    from runners.base import LogWriter

    log = LogWriter(tmp_path / "a.log")
    log.write("unfinished")
    log.write_block(b"one\ntwo\n")
    log.write_block("caf\xe9 \u2713\n".encode() + b"bad \xff byte")
    log.close()
    lines = logfile.text(tmp_path / "a.log").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "unfinished", "one", "two", "caf\xe9 \u2713", "bad \ufffd byte"]
    assert all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", line) for line in lines)


def test_a_shell_deploy_runs_the_artifacts_script_and_names_the_failing_step(driver, tmp_path):
    from executions.models import ActionExecution as AE

    target = tmp_path / "served"
    doc = definition("shell-deploy", stages=[
        ("Source", [action("S", "Source", "Simulate", outputArtifacts=[{"name": "Src"}],
                           configuration={"OutputContent": "v1"})]),
        ("Deploy", [shell([f'mkdir -p "{target}" && cp Src.txt "{target}/"',
                           f'test "$(cat "{target}/Src.txt")" = v2'], "Deploy",
                          inputArtifacts=[{"name": "Src"}],
                          configuration={"WritablePaths": str(target)})]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    deploy = AE.objects.get(execution=execution, action_name="Run")
    assert (target / "Src.txt").read_text() == "v1"
    assert deploy.status == "Failed"
    assert deploy.summary.startswith("Command 2 of 2 failed with exit code 1: test ")
