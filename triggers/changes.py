"""Change detection for Git source actions: push webhooks, trigger filters, polling.

A change starts an execution in three ways, all ending in ``change_start``:

1. a signed push webhook (GitHub, GitLab, Gitea, or Conveyor's own
   post-receive hook, docs/post-receive.md) at ``POST /api/hooks/{pipeline}/``,
   parsed by ``push_parse`` and decided by ``push_decide``;
2. polling (``poll_sources``, a django-q2 schedule every
   ``CONVEYOR_POLL_SECONDS``, default 60): ``git ls-remote`` of each Git source
   action's branch, an execution when its head is a commit not seen before;
3. a person or a client starting an execution (not here: executions.services).

Only Git actions with ``DetectChanges`` ``"true"`` (the default) react to
changes. The pipeline's ``triggers`` (CodePipeline's ``gitConfiguration``
``push`` filters: ``branches``, ``tags``, ``filePaths``, each with
``includes``/``excludes`` globs) decide which pushes start an execution;
without a trigger for the action, a push to its ``BranchName`` does.

One execution per commit, never two: every change-started execution carries
the client request token ``change:<action>:<commit>``, which the database
keeps unique per pipeline, so two pollers (or a poller and a webhook)
racing for one new commit start one execution between them. A commit some
execution of the pipeline already built is not started again either.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import hmac
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from executions.choices import TriggerType
from executions.errors import ExecutionError
from executions.models import PipelineExecution, SourceRevision
from pipelines.models import Pipeline
from runners import git as gitlib

logger = logging.getLogger("conveyor.triggers")

POLL_SCHEDULE_NAME = "conveyor-poll-sources"


# --- signatures ------------------------------------------------------------------


def signature_valid(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether the request proves it knows the pipeline's webhook secret.

    Accepted, each compared in constant time: ``X-Hub-Signature-256:
    sha256=<hex HMAC-SHA256 of the body>`` (GitHub, Gitea, Conveyor's hook),
    ``X-Gitea-Signature: <hex>`` and GitLab's ``X-Gitlab-Token: <secret>``.
    An empty secret accepts nothing.
    """
    if not secret:
        return False
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = headers.get("X-Hub-Signature-256")
    if given is not None:
        return hmac.compare_digest(given.strip().encode(), f"sha256={digest}".encode())
    given = headers.get("X-Gitea-Signature")
    if given is not None:
        return hmac.compare_digest(given.strip().encode(), digest.encode())
    given = headers.get("X-Gitlab-Token")
    if given is not None:
        return hmac.compare_digest(given.encode(), secret.encode())
    return False


# --- push payloads ---------------------------------------------------------------


@dataclass
class Push:
    """A push, whichever forge sent it."""

    sender: str                 # "GitHub", "GitLab", "Gitea", "git hook"
    ref: str                    # refs/heads/main, refs/tags/v1
    after: str                  # the new head commit
    before: str = ""
    files: list[str] | None = None  # changed paths; None when the payload does not say
    repository_urls: list[str] = field(default_factory=list)
    message: str = ""

    @property
    def branch(self) -> str | None:
        return self.ref[len("refs/heads/"):] if self.ref.startswith("refs/heads/") else None

    @property
    def tag(self) -> str | None:
        return self.ref[len("refs/tags/"):] if self.ref.startswith("refs/tags/") else None

    @property
    def deleted(self) -> bool:
        return not self.after or set(self.after) == {"0"}

    def describe(self) -> str:
        return f"{self.sender} push to {self.ref} ({self.after[:12]})"


def event_kind(headers: Mapping[str, str]) -> tuple[str, str]:
    """(sender, event) from the forge's event header; event "push" for pushes."""
    if "X-GitHub-Event" in headers:
        return "GitHub", headers["X-GitHub-Event"]
    if "X-Gitea-Event" in headers:
        return "Gitea", headers["X-Gitea-Event"]
    if "X-Gogs-Event" in headers:
        return "Gitea", headers["X-Gogs-Event"]
    if "X-Gitlab-Event" in headers:
        event = headers["X-Gitlab-Event"]
        return "GitLab", "push" if event in ("Push Hook", "Tag Push Hook") else event
    if "X-Conveyor-Event" in headers:
        return "git hook", headers["X-Conveyor-Event"]
    return "unknown", "push"


def push_parse(sender: str, data) -> Push | str:
    """A push from a GitHub/Gitea/GitLab/post-receive payload, or why it is not one."""
    if not isinstance(data, dict):
        return "the payload is not a JSON object"
    ref, after = data.get("ref"), data.get("after") or data.get("checkout_sha")
    if not isinstance(ref, str) or not isinstance(after, str):
        return "the payload has no ref and after: not a push"
    files: set[str] | None = set()
    commits = data.get("commits")
    if isinstance(commits, list) and commits:
        for commit in commits:
            if not isinstance(commit, dict):
                continue
            for key in ("added", "modified", "removed"):
                names = commit.get(key)
                if isinstance(names, list):
                    files.update(n for n in names if isinstance(n, str))
        # GitHub lists at most 20 commits (GitLab 20, with total_commits_count):
        # beyond that the file list is incomplete, so it says nothing.
        total = data.get("total_commits_count", len(commits))
        if len(commits) >= 20 or (isinstance(total, int) and total > len(commits)):
            files = None
    elif isinstance(data.get("files"), list):  # Conveyor's post-receive hook sends files
        files = {n for n in data["files"] if isinstance(n, str)}
    else:
        files = None
    repo = data.get("repository") or data.get("project") or {}
    urls = []
    if isinstance(repo, dict):
        for key in ("clone_url", "ssh_url", "git_http_url", "git_ssh_url", "html_url",
                    "url", "web_url", "homepage", "path"):
            value = repo.get(key)
            if isinstance(value, str) and value:
                urls.append(value)
    head = data.get("head_commit") if isinstance(data.get("head_commit"), dict) else {}
    message = head.get("message") if isinstance(head.get("message"), str) else ""
    return Push(sender=sender, ref=ref, after=after, before=str(data.get("before") or ""),
                files=sorted(files) if files is not None else None,
                repository_urls=urls, message=message)


# --- filters ---------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern:
    """CodePipeline's glob: ``**`` any path, ``*`` within a segment, ``?``, ``[...]``, ``{a,b}``."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "{" and "}" in pattern[i:]:
            end = pattern.index("}", i)
            out.append("(?:" + "|".join(re.escape(p) for p in pattern[i + 1:end].split(","))
                       + ")")
            i = end + 1
        elif c == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            out.append(fnmatch.translate(pattern[i:end + 1])[4:-3])
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def glob_match(pattern: str, text: str) -> bool:
    return bool(_glob_regex(pattern).match(text))


def _included(spec, name: str) -> bool:
    """An includes/excludes object: excluded wins; no includes means everything."""
    if not isinstance(spec, dict):
        return True
    excludes = [p for p in spec.get("excludes") or [] if isinstance(p, str)]
    includes = [p for p in spec.get("includes") or [] if isinstance(p, str)]
    if any(glob_match(p, name) for p in excludes):
        return False
    return not includes or any(glob_match(p, name) for p in includes)


def trigger_filters(document: dict, action_name: str) -> list[dict] | None:
    """The push filters the pipeline's triggers set for a source action.

    None: no trigger names the action (a push to its BranchName starts an
    execution). A trigger without ``push`` filters (pull requests only) gives
    [], which no push passes.
    """
    for trigger in document.get("triggers") or []:
        git = trigger.get("gitConfiguration") if isinstance(trigger, dict) else None
        if isinstance(git, dict) and git.get("sourceActionName") == action_name:
            push = git.get("push")
            return [f for f in push if isinstance(f, dict)] if isinstance(push, list) else []
    return None


def filters_pass(filters: list[dict] | None, *, branch: str | None, tag: str | None,
                 files: list[str] | None, default_branch: str) -> tuple[bool, str]:
    """Whether a change passes the filters, and a reason a person can read."""
    if filters is None:
        if branch == default_branch:
            return True, f"a push to {branch}"
        return False, (f"the action builds {default_branch}, not " +
                       (f"branch {branch}" if branch is not None else f"tag {tag}"))
    if not filters:
        return False, "the trigger of this action has no push filter"
    for flt in filters:
        if tag is not None:
            if "tags" not in flt or not _included(flt["tags"], tag):
                continue
        elif "branches" in flt:
            if not _included(flt["branches"], branch or ""):
                continue
        elif "tags" in flt or branch != default_branch:
            continue
        if "filePaths" in flt and files is not None and tag is None and not any(
                _included(flt["filePaths"], name) for name in files):
            continue
        return True, "the push matches a trigger filter"
    return False, ("no trigger filter matches " +
                   (f"tag {tag}" if tag is not None else f"branch {branch}") +
                   ("" if files is None else f" with {len(files)} changed file(s)"))


# --- starting executions -------------------------------------------------------------


def git_sources(document: dict) -> list[dict]:
    """The Git source actions of a definition (the first stage's)."""
    stages = document.get("stages") or []
    actions = (stages[0].get("actions") or []) if stages else []
    return [a for a in actions
            if (a.get("actionTypeId") or {}).get("provider") == "Git"
            and (a.get("actionTypeId") or {}).get("category") == "Source"]


def change_token(action_name: str, commit: str) -> str:
    tag = hashlib.sha256(action_name.encode()).hexdigest()[:10]
    return f"change:{tag}:{commit}"


def change_seen(pipeline: Pipeline, action_name: str, commit: str) -> PipelineExecution | None:
    """An execution of the pipeline that started for, or built, this commit already."""
    execution = PipelineExecution.objects.filter(
        pipeline=pipeline, client_request_token=change_token(action_name, commit)).first()
    if execution is not None:
        return execution
    revision = SourceRevision.objects.filter(
        execution__pipeline=pipeline, action_name=action_name, revision_id=commit,
    ).select_related("execution").first()
    return revision.execution if revision else None


def change_start(*, pipeline: Pipeline, action_name: str, commit: str, branch: str = "",
                 trigger_type: str, trigger_detail: str) -> tuple[PipelineExecution, bool]:
    """Start an execution for a new commit of a source action; (execution, started now).

    1. A commit the pipeline already started for or built answers that execution
       (False).
    2. Otherwise an execution starts with the commit as the action's source
       revision and the token ``change:<action>:<commit>``; the token is unique
       per pipeline in the database, so of two callers racing here one starts
       the execution and the other gets it back.
    """
    from executions import services  # services imports the engine; keep import time light

    seen = change_seen(pipeline, action_name, commit)
    if seen is not None:
        return seen, False
    token = change_token(action_name, commit)
    before = timezone.now()
    execution = services.execution_start(
        pipeline=pipeline, trigger_type=trigger_type, trigger_detail=trigger_detail[:1000],
        source_revisions=[{"actionName": action_name, "revisionType": "COMMIT_ID",
                           "revisionValue": commit, "branchName": branch}],
        client_request_token=token,
    )
    return execution, execution.created_at >= before


@dataclass
class Decision:
    """What a change did for one source action."""

    action_name: str
    started: bool = False
    execution: PipelineExecution | None = None
    reason: str = ""


def push_decide(pipeline: Pipeline, push: Push) -> list[Decision]:
    """Start what a push should start in a pipeline; one Decision per Git source action."""
    document = pipeline.document
    decisions = []
    wanted = {gitlib.repository_key(u) for u in push.repository_urls}
    sources = git_sources(document)
    if not sources:
        return [Decision("", reason="the pipeline has no Git source action")]
    for action in sources:
        name = action["name"]
        config = action.get("configuration") or {}
        if config.get("DetectChanges", "true") != "true":
            decisions.append(Decision(name, reason='DetectChanges is "false"'))
            continue
        url = config.get("RepositoryUrl", "")
        if wanted and gitlib.repository_key(url) not in wanted:
            decisions.append(Decision(name, reason=f"the push is for another repository "
                                                    f"than {url}"))
            continue
        if push.deleted:
            decisions.append(Decision(name, reason=f"{push.ref} was deleted"))
            continue
        filters = trigger_filters(document, name)
        ok, why = filters_pass(filters, branch=push.branch, tag=push.tag, files=push.files,
                               default_branch=config.get("BranchName", ""))
        if not ok:
            decisions.append(Decision(name, reason=why))
            continue
        try:
            execution, started = change_start(
                pipeline=pipeline, action_name=name, commit=push.after,
                branch=push.branch or push.tag or "",
                trigger_type=(TriggerType.WEBHOOK_V2 if filters is not None
                              else TriggerType.WEBHOOK),
                trigger_detail=push.describe())
        except ExecutionError as exc:  # e.g. the pipeline cannot run here
            decisions.append(Decision(name, reason=exc.detail))
            continue
        decisions.append(Decision(name, started, execution,
                                  why if started else f"commit {push.after[:12]} was already "
                                  f"started as execution #{execution.number}"))
    return decisions


# --- polling ---------------------------------------------------------------------


def poll_pipeline(pipeline: Pipeline) -> list[Decision]:
    """Look for a new head commit of each Git source action of a pipeline; start for it."""
    document = pipeline.document
    decisions = []
    for action in git_sources(document):
        name = action["name"]
        config = action.get("configuration") or {}
        if config.get("DetectChanges", "true") != "true":
            continue
        url, branch = config.get("RepositoryUrl", ""), config.get("BranchName", "")
        if "#{" in url or "#{" in branch:
            decisions.append(Decision(name, reason="a variable in RepositoryUrl or BranchName "
                                                   "is known only when an execution starts"))
            continue
        try:
            head = gitlib.head_commit(url, branch)
        except gitlib.GitError as exc:
            decisions.append(Decision(name, reason=f"cannot read {url}: {exc.last_words}"))
            continue
        if head is None:
            decisions.append(Decision(name, reason=f"branch {branch} does not exist in {url}"))
            continue
        seen = change_seen(pipeline, name, head)
        if seen is not None:
            decisions.append(Decision(name, execution=seen, reason="no new commit"))
            continue
        filters = trigger_filters(document, name)
        if filters is not None:
            files = None
            last = (SourceRevision.objects.filter(execution__pipeline=pipeline, action_name=name)
                    .order_by("-id").values_list("revision_id", flat=True).first())
            if last and any("filePaths" in f for f in filters):
                try:
                    files = gitlib.changed_files(gitlib.mirror_fetch(url), last, head)
                except gitlib.GitError:
                    files = None
            ok, why = filters_pass(filters, branch=branch, tag=None, files=files,
                                   default_branch=branch)
            if not ok:
                decisions.append(Decision(name, reason=why))
                continue
        execution, started = change_start(
            pipeline=pipeline, action_name=name, commit=head, branch=branch,
            trigger_type=TriggerType.POLL_FOR_SOURCE_CHANGES,
            trigger_detail=f"Polling found {head[:12]} on {branch} of {url}")
        decisions.append(Decision(name, started, execution,
                                  f"new commit {head[:12]}" if started else "no new commit"))
    return decisions


def poll_sources(pipelines=None) -> dict[str, list[Decision]]:
    """Poll every pipeline with a Git source (or the given ones); decisions by pipeline."""
    results: dict[str, list[Decision]] = {}
    for pipeline in pipelines if pipelines is not None else Pipeline.objects.all():
        try:
            results[pipeline.name] = poll_pipeline(pipeline)
        except ExecutionError as exc:  # e.g. the pipeline cannot run here
            results[pipeline.name] = [Decision("", reason=exc.detail)]
        except Exception:  # one broken pipeline must not stop the others from polling
            logger.exception("polling pipeline %s failed", pipeline.name)
            results[pipeline.name] = [Decision("", reason="polling failed (see the log)")]
    return results


def poll_task() -> str:
    """The django-q2 scheduled task."""
    results = poll_sources()
    started = [f"{name} #{d.execution.number}" for name, ds in results.items() for d in ds
               if d.started and d.execution is not None]
    return f"polled {len(results)} pipeline(s); started {', '.join(started) or 'nothing'}"


def poll_seconds() -> float:
    return float(getattr(settings, "CONVEYOR_POLL_SECONDS", 60))


def poll_schedule_ensure(**kwargs) -> None:
    """Create or update the polling schedule from ``CONVEYOR_POLL_SECONDS`` (0: no polling).

    django-q2 schedules count in whole minutes, so the period is rounded up
    to one; ``manage.py poll_sources --loop`` polls at any period.
    Connected to ``post_migrate``, so ``migrate`` (and ``make run``) applies it.
    """
    from django_q.models import Schedule

    seconds = poll_seconds()
    if seconds <= 0:
        Schedule.objects.filter(name=POLL_SCHEDULE_NAME).delete()
        return
    Schedule.objects.update_or_create(
        name=POLL_SCHEDULE_NAME,
        defaults={"func": "triggers.changes.poll_task", "schedule_type": Schedule.MINUTES,
                  "minutes": max(1, math.ceil(seconds / 60)), "repeats": -1},
    )
