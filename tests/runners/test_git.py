"""The Git source runner, against real repositories with real commits."""

from __future__ import annotations

import os
import socket
import threading
import time

import pytest

from executions.models import ActionExecution, Artifact, SourceRevision
from pipelines.services import pipeline_save
from pipelines.validation import validate_document
from runners import ActionFailed
from runners.git import GitSourceRunner, commit_url, repository_key
from tests.factories import action, definition
from tests.runners.conftest import GitRepo, live_members, log_text, make_ctx

runner = GitSourceRunner()


def git_action(url, branch="main", **config) -> dict:
    return action("Checkout", "Source", "Git",
                  configuration={"RepositoryUrl": str(url), "BranchName": branch, **config},
                  outputArtifacts=[{"name": "Src"}], namespace="SourceVariables")


def problems(doc_action) -> list[str]:
    doc = definition(stages=[("Source", [doc_action]),
                             ("Build", [action("B", "Build", "Simulate",
                                               inputArtifacts=[{"name": "Src"}])])])
    return [str(p) for p in validate_document(doc)]


# --- configuration ---------------------------------------------------------------


def test_a_git_action_without_repository_or_branch_is_refused_at_both_paths():
    found = problems(action("Checkout", "Source", "Git", configuration={},
                            outputArtifacts=[{"name": "Src"}]))
    assert "stages[0].actions[0].configuration.RepositoryUrl: is required" in found
    assert "stages[0].actions[0].configuration.BranchName: is required" in found


@pytest.mark.parametrize("url, message", [
    ("ext::sh -c touch% /tmp/pwned", "transport helpers"),
    ("relative/path", "not a repository URL or an absolute path"),
    ("--upload-pack=touch /tmp/x", "is not a repository URL or path"),
])
def test_dangerous_or_relative_repository_urls_are_refused(url, message):
    found = problems(git_action(url))
    assert any("configuration.RepositoryUrl" in p and message in p for p in found), found


@pytest.mark.parametrize("branch", ["-x", "a..b", "has space", "x~1", "ends/", "refs.lock"])
def test_branch_names_git_would_refuse_are_refused(branch):
    assert any("configuration.BranchName" in p and "is not a branch name" in p
               for p in problems(git_action("/srv/repo", branch)))


def test_detect_changes_must_be_true_or_false_and_unknown_keys_are_named():
    found = problems(git_action("/srv/repo", DetectChanges="yes", PollForSourceChanges="true"))
    assert ('stages[0].actions[0].configuration.DetectChanges: must be "true" or "false", '
            'not "yes"') in found
    assert any("configuration.PollForSourceChanges" in p for p in found)


def test_a_valid_git_action_has_no_problem():
    assert problems(git_action("https://github.com/acme/app.git")) == []
    assert problems(git_action("git@github.com:acme/app.git", "release/1.x")) == []


def test_repository_locations_compare_by_host_and_path(tmp_path):
    assert repository_key("https://github.com/acme/app.git") == "github.com/acme/app"
    assert repository_key("git@github.com:acme/app") == "github.com/acme/app"
    assert repository_key("ssh://git@github.com:22/acme/app.git") == "github.com/acme/app"
    assert repository_key(f"file://{tmp_path}/") == repository_key(str(tmp_path))
    assert commit_url("https://github.com/acme/app.git", "abc") == \
        "https://github.com/acme/app/commit/abc"
    assert commit_url("https://gitlab.com/acme/app", "abc") == \
        "https://gitlab.com/acme/app/-/commit/abc"
    assert commit_url("/srv/repo", "abc") == ""


# --- running ---------------------------------------------------------------------


def test_the_head_of_the_branch_becomes_the_artifact_without_dot_git(repo, tmp_path):
    sha = repo.commit({"app/main.py": "print('v2')\n"}, "Second commit\n\nWith a body.",
                      author="Grace Hopper <grace@example.com>")
    ctx = make_ctx(tmp_path, git_action(repo.path))
    result = runner.run(ctx)
    out = ctx.output_dirs["Src"]
    assert (out / "app" / "main.py").read_text() == "print('v2')\n"
    assert (out / "README.md").exists()
    assert not (out / ".git").exists()
    assert result.output_variables["CommitId"] == sha
    assert result.output_variables["BranchName"] == "main"
    assert result.output_variables["CommitMessage"] == "Second commit\n\nWith a body."
    assert result.output_variables["AuthorDisplayName"] == "Grace Hopper"
    assert result.output_variables["AuthorEmail"] == "grace@example.com"
    assert result.output_variables["CommitTime"][:4].isdigit()
    assert result.output_variables["RepositoryName"] == "repo"
    assert result.revision.revision_id == sha
    assert result.revision.summary == "Second commit"
    assert result.revision.artifact_name == "Src"
    assert result.summary.startswith(f"{sha[:12]} on main: Second commit")
    assert f"Resolved main to {sha}" in log_text(ctx)


def test_the_revision_given_at_start_is_built_instead_of_the_head(repo, tmp_path):
    first = repo.head()
    repo.commit({"app/main.py": "print('v2')\n"}, "Second commit")
    ctx = make_ctx(tmp_path, git_action(repo.path), source_override={
        "actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": first})
    result = runner.run(ctx)
    assert result.output_variables["CommitId"] == first
    assert (ctx.output_dirs["Src"] / "app" / "main.py").read_text() == "print('hello')\n"


def test_a_short_commit_id_or_a_tag_is_resolved(repo, tmp_path):
    first = repo.head()
    repo.git("tag", "v1.0")
    repo.commit({"x.txt": "x"}, "Later")
    for value in (first[:8], "v1.0"):
        ctx = make_ctx(tmp_path, git_action(repo.path), source_override={
            "actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": value})
        assert runner.run(ctx).output_variables["CommitId"] == first


def test_another_branch_of_the_same_repository_is_built_separately(repo, tmp_path):
    repo.git("checkout", "-q", "-b", "feature/x")
    sha = repo.commit({"feature.txt": "f"}, "On the feature branch")
    repo.git("checkout", "-q", "main")
    result = runner.run(make_ctx(tmp_path, git_action(repo.path, "feature/x")))
    assert result.output_variables["CommitId"] == sha
    main = runner.run(make_ctx(tmp_path, git_action(repo.path, "main")))
    assert main.output_variables["CommitId"] == repo.head("main")


def test_an_unknown_revision_fails_with_its_name(repo, tmp_path):
    ctx = make_ctx(tmp_path, git_action(repo.path), source_override={
        "actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": "f" * 40})
    with pytest.raises(ActionFailed, match=f'Revision "{"f" * 40}" does not exist'):
        runner.run(ctx)


def test_a_revision_that_looks_like_an_option_is_not_passed_to_git(repo, tmp_path):
    ctx = make_ctx(tmp_path, git_action(repo.path), source_override={
        "actionName": "Checkout", "revisionType": "COMMIT_ID",
        "revisionValue": "--output=/tmp/conveyor-pwned"})
    with pytest.raises(ActionFailed, match="does not exist"):
        runner.run(ctx)
    assert not os.path.exists("/tmp/conveyor-pwned")


def test_a_missing_branch_fails_with_its_name(repo, tmp_path):
    with pytest.raises(ActionFailed, match='Branch "nope" does not exist in'):
        runner.run(make_ctx(tmp_path, git_action(repo.path, "nope")))


def test_a_missing_repository_fails_with_gits_reason(tmp_path):
    with pytest.raises(ActionFailed, match=r"Cannot fetch .*/nowhere: fatal: .*nowhere"):
        runner.run(make_ctx(tmp_path, git_action(tmp_path / "nowhere")))


def test_links_in_the_repository_are_not_followed_or_kept(repo, tmp_path):
    (repo.path / "passwd").symlink_to("/etc/passwd")
    (repo.path / "up").symlink_to("../..")
    repo.git("add", "passwd", "up")
    repo.commit(message="Links")
    ctx = make_ctx(tmp_path, git_action(repo.path))
    runner.run(ctx)
    out = ctx.output_dirs["Src"]
    assert not (out / "passwd").exists() and not (out / "passwd").is_symlink()
    assert not (out / "up").is_symlink()
    assert "Not kept in the artifact (links are not stored): passwd -> /etc/passwd" in \
        log_text(ctx)


def test_two_fetches_of_one_repository_share_the_mirror(repo, tmp_path, settings):
    runner.run(make_ctx(tmp_path, git_action(repo.path)))
    sha = repo.commit({"new.txt": "n"}, "Newer")
    result = runner.run(make_ctx(tmp_path, git_action(repo.path)))
    assert result.output_variables["CommitId"] == sha
    mirrors = list((tmp_path / "git-cache").glob("*.git"))
    assert len(mirrors) == 1


@pytest.fixture
def silent_server():
    """A TCP server that accepts connections and never answers (the edge of the world:
    a git host that hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/repo.git"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_stopping_a_hanging_fetch_kills_git_at_once(silent_server, tmp_path):
    ctx = make_ctx(tmp_path, git_action(silent_server))
    groups = []

    def stop_soon():
        time.sleep(0.7)
        groups.extend(ctx._process_groups)
        ctx.request_stop("abandoned")
        runner.cancel(ctx)

    threading.Thread(target=stop_soon, daemon=True).start()
    started = time.monotonic()
    with pytest.raises(ActionFailed, match="Stopped: abandoned"):
        runner.run(ctx)
    assert time.monotonic() - started < 5
    assert groups, "git ran in a process group of its own"
    assert all(live_members(pgid) == [] for pgid in groups)


# --- end to end through the engine -----------------------------------------------


def test_an_execution_records_the_commit_as_its_source_revision(driver, repo):
    sha = repo.commit({"app/main.py": "print('v3')\n"}, "Ship it")
    doc = definition("git-e2e", stages=[
        ("Source", [git_action(repo.path)]),
        ("Build", [action("Compile", "Build", "Simulate",
                          inputArtifacts=[{"name": "Src"}],
                          configuration={"Summary": "#{SourceVariables.CommitId}"})]),
    ])
    pipeline = pipeline_save(document=doc).pipeline
    execution = driver.start(pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded"
    revision = SourceRevision.objects.get(execution=execution)
    assert (revision.action_name, revision.revision_id, revision.revision_summary,
            revision.artifact_name) == ("Checkout", sha, "Ship it", "Src")
    source = ActionExecution.objects.get(execution=execution, action_name="Checkout")
    assert source.output_variables["CommitId"] == sha
    assert Artifact.objects.get(execution=execution, name="Src").file_count == 2
    build = ActionExecution.objects.get(execution=execution, action_name="Compile")
    assert build.summary == sha


def test_an_execution_started_with_a_commit_id_builds_that_commit(driver, repo):
    first = repo.head()
    repo.commit({"later.txt": "l"}, "Later")
    doc = definition("git-override", stages=[
        ("Source", [git_action(repo.path)]),
        ("Build", [action("Compile", "Build", "Simulate", inputArtifacts=[{"name": "Src"}])]),
    ])
    pipeline = pipeline_save(document=doc).pipeline
    execution = driver.start(pipeline, source_revisions=[
        {"actionName": "Checkout", "revisionType": "COMMIT_ID", "revisionValue": first}])
    driver.run()
    assert SourceRevision.objects.get(execution=execution).revision_id == first


def test_a_source_action_on_a_missing_repository_fails_the_execution(driver, tmp_path):
    doc = definition("git-missing", stages=[
        ("Source", [git_action(tmp_path / "missing")]),
        ("Build", [action("Compile", "Build", "Simulate", inputArtifacts=[{"name": "Src"}])]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Failed"
    source = ActionExecution.objects.get(execution=execution)
    assert source.status == "Failed" and source.summary.startswith("Cannot fetch")


def test_a_second_repository_is_a_different_mirror(tmp_path):
    a = GitRepo(tmp_path / "a")
    a.commit({"a": "a"})
    b = GitRepo(tmp_path / "b")
    b.commit({"b": "b"})
    ra = runner.run(make_ctx(tmp_path, git_action(a.path)))
    rb = runner.run(make_ctx(tmp_path, git_action(b.path)))
    assert ra.output_variables["CommitId"] == a.head()
    assert rb.output_variables["CommitId"] == b.head()


def test_a_fetch_running_past_the_actions_timeout_fails_it_as_timed_out(
        driver, silent_server, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from executions import engine

    doc = definition("git-timeout", stages=[
        ("Source", [{**git_action(silent_server), "timeoutInMinutes": 1}]),
        ("Build", [action("Compile", "Build", "Simulate", inputArtifacts=[{"name": "Src"}])]),
    ])
    execution = driver.start(pipeline_save(document=doc).pipeline)
    original = engine.action_claim

    def claim_near_deadline(pk, *, worker):  # a minute is long for a test: 0.5 s it is
        claim = original(pk, worker=worker)
        claim.action_execution.deadline_at = timezone.now() + timedelta(seconds=0.5)
        return claim

    monkeypatch.setattr(engine, "action_claim", claim_near_deadline)
    started = time.monotonic()
    assert driver.run_action("Source", "Checkout") == "Failed"
    assert time.monotonic() - started < 5
    source = ActionExecution.objects.get(execution=execution)
    assert source.summary == "Action timed out after 1 min"
    execution.refresh_from_db()
    assert execution.status == "Failed"
