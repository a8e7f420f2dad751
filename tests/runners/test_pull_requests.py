"""Pull-request triggers: signed GitHub, GitLab and Gitea payloads against a real repository.

Each payload carries the members its forge documents for the event (GitHub
``pull_request``, GitLab "Merge Request Hook", Gitea ``pull_request``), trimmed
to what the forge sends that matters here; they are signed as each forge signs.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from executions.models import ActionExecution, PipelineExecution
from pipelines.services import DefinitionInvalid, pipeline_save
from tests.factories import action, definition
from tests.runners.test_triggers import SECRET, github_push, make_pipeline, post_hook
from triggers.pull_requests import filters_pass, parse

PR_TRIGGER = [{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
    "sourceActionName": "Checkout",
    "push": [{"branches": {"includes": ["main"]}}],
    "pullRequest": [{"events": ["OPEN", "UPDATED"],
                     "branches": {"includes": ["main"], "excludes": ["legacy"]},
                     "filePaths": {"includes": ["app/**"]}}],
}}]


def github_pr(repo, action_: str, head: str, *, base_ref="main", merged=False,
              number=7) -> dict:
    return {
        "action": action_, "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/acme/app/pulls/{number}",
            "html_url": f"https://github.com/acme/app/pull/{number}", "number": number,
            "state": "closed" if action_ == "closed" else "open", "title": "Fix the login",
            "merged": merged,
            "head": {"label": "acme:feature/login", "ref": "feature/login", "sha": head,
                     "repo": {"full_name": "acme/app", "clone_url": str(repo.path)}},
            "base": {"label": "acme:main", "ref": base_ref, "sha": repo.head("main"),
                     "repo": {"full_name": "acme/app", "clone_url": str(repo.path)}},
        },
        "repository": {"full_name": "acme/app", "clone_url": str(repo.path),
                       "html_url": "https://github.com/acme/app"},
        "sender": {"login": "ada"},
    }


def gitlab_mr(repo, action_: str, head: str, *, oldrev: str | None = None) -> dict:
    attrs = {"iid": 3, "title": "Fix the login", "state": "opened", "action": action_,
             "url": "https://gitlab.example.com/acme/app/-/merge_requests/3",
             "source_branch": "feature/login", "target_branch": "main",
             "last_commit": {"id": head, "message": "Fix the login"}}
    if oldrev:
        attrs["oldrev"] = oldrev
    return {"object_kind": "merge_request", "event_type": "merge_request",
            "user": {"username": "ada"},
            "project": {"path_with_namespace": "acme/app", "git_http_url": str(repo.path),
                        "web_url": "https://gitlab.example.com/acme/app"},
            "object_attributes": attrs}


def post(api, driver, payload: dict, *, forge: str, delivery: str):
    body = json.dumps(payload).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "GitHub": {"HTTP_X_GITHUB_EVENT": "pull_request", "HTTP_X_GITHUB_DELIVERY": delivery,
                   "HTTP_X_HUB_SIGNATURE_256": f"sha256={digest}"},
        "Gitea": {"HTTP_X_GITEA_EVENT": "pull_request", "HTTP_X_GITEA_DELIVERY": delivery,
                  "HTTP_X_GITEA_SIGNATURE": digest},
        "GitLab": {"HTTP_X_GITLAB_EVENT": "Merge Request Hook",
                   "HTTP_X_GITLAB_EVENT_UUID": delivery, "HTTP_X_GITLAB_TOKEN": SECRET},
    }[forge]
    return driver.call(api(None).post, "/api/hooks/shop/", body,
                       content_type="application/json", **headers)


@pytest.fixture
def branch(repo):
    """A pull request's source branch, feature/login, one commit ahead of main in app/."""
    repo.git("checkout", "-q", "-b", "feature/login")
    head = repo.commit({"app/login.py": "ok = True\n"}, "Fix the login")
    repo.git("checkout", "-q", "main")
    return head


@pytest.fixture
def shop(db, repo):
    return make_pipeline("shop", str(repo.path), triggers_=PR_TRIGGER)


@pytest.mark.parametrize("forge", ["GitHub", "Gitea"])
def test_an_opened_pull_request_runs_the_source_branchs_head_naming_the_pull_request(
        shop, repo, branch, api, driver, forge):
    answer = post(api, driver, github_pr(repo, "opened", branch), forge=forge, delivery="d1")
    assert answer.status_code == 202, answer.json()
    execution = PipelineExecution.objects.get()
    assert execution.trigger_type == "WebhookV2"
    assert execution.trigger_detail == ('Pull request #7 "Fix the login" (feature/login → '
                                        'main) OPEN: https://github.com/acme/app/pull/7')
    driver.run_action("Source", "Checkout")
    source = ActionExecution.objects.get(action_name="Checkout")
    assert source.output_variables["CommitId"] == branch
    assert source.output_variables["BranchName"] == "feature/login"
    assert source.output_variables["PullRequestId"] == "7"
    assert source.output_variables["PullRequestTitle"] == "Fix the login"
    assert source.output_variables["PullRequestUrl"] == "https://github.com/acme/app/pull/7"
    assert source.output_variables["DestinationBranchName"] == "main"
    # The same delivery again is a replay.
    assert post(api, driver, github_pr(repo, "opened", branch), forge=forge,
                delivery="d1").status_code == 409


def test_a_gitlab_merge_request_update_with_new_commits_starts_and_a_title_edit_does_not(
        shop, repo, branch, api, driver):
    answer = post(api, driver, gitlab_mr(repo, "update", branch), forge="GitLab",
                  delivery="u0")
    assert answer.status_code == 200
    assert "not OPEN, UPDATED or CLOSED" in answer.json()["decisions"][0]["reason"]
    answer = post(api, driver, gitlab_mr(repo, "update", branch, oldrev=repo.head("main")),
                  forge="GitLab", delivery="u1")
    assert answer.status_code == 202, answer.json()
    execution = PipelineExecution.objects.get()
    assert "Pull request #3" in execution.trigger_detail and "UPDATED" in \
        execution.trigger_detail
    assert execution.source_revision_overrides[0]["revisionValue"] == branch


def test_branch_filters_match_the_destination_branch(shop, repo, branch, api, driver):
    answer = post(api, driver, github_pr(repo, "opened", branch, base_ref="legacy"),
                  forge="GitHub", delivery="d2")
    assert answer.status_code == 200
    assert "into legacy" in answer.json()["decisions"][0]["reason"]
    assert not PipelineExecution.objects.exists()


def test_events_the_filter_does_not_list_start_nothing(shop, repo, branch, api, driver):
    answer = post(api, driver, github_pr(repo, "closed", branch, merged=True),
                  forge="GitHub", delivery="d3")
    assert answer.status_code == 200
    assert not PipelineExecution.objects.exists()


def test_a_pull_request_changing_no_included_file_starts_nothing(db, repo, api, driver):
    make_pipeline("shop", str(repo.path), triggers_=PR_TRIGGER)
    repo.git("checkout", "-q", "-b", "feature/login")
    head = repo.commit({"README.md": "# docs only\n"}, "Docs")
    repo.git("checkout", "-q", "main")
    answer = post(api, driver, github_pr(repo, "opened", head), forge="GitHub", delivery="d4")
    assert answer.status_code == 200
    assert "1 changed file(s)" in answer.json()["decisions"][0]["reason"]


def test_a_push_and_a_pull_request_for_one_commit_each_follow_their_own_trigger(
        shop, repo, branch, api, driver):
    # The push filter builds main only: a push of feature/login starts nothing ...
    push = post_hook(api, driver, "shop", github_push(str(repo.path), branch,
                                                      ref="refs/heads/feature/login"))
    assert push.status_code == 200
    # ... the pull request of that same commit does.
    assert post(api, driver, github_pr(repo, "opened", branch), forge="GitHub",
                delivery="d5").status_code == 202
    # A push of main's commit starts through the push filter, and a pull request
    # event for a commit already built by a push still starts its own execution.
    before = repo.head("main")
    main = repo.commit({"app/x.py": "x = 1\n"}, "On main")
    assert post_hook(api, driver, "shop", github_push(str(repo.path), main)).status_code == 202
    synchronize = github_pr(repo, "synchronize", main)
    synchronize["pull_request"]["base"]["sha"] = before
    assert post(api, driver, synchronize, forge="GitHub", delivery="d6").status_code == 202
    assert PipelineExecution.objects.count() == 3


def test_without_pull_request_filters_pull_requests_start_nothing(db, repo, branch, api,
                                                                  driver):
    make_pipeline("shop", str(repo.path))
    answer = post(api, driver, github_pr(repo, "opened", branch), forge="GitHub",
                  delivery="d7")
    assert answer.status_code == 200
    assert "no trigger of this action has pullRequest filters" in \
        answer.json()["decisions"][0]["reason"]


def test_when_include_and_exclude_both_match_exclude_wins(repo):
    pr = parse("GitHub", github_pr(repo, "opened", "a" * 40, base_ref="release/1"))
    flt = [{"events": ["OPEN"], "branches": {"includes": ["release/*"],
                                             "excludes": ["release/1"]}}]
    assert filters_pass(flt, pr, None)[0] is False


def test_pull_request_filters_are_validated_at_their_path(db):
    doc = definition("bad", stages=[
        ("Source", [action("Checkout", "Source", "Git",
                           configuration={"RepositoryUrl": "/tmp/x", "BranchName": "main"},
                           outputArtifacts=[{"name": "Src"}])]),
        ("Build", [action("Compile", commands=["true"], inputArtifacts=[{"name": "Src"}])]),
    ], triggers=[{"providerType": "CodeStarSourceConnection", "gitConfiguration": {
        "sourceActionName": "Checkout",
        "pullRequest": [{"events": ["MERGED"], "tags": {"includes": ["v*"]}}]}}])
    with pytest.raises(DefinitionInvalid) as exc:
        pipeline_save(document=doc)
    paths = {p.path for p in exc.value.problems}
    assert "triggers[0].gitConfiguration.pullRequest[0].events" in paths
    assert "triggers[0].gitConfiguration.pullRequest[0].tags" in paths


def test_the_history_and_the_execution_page_show_the_pull_request(shop, repo, branch, api,
                                                                  driver, client, owner):
    post(api, driver, github_pr(repo, "opened", branch), forge="GitHub", delivery="d8")
    client.force_login(owner)
    history = client.get("/pipelines/shop/executions/").content.decode()
    assert "Pull request #7" in history
    page = client.get("/pipelines/shop/executions/1/").content.decode()
    assert "Pull request #7 &quot;Fix the login&quot; (feature/login → main)" in page
