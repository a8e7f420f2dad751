"""Pull-request triggers: CodePipeline's ``gitConfiguration.pullRequest`` filters.

A forge's pull-request webhook (GitHub ``pull_request``, Gitea
``pull_request``, GitLab ``Merge Request Hook``) reaches the pipeline's push
hook (``/api/hooks/{pipeline}/``), verified the same way. For each Git source
action whose trigger has ``pullRequest`` filters:

1. the forge's action is read as one of CodePipeline's events: OPEN (opened,
   reopened), UPDATED (new commits: GitHub ``synchronize``, Gitea
   ``synchronized``, GitLab ``update`` with ``oldrev``) or CLOSED (merged);
   other actions (edited, labeled, closed without merging, …) start nothing;
2. a filter passes when it lists the event, its ``branches`` match the
   **destination** branch and its ``filePaths`` match a changed file (read
   from the repository's mirror; unknown files pass, as for pushes); exclude
   wins over include;
3. the execution runs the **source** branch's head commit; its trigger detail
   names the pull request, and the Source action's variables add
   ``PullRequestId``, ``PullRequestTitle``, ``PullRequestUrl``,
   ``SourceBranchName`` and ``DestinationBranchName`` (Conveyor's: CodePipeline
   documents no pull-request variables), with ``BranchName`` the source branch.

A push and a pull request for one commit follow their own triggers: the
change token includes the pull request's number and event, so the push's
execution does not stand in for the pull request's (nor the reverse).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from executions.choices import TriggerType
from executions.errors import ExecutionError
from executions.models import PipelineExecution
from pipelines.models import Pipeline
from runners import git as gitlib
from triggers import changes

OPEN, UPDATED, CLOSED = "OPEN", "UPDATED", "CLOSED"


@dataclass
class PullRequest:
    """A pull-request event, whichever forge sent it."""

    sender: str
    event: str | None        # OPEN / UPDATED / CLOSED, None for an action that starts nothing
    action: str              # the forge's own word (opened, synchronize, merge, ...)
    number: int
    title: str
    url: str
    source_branch: str
    destination_branch: str
    head: str                # the source branch's head commit
    base: str = ""           # the destination's commit, for the changed files
    repository_urls: tuple[str, ...] = ()

    def describe(self) -> str:
        return (f'Pull request #{self.number} "{self.title}" ({self.source_branch} → '
                f"{self.destination_branch}) {self.event or self.action}: {self.url}")

    def variables(self) -> dict[str, str]:
        return {"PullRequestId": str(self.number), "PullRequestTitle": self.title,
                "PullRequestUrl": self.url, "SourceBranchName": self.source_branch,
                "DestinationBranchName": self.destination_branch}


def is_pull_request(sender: str, event: str) -> bool:
    return (sender in ("GitHub", "Gitea") and event == "pull_request") or (
        sender == "GitLab" and event == "Merge Request Hook")


def _urls(repo) -> tuple[str, ...]:
    if not isinstance(repo, dict):
        return ()
    return tuple(repo[k] for k in ("clone_url", "ssh_url", "git_http_url", "git_ssh_url",
                                   "html_url", "web_url", "url", "homepage")
                 if isinstance(repo.get(k), str) and repo.get(k))


def parse(sender: str, data) -> PullRequest | str:
    """A pull request from a GitHub/Gitea ``pull_request`` or GitLab merge-request payload."""
    if not isinstance(data, dict):
        return "the payload is not a JSON object"
    if sender == "GitLab":
        attrs = data.get("object_attributes")
        if not isinstance(attrs, dict):
            return "the payload has no object_attributes"
        action = str(attrs.get("action") or "")
        event = {"open": OPEN, "reopen": OPEN, "merge": CLOSED}.get(action)
        if action == "update" and attrs.get("oldrev"):
            event = UPDATED  # an update without oldrev changed the title or labels only
        last = attrs.get("last_commit") if isinstance(attrs.get("last_commit"), dict) else {}
        head = last.get("id")
        if not isinstance(head, str) or not isinstance(attrs.get("iid"), int):
            return "the merge request has no iid or last_commit.id"
        return PullRequest(
            sender, event, action, attrs["iid"], str(attrs.get("title") or ""),
            str(attrs.get("url") or ""), str(attrs.get("source_branch") or ""),
            str(attrs.get("target_branch") or ""), head,
            repository_urls=_urls(data.get("project")) + _urls(attrs.get("target")))
    pr = data.get("pull_request")
    if not isinstance(pr, dict):
        return "the payload has no pull_request"
    head, base = pr.get("head") or {}, pr.get("base") or {}
    action = str(data.get("action") or "")
    event = {"opened": OPEN, "reopened": OPEN, "synchronize": UPDATED,
             "synchronized": UPDATED}.get(action)
    if action == "closed" and pr.get("merged"):
        event = CLOSED
    number = data.get("number", pr.get("number"))
    if not isinstance(head.get("sha"), str) or not isinstance(number, int):
        return "the pull request has no number or head.sha"
    return PullRequest(
        sender, event, action, number, str(pr.get("title") or ""),
        str(pr.get("html_url") or ""), str(head.get("ref") or ""), str(base.get("ref") or ""),
        head["sha"], str(base.get("sha") or ""),
        repository_urls=_urls(data.get("repository")) + _urls(base.get("repo")))


def pull_request_filters(document: dict, action_name: str) -> list[dict] | None:
    """The ``pullRequest`` filters of the action's trigger (None: no trigger names it)."""
    for trigger in document.get("triggers") or []:
        git = trigger.get("gitConfiguration") if isinstance(trigger, dict) else None
        if isinstance(git, dict) and git.get("sourceActionName") == action_name:
            pr = git.get("pullRequest")
            return [f for f in pr if isinstance(f, dict)] if isinstance(pr, list) else []
    return None


def filters_pass(filters: list[dict] | None, pr: PullRequest,
                 files: list[str] | None) -> tuple[bool, str]:
    """Whether a pull-request event passes the action's filters; a reason a person reads."""
    if not filters:
        return False, ("no trigger of this action has pullRequest filters" if filters is None
                       else "the trigger of this action has no pullRequest filter")
    if pr.event is None:
        return False, f'pull-request action "{pr.action}" is not OPEN, UPDATED or CLOSED'
    for flt in filters:
        events = flt.get("events") or [OPEN, UPDATED, CLOSED]
        if pr.event not in events:
            continue
        if "branches" in flt and not changes._included(flt["branches"],
                                                        pr.destination_branch):
            continue
        if "filePaths" in flt and files is not None and not any(
                changes._included(flt["filePaths"], name) for name in files):
            continue
        return True, f"pull request #{pr.number} {pr.event} matches a trigger filter"
    return False, (f"no pullRequest filter matches {pr.event} into {pr.destination_branch}"
                   + ("" if files is None else f" with {len(files)} changed file(s)"))


def change_token(action_name: str, pr: PullRequest) -> str:
    tag = hashlib.sha256(action_name.encode()).hexdigest()[:10]
    return f"pr:{tag}:{pr.number}:{pr.event}:{pr.head}"


def _changed_files(url: str, pr: PullRequest) -> list[str] | None:
    if not pr.base:
        return None
    try:
        mirror = gitlib.mirror_fetch(url)
        if gitlib.resolve(mirror, pr.base) is None or gitlib.resolve(mirror, pr.head) is None:
            return None  # e.g. a fork's commit the mirror does not have
        return gitlib.changed_files(mirror, pr.base, pr.head)
    except gitlib.GitError:
        return None


def decide(pipeline: Pipeline, pr: PullRequest) -> list[changes.Decision]:
    """Start what a pull-request event should start; one Decision per Git source action."""
    from executions import services

    document = pipeline.document
    wanted = {gitlib.repository_key(u) for u in pr.repository_urls}
    sources = changes.git_sources(document)
    if not sources:
        return [changes.Decision("", reason="the pipeline has no Git source action")]
    decisions = []
    for action in sources:
        name = action["name"]
        config = action.get("configuration") or {}
        url = config.get("RepositoryUrl", "")
        if wanted and gitlib.repository_key(url) not in wanted:
            decisions.append(changes.Decision(
                name, reason=f"the pull request is for another repository than {url}"))
            continue
        filters = pull_request_filters(document, name)
        files = (_changed_files(url, pr) if filters and pr.event
                 and any("filePaths" in f for f in filters) else None)
        ok, why = filters_pass(filters, pr, files)
        if not ok:
            decisions.append(changes.Decision(name, reason=why))
            continue
        token = change_token(name, pr)
        seen = PipelineExecution.objects.filter(pipeline=pipeline,
                                                client_request_token=token).first()
        if seen is not None:
            decisions.append(changes.Decision(
                name, False, seen, f"this pull-request event was already started as "
                                   f"execution #{seen.number}"))
            continue
        try:
            execution = services.execution_start(
                pipeline=pipeline, trigger_type=TriggerType.WEBHOOK_V2,
                trigger_detail=pr.describe()[:1000],
                source_revisions=[{"actionName": name, "revisionType": "COMMIT_ID",
                                   "revisionValue": pr.head, "branchName": pr.source_branch,
                                   "pullRequest": pr.variables()}],
                client_request_token=token)
        except ExecutionError as exc:
            decisions.append(changes.Decision(name, reason=exc.detail))
            continue
        decisions.append(changes.Decision(name, True, execution, why))
    return decisions
