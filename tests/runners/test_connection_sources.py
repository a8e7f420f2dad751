"""CodeStarSourceConnection and CodeCommit sources, fetched through connections.

The forge is a local stand-in (tests/runners/forge.py: git's own smart-HTTP
server behind a tiny HTTP server on 127.0.0.1 that demands a token); the
repositories, commits, fetches and clones are real git.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
from pathlib import Path

import pytest
from django.conf import settings

from executions.models import ActionExecution, SourceRevision
from pipelines import services
from pipelines.selectors import connection_for
from pipelines.validation import validate_document
from runners import ActionFailed, logfile
from runners.connection_sources import CodeCommitRunner, CodeStarSourceConnectionRunner
from tests.factories import action, definition
from tests.runners.conftest import GitRepo, log_text, make_ctx
from tests.runners.forge import Forge
from triggers import changes as triggers

pytestmark = pytest.mark.django_db

TOKEN = "ghp_s3cr3tT0kenValue42"
ARN = "arn:aws:codeconnections:eu-west-1:111122223333:connection/0cc175a9-8bcf-4786"


@pytest.fixture
def forge(tmp_path):
    with Forge(tmp_path / "forge", "x-access-token", TOKEN) as running:
        yield running


@pytest.fixture
def app_repo(forge) -> GitRepo:
    repo = forge.repository("acme/app")
    repo.commit({"README.md": "# app\n"}, "First commit")
    repo.commit({"app.py": "print('v2')\n"}, "Second commit\n\nWith a body.",
                author="Grace Hopper <grace@example.com>")
    return repo


def github(forge, token=TOKEN, arns=(ARN,), name="github-acme"):
    return services.connection_save(name=name, provider="GitHub", base_url=forge.url,
                                    arns=list(arns), token=token)


def aws(name, category, provider, **fields) -> dict:
    body = action(name, category, provider, **fields)
    body["actionTypeId"]["owner"] = "AWS"
    return body


def codestar(branch="main", **config) -> dict:
    return aws("Source", "Source", "CodeStarSourceConnection",
                  configuration={"ConnectionArn": ARN, "FullRepositoryId": "acme/app",
                                 "BranchName": branch, **config},
                  outputArtifacts=[{"name": "SourceArtifact"}], namespace="SourceVariables")


def codecommit(**config) -> dict:
    return aws("Source", "Source", "CodeCommit",
                  configuration={"RepositoryName": "app", "BranchName": "main", **config},
                  outputArtifacts=[{"name": "SourceArtifact"}], namespace="SourceVariables")


def everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())


# --- configuration -----------------------------------------------------------------


def test_codestar_and_codecommit_configurations_are_checked_at_their_paths():
    doc = definition(stages=[
        ("Source", [action("A", "Source", "CodeStarSourceConnection",
                           configuration={"FullRepositoryId": "no-owner", "BranchName": "main",
                                          "OutputArtifactFormat": "ZIP", "Detect": "x"},
                           outputArtifacts=[{"name": "A"}]),
                    action("B", "Source", "CodeCommit",
                           configuration={"BranchName": "main", "PollForSourceChanges": "yes"},
                           outputArtifacts=[{"name": "B"}])]),
        ("Build", [action("C", "Build", "Simulate", inputArtifacts=[{"name": "A"}])]),
    ])
    found = {(p.path, p.message) for p in validate_document(doc)}
    assert ("stages[0].actions[0].configuration.ConnectionArn", "is required") in found
    assert ("stages[0].actions[0].configuration.FullRepositoryId",
            '"no-owner" is not a repository name such as owner/repo') in found
    assert ("stages[0].actions[0].configuration.OutputArtifactFormat",
            '"ZIP" is not an output artifact format: use CODE_ZIP or CODEBUILD_CLONE_REF') in found
    assert any(p == "stages[0].actions[0].configuration.Detect" for p, _ in found)
    assert ("stages[0].actions[1].configuration.RepositoryName", "is required") in found
    assert ("stages[0].actions[1].configuration.PollForSourceChanges",
            'must be "true" or "false", not "yes"') in found


# --- which connection answers ----------------------------------------------------


def test_an_exact_arn_wins_over_a_pattern_and_a_longer_pattern_over_a_shorter(forge):
    every = github(forge, arns=["arn:aws:codeconnections:*"], name="every")
    account = github(forge, arns=["arn:aws:codeconnections:*:111122223333:connection/*"],
                     name="account")
    exact = github(forge, arns=[ARN], name="exact")
    assert connection_for(ARN) == exact
    assert connection_for(ARN[:-4] + "ffff") == account
    assert connection_for("arn:aws:codeconnections:us-east-1:999:connection/x") == every
    assert connection_for("arn:aws:codestar-connections:us-east-1:999:connection/x") is None


# --- running -----------------------------------------------------------------------


def test_a_codestar_source_fetches_through_its_connection_with_the_token_the_forge_demands(
        forge, app_repo, tmp_path):
    github(forge)
    ctx = make_ctx(tmp_path, codestar())
    result = CodeStarSourceConnectionRunner().run(ctx)
    out = ctx.output_dirs["SourceArtifact"]
    assert (out / "app.py").read_text() == "print('v2')\n" and not (out / ".git").exists()
    assert result.output_variables == {
        "AuthorDate": result.output_variables["AuthorDate"],
        "BranchName": "main",
        "CommitId": app_repo.head(),
        "CommitMessage": "Second commit\n\nWith a body.",
        "ConnectionArn": ARN,
        "FullRepositoryName": "acme/app",
    }
    assert result.output_variables["AuthorDate"][:4].isdigit()
    assert result.revision.revision_id == app_repo.head()
    assert forge.seen and all(seen == forge.expected for seen in forge.seen)
    log = log_text(ctx)
    assert f'Fetching {forge.url}/acme/app through connection "github-acme"' in log
    # The token is in no log, and in no file git keeps (mirror config, reflogs, …).
    assert TOKEN not in log
    assert TOKEN.encode() not in everything_under(tmp_path / "git-cache")


def test_a_wrong_token_fails_with_gits_reason_and_no_secret(forge, app_repo, tmp_path):
    github(forge, token="ghp_wrongTokenValue")
    with pytest.raises(ActionFailed) as failed:
        CodeStarSourceConnectionRunner().run(make_ctx(tmp_path, codestar()))
    assert failed.value.summary.startswith(f"Cannot fetch {forge.url}/acme/app: fatal:")
    assert "ghp_wrongTokenValue" not in failed.value.summary


def test_a_source_whose_connection_does_not_exist_fails_naming_the_arn_and_the_remedy(
        tmp_path):
    with pytest.raises(ActionFailed) as failed:
        CodeStarSourceConnectionRunner().run(make_ctx(tmp_path, codestar()))
    assert f'no connection answers to "{ARN}"' in failed.value.summary
    assert "/admin/pipelines/connection/add/" in failed.value.summary


def test_codebuild_clone_ref_hands_on_a_clone_with_its_history_and_no_credential(
        forge, app_repo, tmp_path):
    github(forge)
    ctx = make_ctx(tmp_path, codestar(OutputArtifactFormat="CODEBUILD_CLONE_REF"))
    result = CodeStarSourceConnectionRunner().run(ctx)
    out = ctx.output_dirs["SourceArtifact"]
    clone = GitRepo.__new__(GitRepo)
    clone.path = out
    assert clone.git("log", "--format=%s") == "Second commit\nFirst commit"
    assert clone.git("rev-parse", "HEAD") == result.output_variables["CommitId"]
    assert clone.git("symbolic-ref", "--short", "HEAD") == "main"
    assert clone.git("remote", "get-url", "origin") == f"{forge.url}/acme/app"
    assert clone.git("status", "--porcelain") == ""
    assert TOKEN.encode() not in everything_under(out)
    assert "2 commit(s) of history" in log_text(ctx)


def test_a_codecommit_source_clones_repository_name_under_the_codecommit_connection(
        forge, tmp_path):
    repo = forge.repository("app")
    sha = repo.commit({"main.go": "package main\n"}, "Initial import")
    services.connection_save(name="codecommit-moved", provider="GitHub", base_url=forge.url,
                             arns=["codecommit:*"], token=TOKEN)
    ctx = make_ctx(tmp_path, codecommit())
    result = CodeCommitRunner().run(ctx)
    assert (ctx.output_dirs["SourceArtifact"] / "main.go").exists()
    variables = result.output_variables
    assert sorted(variables) == ["AuthorDate", "BranchName", "CommitId", "CommitMessage",
                                 "CommitterDate", "RepositoryName"]
    assert (variables["CommitId"], variables["RepositoryName"]) == (sha, "app")


@pytest.fixture
def fake_ssh(tmp_path, monkeypatch):
    """An ``ssh`` on PATH that records its arguments and the key file's content, then runs
    the remote command here: the stand-in for an SSH forge (no sshd in these tests)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "ssh-record"
    script = bin_dir / "ssh"
    script.write_text(f"""#!/bin/sh
key=""
prev=""
for arg in "$@"; do
  [ "$prev" = "-i" ] && key="$arg"
  prev="$arg"
  last="$arg"
done
{{ echo "ARGS $*"; echo "KEYMODE $(stat -c %a "$key")"; cat "$key"; }} >> {record}
exec sh -c "$last"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def test_an_ssh_key_reaches_ssh_as_a_private_file_that_is_removed_afterwards(
        fake_ssh, tmp_path):
    repo = GitRepo(tmp_path / "srv" / "acme" / "app")
    sha = repo.commit({"x": "x"}, "Over ssh")
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n" \
          "-----END OPENSSH PRIVATE KEY-----"
    services.connection_save(name="ssh-forge", provider="Gitea",
                             base_url=f"ssh://git@forge.test{tmp_path}/srv", arns=[ARN],
                             ssh_key=key)
    result = CodeStarSourceConnectionRunner().run(make_ctx(tmp_path, codestar()))
    assert result.output_variables["CommitId"] == sha
    record = fake_ssh.read_text()
    assert "-o IdentitiesOnly=yes" in record and "git@forge.test" in record
    assert "KEYMODE 600" in record and "b3BlbnNzaC1rZXktdjEAAAAA" in record
    key_file = record.split("ARGS ")[1].split("-i ")[1].split()[0]
    assert not Path(key_file).exists()


# --- end to end: the credential stays out of commands ------------------------------


def test_a_pipeline_builds_through_a_connection_and_its_commands_never_see_the_token(
        driver, forge, app_repo):
    github(forge)
    doc = definition("connected", stages=[
        ("Source", [codestar(OutputArtifactFormat="CODEBUILD_CLONE_REF")]),
        ("Build", [action("Inspect", "Build", "Shell", inputArtifacts=[{"name": "SourceArtifact"}],
                          commands=["env", "git log --format=%s",
                                    "git config --list --show-origin",
                                    "echo commits=$(git rev-list --count HEAD)"])]),
    ])
    pipeline = services.pipeline_save(document=doc).pipeline
    execution = driver.start(pipeline)
    driver.run()
    execution.refresh_from_db()
    assert execution.status == "Succeeded", driver.describe()
    build = ActionExecution.objects.get(execution=execution, action_name="Inspect")
    log = logfile.text(Path(settings.LOG_ROOT) / build.log_path)
    assert "commits=2" in log and "Second commit" in log
    assert TOKEN not in log and "Authorization" not in log
    revision = SourceRevision.objects.get(execution=execution)
    assert revision.revision_id == app_repo.head()


# --- change detection: the existing polling and webhooks ---------------------------


def pipeline_with(source: dict, name: str = "watched"):
    doc = definition(name, stages=[
        ("Source", [source]),
        ("Build", [action("Compile", "Build", "Simulate",
                          inputArtifacts=[{"name": "SourceArtifact"}])]),
    ])
    pipeline = services.pipeline_save(document=doc).pipeline
    services.pipeline_set_webhook_secret(pipeline=pipeline, secret=SECRET)
    return pipeline


SECRET = "a-webhook-secret-of-some-length"


def test_polling_reads_the_forge_with_the_connections_token_and_starts_new_commits(
        driver, forge, app_repo):
    github(forge)
    pipeline = pipeline_with(codestar())
    first = driver.call(triggers.poll_pipeline, pipeline)
    assert [(d.started, d.reason) for d in first] == [
        (True, f"new commit {app_repo.head()[:12]}")]
    assert forge.seen[-1] == forge.expected
    driver.run()
    assert driver.call(triggers.poll_pipeline, pipeline)[0].reason == "no new commit"
    newer = app_repo.commit({"b.txt": "b"}, "Another")
    assert driver.call(triggers.poll_pipeline, pipeline)[0].started
    driver.run()
    assert SourceRevision.objects.order_by("-id").first().revision_id == newer


def test_polling_says_which_connection_is_missing(driver):
    pipeline = pipeline_with(codestar())
    assert [d.reason for d in driver.call(triggers.poll_pipeline, pipeline)] == [
        f'no connection answers to "{ARN}"']


def test_codecommit_with_poll_for_source_changes_false_follows_pushes_only(
        driver, forge, api):
    repo = forge.repository("app")
    sha = repo.commit({"x": "x"}, "One")
    services.connection_save(name="cc", provider="Git", base_url=forge.url,
                             arns=["codecommit:app"], token=TOKEN, username="x-access-token")
    pipeline = pipeline_with(codecommit(PollForSourceChanges="false"), name="cc-pushes")
    assert driver.call(triggers.poll_pipeline, pipeline) == []
    body = json.dumps({"ref": "refs/heads/main", "before": "0" * 39 + "1", "after": sha,
                       "repository": {"clone_url": f"{forge.url}/app"},
                       "commits": [], "head_commit": {"id": sha}}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = driver.call(api(None).post, "/api/hooks/cc-pushes/", body,
                           content_type="application/json", HTTP_X_GITHUB_EVENT="push",
                           HTTP_X_HUB_SIGNATURE_256=signature)
    assert response.status_code == 202, response.json()
    assert response.json()["decisions"][0]["started"] is True
    driver.run()
    assert SourceRevision.objects.get().revision_id == sha
