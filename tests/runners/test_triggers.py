"""Change detection: signed push webhooks, trigger filters, polling, the git hook script."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection

from executions.models import PipelineExecution, SourceRevision
from pipelines.models import Pipeline
from pipelines.services import pipeline_save
from tests.factories import action, definition
from tests.runners.conftest import GitRepo
from tests.runners.receiver import start_receiver
from triggers import changes

SECRET = "webhook-s3cret"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codepipeline"
HOOK_SCRIPT = Path(__file__).resolve().parents[2] / "executions" / "demo" / "hooks" / \
    "conveyor_hook.py"


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_push(repo_url: str, after: str, ref: str = "refs/heads/main",
                files=("app/main.py",), before: str = "0" * 39 + "1") -> dict:
    """The fields of GitHub's push payload Conveyor reads (the real one has many more)."""
    return {
        "ref": ref, "before": before, "after": after, "created": False, "deleted": False,
        "forced": False, "compare": "https://github.com/acme/app/compare/x...y",
        "commits": [{"id": after, "message": "Change", "added": [], "removed": [],
                     "modified": list(files)}],
        "head_commit": {"id": after, "message": "Change", "modified": list(files)},
        "repository": {"full_name": "acme/app", "clone_url": repo_url,
                       "html_url": "https://github.com/acme/app"},
        "pusher": {"name": "ada"},
    }


def make_pipeline(name: str, repo_url: str, *, triggers_=None, detect="true") -> Pipeline:
    doc = definition(name, stages=[
        ("Source", [action("Checkout", "Source", "Git", namespace="SourceVariables",
                           configuration={"RepositoryUrl": repo_url, "BranchName": "main",
                                          "DetectChanges": detect},
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", "Build", "Simulate", inputArtifacts=[{"name": "Src"}])]),
    ])
    if triggers_ is not None:
        doc["triggers"] = triggers_
    pipeline = pipeline_save(document=doc).pipeline
    Pipeline.objects.filter(pk=pipeline.pk).update(webhook_secret=SECRET)
    pipeline.refresh_from_db()
    return pipeline


def post_hook(api, driver, pipeline: str, payload, *, event=("X-GitHub-Event", "push"),
              signature: str | None = "good", path_suffix="/"):
    body = json.dumps(payload).encode() if not isinstance(payload, bytes) else payload
    headers = {f"HTTP_{event[0].upper().replace('-', '_')}": event[1]}
    if signature == "good":
        headers["HTTP_X_HUB_SIGNATURE_256"] = signed(body)
    elif signature is not None:
        headers["HTTP_X_HUB_SIGNATURE_256"] = signature
    return driver.call(api(None).post, f"/api/hooks/{pipeline}{path_suffix}", body,
                       content_type="application/json", **headers)


# --- signatures ------------------------------------------------------------------


def test_signatures_are_checked_for_github_gitea_and_gitlab():
    body = b'{"ref": "refs/heads/main"}'
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert changes.signature_valid(SECRET, body, {"X-Hub-Signature-256": f"sha256={digest}"})
    assert changes.signature_valid(SECRET, body, {"X-Gitea-Signature": digest})
    assert changes.signature_valid(SECRET, body, {"X-Gitlab-Token": SECRET})
    assert not changes.signature_valid(SECRET, body + b" ",
                                        {"X-Hub-Signature-256": f"sha256={digest}"})
    assert not changes.signature_valid(SECRET, body, {"X-Hub-Signature-256": digest})
    assert not changes.signature_valid(SECRET, body, {"X-Gitlab-Token": "guess"})
    assert not changes.signature_valid(SECRET, body, {})
    assert not changes.signature_valid("", body, {"X-Hub-Signature-256": "sha256="})


# --- filters ---------------------------------------------------------------------


@pytest.mark.parametrize("pattern, text, matches", [
    ("feature/**", "feature/a/b", True),
    ("feature/**", "feature", False),
    ("**/README.md", "README.md", True),
    ("**/README.md", "docs/deep/README.md", True),
    ("common/**/*.js", "common/x.js", True),
    ("common/**/*.js", "common/a/b/x.js", True),
    ("common/**/*.js", "common/x.ts", False),
    ("*.md", "docs/a.md", False),
    ("release-v{0,1}", "release-v1", True),
    ("release-v?", "release-v10", False),
    ("v[0-9]*", "v2.1", True),
])
def test_globs_follow_codepipelines_rules(pattern, text, matches):
    assert changes.glob_match(pattern, text) is matches


def aws_filters():
    document = json.loads((FIXTURES / "awsdocs-trigger-filters-MyServicePipeline-partial.json")
                          .read_text())["pipeline"]
    return changes.trigger_filters(document, "ApplicationSource")


@pytest.mark.parametrize("branch, tag, files, passes", [
    ("feature/login", None, ["projectA/src/app.py"], True),
    ("feature/login", None, ["common/ui/button.js"], True),
    ("feature/login", None, ["projectA/README.md"], False),       # excluded file only
    ("feature/login", None, ["projectB/app.py"], False),          # not an included path
    ("mainline", None, ["projectA/src/app.py"], False),           # excluded branch
    ("hotfix/1", None, ["projectA/src/app.py"], False),           # not an included branch
    ("feature/login", None, None, True),                          # files unknown: start
    (None, "release-v1", None, True),
    (None, "release-v2", None, False),
])
def test_the_aws_documentation_filters_decide(branch, tag, files, passes):
    ok, reason = changes.filters_pass(aws_filters(), branch=branch, tag=tag, files=files,
                                       default_branch="mainline")
    assert ok is passes, reason


def test_without_a_trigger_only_the_actions_branch_starts_and_tags_do_not():
    assert changes.filters_pass(None, branch="main", tag=None, files=None,
                                 default_branch="main")[0]
    assert changes.filters_pass(None, branch="dev", tag=None, files=None,
                                 default_branch="main") == (
        False, "the action builds main, not branch dev")
    assert not changes.filters_pass(None, branch=None, tag="v1", files=None,
                                     default_branch="main")[0]
    assert changes.filters_pass([], branch="main", tag=None, files=None,
                                 default_branch="main") == (
        False, "the trigger of this action has no push filter")


# --- payloads --------------------------------------------------------------------


def test_github_gitlab_and_gitea_pushes_are_read_alike():
    gh = changes.push_parse("GitHub", github_push("https://github.com/acme/app.git", "a" * 40,
                                                   files=["x.py", "y.py"]))
    assert (gh.branch, gh.after, gh.files) == ("main", "a" * 40, ["x.py", "y.py"])
    assert "https://github.com/acme/app.git" in gh.repository_urls
    gitlab = changes.push_parse("GitLab", {
        "object_kind": "tag_push", "ref": "refs/tags/v1.2", "before": "0" * 40,
        "after": "b" * 40, "checkout_sha": "b" * 40, "total_commits_count": 0, "commits": [],
        "project": {"git_http_url": "https://gitlab.com/acme/app.git",
                    "git_ssh_url": "git@gitlab.com:acme/app.git"}})
    assert (gitlab.tag, gitlab.branch, gitlab.after) == ("v1.2", None, "b" * 40)
    assert "git@gitlab.com:acme/app.git" in gitlab.repository_urls
    gitea = changes.push_parse("Gitea", {
        "ref": "refs/heads/dev", "before": "1" * 40, "after": "c" * 40,
        "commits": [{"id": "c" * 40, "added": ["new.txt"], "removed": ["old.txt"],
                     "modified": []}],
        "repository": {"clone_url": "https://gitea.example/acme/app.git",
                       "ssh_url": "git@gitea.example:acme/app.git"}})
    assert (gitea.branch, gitea.files) == ("dev", ["new.txt", "old.txt"])


def test_a_push_with_more_commits_than_the_payload_lists_has_unknown_files():
    payload = github_push("https://github.com/acme/app.git", "a" * 40)
    payload["commits"] = payload["commits"] * 20
    assert changes.push_parse("GitHub", payload).files is None


def test_a_payload_without_ref_is_not_a_push():
    assert changes.push_parse("GitHub", {"zen": "Design for failure."}) == \
        "the payload has no ref and after: not a push"


# --- the push webhook endpoint -------------------------------------------------------


@pytest.fixture
def hooked(driver, repo):
    return make_pipeline("hooked", str(repo.path)), repo


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "garbage",
                                       signed(b"another body")])
def test_a_missing_or_wrong_signature_is_401_and_starts_nothing(hooked, api, driver,
                                                                signature):
    pipeline, repo = hooked
    response = post_hook(api, driver, "hooked", github_push(str(repo.path), repo.head()),
                         signature=signature)
    assert response.status_code == 401
    assert response.json() == {"detail": "The webhook signature is missing or wrong."}
    assert PipelineExecution.objects.count() == 0


def test_a_pipeline_without_a_webhook_secret_accepts_no_webhook(hooked, api, driver):
    pipeline, repo = hooked
    Pipeline.objects.filter(pk=pipeline.pk).update(webhook_secret="")
    response = post_hook(api, driver, "hooked", github_push(str(repo.path), repo.head()),
                         signature=signed(b"x", secret=""))
    assert response.status_code == 401
    assert "has no webhook secret" in response.json()["detail"]
    assert PipelineExecution.objects.count() == 0


def test_an_unknown_pipeline_is_404(api, driver):
    response = post_hook(api, driver, "nobody", {"ref": "x", "after": "y"})
    assert response.status_code == 404


def test_a_ping_is_answered_and_starts_nothing(hooked, api, driver):
    response = post_hook(api, driver, "hooked", {"zen": "Keep it logically awesome."},
                         event=("X-GitHub-Event", "ping"))
    assert (response.status_code, response.json()["detail"]) == (200, "pong")
    assert PipelineExecution.objects.count() == 0


def test_a_signed_push_starts_one_execution_of_the_pushed_commit(hooked, api, driver):
    pipeline, repo = hooked
    first = repo.head()
    pushed = repo.commit({"app/main.py": "print(2)\n"}, "Second")
    repo.commit({"app/main.py": "print(3)\n"}, "Third, not pushed yet")
    response = post_hook(api, driver, "hooked", github_push(str(repo.path), pushed,
                                                             before=first),
                         path_suffix="")  # GitHub's URL field is often typed without a slash
    assert response.status_code == 202, response.json()
    execution = PipelineExecution.objects.get()
    assert response.json()["decisions"] == [{
        "actionName": "Checkout", "pipelineExecutionId": str(execution.execution_id),
        "started": True, "reason": "a push to main"}]
    assert execution.trigger_type == "Webhook"
    assert execution.trigger_detail == f"GitHub push to refs/heads/main ({pushed[:12]})"
    driver.run()
    assert SourceRevision.objects.get(execution=execution).revision_id == pushed
    again = post_hook(api, driver, "hooked", github_push(str(repo.path), pushed))
    assert again.status_code == 200
    assert again.json()["decisions"][0]["reason"] == \
        f"commit {pushed[:12]} was already started as execution #1"
    assert PipelineExecution.objects.count() == 1


def test_pushes_the_action_does_not_follow_start_nothing(hooked, api, driver, tmp_path):
    pipeline, repo = hooked
    other_branch = post_hook(api, driver, "hooked", github_push(
        str(repo.path), repo.head(), ref="refs/heads/dev"))
    assert other_branch.json()["decisions"][0]["reason"] == \
        "the action builds main, not branch dev"
    elsewhere = post_hook(api, driver, "hooked", github_push(
        "https://github.com/acme/other.git", repo.head()))
    assert elsewhere.json()["decisions"][0]["reason"].startswith(
        "the push is for another repository")
    deleted = post_hook(api, driver, "hooked", github_push(str(repo.path), "0" * 40))
    assert deleted.json()["decisions"][0]["reason"] == "refs/heads/main was deleted"
    assert PipelineExecution.objects.count() == 0


def test_detect_changes_false_ignores_pushes(driver, repo, api):
    make_pipeline("manual-only", str(repo.path), detect="false")
    response = post_hook(api, driver, "manual-only", github_push(str(repo.path), repo.head()))
    assert response.json()["decisions"][0]["reason"] == 'DetectChanges is "false"'
    assert PipelineExecution.objects.count() == 0


def test_trigger_filters_decide_and_the_trigger_type_says_so(driver, repo, api):
    make_pipeline("filtered", str(repo.path), triggers_=[{
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": "Checkout", "push": [{
            "branches": {"includes": ["main", "release/**"]},
            "filePaths": {"includes": ["app/**"], "excludes": ["**/*.md"]}}]}}])
    docs_only = post_hook(api, driver, "filtered", github_push(
        str(repo.path), repo.head(), files=["app/README.md"]))
    assert docs_only.status_code == 200
    assert docs_only.json()["decisions"][0]["reason"] == \
        "no trigger filter matches branch main with 1 changed file(s)"
    sha = repo.commit({"app/x.py": "x"}, "Code")
    code = post_hook(api, driver, "filtered", github_push(
        str(repo.path), sha, ref="refs/heads/release/2.0", files=["app/x.py"]))
    assert code.status_code == 202
    execution = PipelineExecution.objects.get()
    assert execution.trigger_type == "WebhookV2"
    assert execution.source_revision_overrides[0]["branchName"] == "release/2.0"


def test_a_gitlab_push_with_its_token_header(hooked, api, driver):
    pipeline, repo = hooked
    body = json.dumps({"object_kind": "push", "ref": "refs/heads/main", "before": "0" * 40,
                       "after": repo.head(), "commits": [],
                       "project": {"git_http_url": str(repo.path)}}).encode()
    response = driver.call(api(None).post, "/api/hooks/hooked/", body,
                           content_type="application/json", HTTP_X_GITLAB_EVENT="Push Hook",
                           HTTP_X_GITLAB_TOKEN=SECRET)
    assert response.status_code == 202
    assert PipelineExecution.objects.count() == 1


def test_a_body_that_is_not_a_push_is_400(hooked, api, driver):
    assert post_hook(api, driver, "hooked", b"not json").status_code == 400
    response = post_hook(api, driver, "hooked", {"hello": "world"})
    assert response.status_code == 400
    assert response.json()["detail"] == \
        "Not a push: the payload has no ref and after: not a push."


# --- the git hook script -------------------------------------------------------------


def install_hook(repo_dir: Path, name: str, url: str, pipeline: str = "hooked"):
    hooks = Path(subprocess.run(["git", "rev-parse", "--git-path", "hooks"], cwd=repo_dir,
                                capture_output=True, text=True, check=True).stdout.strip())
    hooks = hooks if hooks.is_absolute() else repo_dir / hooks
    hooks.mkdir(parents=True, exist_ok=True)
    hook = hooks / name
    hook.write_text(f"#!/bin/sh\nexec {sys.executable} {HOOK_SCRIPT} \"$@\"\n"
                    if name == "post-commit" else
                    f"#!/bin/sh\nexec {sys.executable} {HOOK_SCRIPT} --stdin \"$@\"\n")
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    for key, value in (("url", url), ("pipeline", pipeline), ("secret", SECRET)):
        subprocess.run(["git", "config", f"conveyor.{key}", value], cwd=repo_dir, check=True)


@pytest.fixture
def capture():
    """Stands in for Conveyor's web server (the edge: the hook only speaks HTTP); the
    captured request is then replayed into the real endpoint."""
    receiver, server = start_receiver()
    receiver.url = receiver.url.rsplit("/", 1)[0]
    receiver.answer = (202, {"detail": "Started execution #1"}, {})
    yield receiver
    server.shutdown()
    server.server_close()


def replay(api, driver, received):
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in received.headers.items()
               if k.lower().startswith("x-")}
    return driver.call(api(None).post, received.path, received.body,
                       content_type="application/json", **headers)


def test_a_commit_in_a_repository_with_the_post_commit_hook_starts_an_execution(
        hooked, capture, api, driver):
    pipeline, repo = hooked
    install_hook(repo.path, "post-commit", capture.url)
    sha = repo.commit({"app/feature.py": "x = 1\n"}, "Add a feature")
    assert len(capture.requests) == 1
    received = capture.requests[0]
    assert received.path == "/api/hooks/hooked/"
    assert received.json["after"] == sha and received.json["files"] == ["app/feature.py"]
    response = replay(api, driver, received)
    assert response.status_code == 202, response.json()
    assert PipelineExecution.objects.get().source_revision_overrides[0]["revisionValue"] == sha


def test_a_push_into_a_bare_repository_with_the_post_receive_hook(driver, tmp_path, capture,
                                                                   api):
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    make_pipeline("hooked", str(origin))
    install_hook(origin, "post-receive", capture.url)
    work = GitRepo(tmp_path / "work")
    sha = work.commit({"a.txt": "a"}, "First")
    work.git("push", "-q", str(origin), "main")
    assert len(capture.requests) == 1
    assert capture.requests[0].json["repository"]["path"] == str(origin)
    response = replay(api, driver, capture.requests[0])
    assert response.status_code == 202, response.json()
    driver.run()
    assert SourceRevision.objects.get().revision_id == sha


def test_the_hook_never_fails_the_commit_when_conveyor_is_down(tmp_path):
    repo = GitRepo(tmp_path / "r")
    install_hook(repo.path, "post-commit", "http://127.0.0.1:9")
    result = subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo.path,
                            capture_output=True, text=True, env={**os.environ})
    assert result.returncode == 0
    assert "conveyor: refs/heads/main" in result.stderr and "not reached" in result.stderr


# --- polling ---------------------------------------------------------------------


def test_polling_starts_one_execution_per_new_head_commit(driver, repo):
    pipeline = make_pipeline("polled", str(repo.path))
    first = driver.call(changes.poll_pipeline, pipeline)
    assert [(d.started, d.reason) for d in first] == [(True, f"new commit {repo.head()[:12]}")]
    execution = PipelineExecution.objects.get()
    assert execution.trigger_type == "PollForSourceChanges"
    driver.run()
    assert [(d.started, d.reason) for d in driver.call(changes.poll_pipeline, pipeline)] == [
        (False, "no new commit")]
    sha = repo.commit({"b.txt": "b"}, "Another")
    assert driver.call(changes.poll_pipeline, pipeline)[0].started
    driver.run()
    assert list(SourceRevision.objects.order_by("id").values_list("revision_id", flat=True)) \
        == [repo.head("HEAD~1"), sha]


def test_a_commit_built_by_a_manual_execution_is_not_started_again(driver, repo):
    pipeline = make_pipeline("manual-first", str(repo.path))
    driver.start(pipeline)
    driver.run()
    decisions = driver.call(changes.poll_pipeline, pipeline)
    assert [(d.started, d.reason) for d in decisions] == [(False, "no new commit")]
    assert PipelineExecution.objects.count() == 1


def test_polling_skips_detect_changes_false_and_reports_a_missing_branch(driver, repo,
                                                                          tmp_path):
    make_pipeline("off", str(repo.path), detect="false")
    missing = make_pipeline("gone", str(tmp_path / "nowhere"))
    results = driver.call(changes.poll_sources)
    assert results["off"] == []
    assert results["gone"][0].reason.startswith("cannot read ")
    assert missing and PipelineExecution.objects.count() == 0


def test_polling_applies_the_file_filters_to_the_changes_since_the_last_build(driver, repo):
    pipeline = make_pipeline("poll-filtered", str(repo.path), triggers_=[{
        "gitConfiguration": {"sourceActionName": "Checkout", "push": [{
            "branches": {"includes": ["main"]},
            "filePaths": {"excludes": ["docs/**"]}}]}}])
    assert driver.call(changes.poll_pipeline, pipeline)[0].started
    driver.run()
    repo.commit({"docs/guide.md": "words"}, "Docs only")
    decision = driver.call(changes.poll_pipeline, pipeline)[0]
    assert (decision.started, decision.reason) == (
        False, "no trigger filter matches branch main with 1 changed file(s)")
    repo.commit({"app/main.py": "print(9)\n"}, "Code")
    assert driver.call(changes.poll_pipeline, pipeline)[0].started


def test_the_poll_schedule_follows_the_setting(db, settings):
    from django_q.models import Schedule

    # post_migrate created it when the test database was built.
    schedule = Schedule.objects.get(name=changes.POLL_SCHEDULE_NAME)
    assert (schedule.func, schedule.minutes) == ("triggers.changes.poll_task", 1)
    settings.CONVEYOR_POLL_SECONDS = 150
    changes.poll_schedule_ensure()
    assert Schedule.objects.get(name=changes.POLL_SCHEDULE_NAME).minutes == 3
    settings.CONVEYOR_POLL_SECONDS = 0
    changes.poll_schedule_ensure()
    assert not Schedule.objects.filter(name=changes.POLL_SCHEDULE_NAME).exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_pollers_racing_for_one_commit_start_one_execution(repo, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("real concurrent writers need PostgreSQL (DATABASE_URL)")
    from executions import tasks

    monkeypatch.setattr(tasks, "enqueue", lambda pk: None)
    pipeline = make_pipeline("raced", str(repo.path))
    barrier = threading.Barrier(4)
    outcomes, errors = [], []

    def poll():
        try:
            barrier.wait()
            outcomes.append(changes.change_start(
                pipeline=Pipeline.objects.get(pk=pipeline.pk), action_name="Checkout",
                commit=repo.head(), trigger_type="PollForSourceChanges", trigger_detail="race"))
        except Exception as exc:  # noqa: BLE001 (reported by the assertion)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert PipelineExecution.objects.filter(pipeline=pipeline).count() == 1
    assert len({execution.pk for execution, _ in outcomes}) == 1


def test_forges_need_no_csrf_token(hooked, driver):
    from django.test import Client

    pipeline, repo = hooked
    body = json.dumps(github_push(str(repo.path), repo.head())).encode()
    response = driver.call(Client(enforce_csrf_checks=True).post, "/api/hooks/hooked/", body,
                           content_type="application/json", HTTP_X_GITHUB_EVENT="push",
                           HTTP_X_HUB_SIGNATURE_256=signed(body))
    assert response.status_code == 202


def test_the_poll_sources_command_reports_what_it_started(driver, repo):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    make_pipeline("polled-by-command", str(repo.path))
    out = io.StringIO()
    driver.call(call_command, "poll_sources", "polled-by-command", stdout=out)
    assert out.getvalue() == "polled-by-command / Checkout: started #1\n"
    out = io.StringIO()
    driver.call(call_command, "poll_sources", stdout=out)
    assert out.getvalue() == "polled-by-command / Checkout: no new commit\n"
    with pytest.raises(CommandError, match="No pipeline is named nope"):
        call_command("poll_sources", "nope")
