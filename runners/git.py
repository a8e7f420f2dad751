"""Source ``Git``: resolve a commit of a git repository and hand its tree on.

Configuration (strings, as CodePipeline's):

- ``RepositoryUrl`` — an absolute local path or a URL (``https://``,
  ``http://``, ``ssh://``, ``git://``, ``file://``, or scp-like
  ``git@host:owner/repo.git``);
- ``BranchName`` — the branch whose head is built;
- ``DetectChanges`` — ``"true"`` (default): pushes (webhook, post-receive hook)
  and polling start executions for this action; ``"false"``: only a person or
  a client starts them (see ``triggers.changes``).

A run fetches the repository into a bare mirror kept under the git cache
(``CONVEYOR_GIT_CACHE_ROOT``, default ``var/git-cache``; one fetch at a time
per repository, under a file lock), resolves the head of ``BranchName`` — or
the revision given at start (``sourceRevisions``: a commit id, or a branch or
tag name) — and writes ``git archive`` of that commit into the output
artifact: the tree at that commit without ``.git``. Symbolic links are not
kept (artifacts hold regular files only) and are named in the log.

Output variables: ``CommitId``, ``BranchName``, ``CommitMessage``,
``AuthorDisplayName``, ``AuthorEmail``, ``CommitTime`` (the author date, ISO
8601), ``CommitterDate`` and ``RepositoryName``. The source revision records
the commit id, its subject and, for GitHub, GitLab and Gitea-style web hosts,
the commit's page.

Only the transports ``file``, ``git``, ``http(s)`` and ``ssh`` are allowed
(``GIT_ALLOW_PROTOCOL``): ``ext::`` URLs, which run commands, are refused.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings

from pipelines import selectors
from pipelines import services as definitions
from pipelines.secrets import CredentialUnreadable
from runners import register
from runners.base import (
    ActionFailed,
    Readiness,
    Result,
    Revision,
    RunContext,
    Runner,
    file_lock,
    kill_process_group,
)
from runners.checks import configuration_of, list_of

CONFIG_KEYS = ("RepositoryUrl", "BranchName", "DetectChanges")
URL_RE = re.compile(r"^(https?|ssh|git|file)://[^\s]+$")
SCP_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")
SHA_RE = re.compile(r"^[0-9a-fA-F]{4,40}$")
ZERO_SHA = "0" * 40


# --- names and URLs --------------------------------------------------------------


def ref_name_problem(name: str) -> str | None:
    """Why ``name`` is not a usable branch or tag name (git check-ref-format rules)."""
    if not name:
        return "is required"
    if name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")):
        return f'"{name}" is not a branch name'
    if ".." in name or "@{" in name or "//" in name or name == "@":
        return f'"{name}" is not a branch name'
    if re.search(r"[\x00-\x20\x7f~^:?*\[\\]", name):
        return f'"{name}" is not a branch name'
    if any(part.startswith(".") for part in name.split("/")):
        return f'"{name}" is not a branch name'
    return None


def repository_url_problem(url: str) -> str | None:
    """Why ``url`` is not a repository location Conveyor will fetch from."""
    if not url:
        return "is required"
    if url.startswith("-"):
        return f'"{url}" is not a repository URL or path'
    if "::" in url.split("/", 1)[0]:
        return f'"{url}": transport helpers ("ext::", ...) are not allowed'
    if URL_RE.match(url) or SCP_RE.match(url):
        return None
    if url.startswith("/"):
        return None
    return (f'"{url}" is not a repository URL or an absolute path: use https://…, ssh://…, '
            "git@host:owner/repo.git or /path/to/repo")


def repository_key(url: str) -> str:
    """A comparable form of a repository location: host/path without ``.git``.

    ``https://github.com/o/r.git``, ``git@github.com:o/r`` and
    ``ssh://git@github.com/o/r`` all give ``github.com/o/r``; a local path
    gives its real path (``file://`` URLs included).
    """
    url = (url or "").strip()
    if url.startswith("file://"):
        url = url[len("file://"):]
    if url.startswith("/"):
        path = os.path.realpath(url).rstrip("/")
        if path.endswith("/.git"):  # a working repository's git folder names the repository
            return path[:-5]
        return path[:-4] if path.endswith(".git") else path
    match = re.match(r"^[a-z+]+://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.*)$", url)
    if match:
        host, path = match.groups()
    else:
        match = re.match(r"^(?:[^@]+@)?([^:]+):(.*)$", url)
        if not match:
            return url.lower()
        host, path = match.groups()
    path = path.strip("/")
    if path.endswith(".git"):
        path = path[:-4]
    return f"{host.lower()}/{path}"


def commit_url(url: str, sha: str) -> str:
    """The web page of a commit on GitHub, GitLab or a Gitea-style host; "" if unknown."""
    if not (url.startswith(("https://", "http://", "ssh://")) or SCP_RE.match(url)):
        return ""
    key = repository_key(url)
    host, _, path = key.partition("/")
    if not path:
        return ""
    if host == "github.com" or "gitea" in host or "codeberg" in host:
        return f"https://{host}/{path}/commit/{sha}"
    if host == "gitlab.com" or "gitlab" in host:
        return f"https://{host}/{path}/-/commit/{sha}"
    if host == "bitbucket.org":
        return f"https://{host}/{path}/commits/{sha}"
    return ""


def repository_name(url: str) -> str:
    return repository_key(url).rstrip("/").rsplit("/", 1)[-1]


# --- running git -----------------------------------------------------------------


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GIT_TERMINAL_PROMPT": "0",
        # ext:: and fd:: run commands: only plain transports are allowed.
        "GIT_ALLOW_PROTOCOL": "file:git:http:https:ssh",
        "GIT_SSH_COMMAND": env.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        "LC_ALL": "C",
    })
    env.update(extra or {})
    return env


class GitError(Exception):
    """git exited non-zero; ``stderr`` holds its last words."""

    def __init__(self, args: list[str], code: int, stderr: str):
        self.code, self.stderr = code, stderr
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        # git's first "fatal:"/"error:" line says why; the rest is boilerplate.
        said = [line for line in lines if line.startswith(("fatal:", "error:"))]
        self.last_words = (said or lines[-1:] or [f"exit status {code}"])[0]
        super().__init__(f"git {args[0]} failed: {self.last_words}")


def git(args: list[str], *, cwd: Path | None = None, ctx: RunContext | None = None,
        stdout=None, timeout: float = 600, env: dict[str, str] | None = None) -> str:
    """Run ``git args`` in its own process group and return its stdout.

    With a ``ctx`` the process group is recorded (abandon and timeouts kill
    it) and a stop request ends it at once. ``stdout`` may be an open file to
    write to instead of capturing. ``env`` adds to git's environment (a
    connection's credential, see ``credential_env``).
    """
    capture = stdout is None
    proc = subprocess.Popen(
        ["git", *args], cwd=cwd, env=git_env(env), start_new_session=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if capture else stdout,
        stderr=subprocess.PIPE,
    )
    if ctx is not None:
        ctx.set_process_group(proc.pid)
    deadline = time.monotonic() + timeout
    out = err = b""
    try:
        while True:
            try:
                out, err = proc.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                stop = ctx is not None and ctx.should_stop()
                if stop or time.monotonic() > deadline:
                    kill_process_group(proc.pid, signal.SIGKILL)
                    proc.communicate()
                    if stop:
                        raise ActionFailed(f"Stopped: {ctx.stop_reason}") from None
                    raise GitError(args, -1,
                                   f"git {args[0]} took more than {timeout:g} s") from None
    finally:
        if ctx is not None:
            ctx.clear_process_group(proc.pid)
    if proc.returncode != 0:
        if ctx is not None and ctx.should_stop():  # killed by cancel() before we noticed
            raise ActionFailed(f"Stopped: {ctx.stop_reason}")
        raise GitError(args, proc.returncode, err.decode("utf-8", "replace"))
    return (out or b"").decode("utf-8", "replace") if capture else ""


def git_cache_root() -> Path:
    configured = getattr(settings, "CONVEYOR_GIT_CACHE_ROOT", None)
    return Path(configured) if configured else Path(settings.WORKSPACE_ROOT).parent / "git-cache"


def mirror_fetch(url: str, *, ctx: RunContext | None = None, timeout: float = 600,
                 env: dict[str, str] | None = None) -> Path:
    """Bring the bare mirror of ``url`` up to date (every branch and tag); return its path."""
    key = repository_key(url)
    name = hashlib.sha256(key.encode()).hexdigest()[:16]
    slug = re.sub(r"[^A-Za-z0-9_.-]", "-", repository_name(url))[:40] or "repo"
    mirror = git_cache_root() / f"{slug}-{name}.git"
    with file_lock(mirror.with_suffix(".lock"), ctx):
        if not (mirror / "HEAD").exists():
            mirror.mkdir(parents=True, exist_ok=True)
            git(["init", "--bare", "-q", str(mirror)], ctx=ctx, timeout=60)
        git(["fetch", "--prune", "--force", "--quiet", "--", url,
             "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
            cwd=mirror, ctx=ctx, timeout=timeout, env=env)
    return mirror


def resolve(mirror: Path, revision: str, *, ctx: RunContext | None = None) -> str | None:
    """The commit id ``revision`` (a commit id, a branch or a tag) names; None if none."""
    if not revision or revision.startswith("-"):
        return None
    candidates = [revision] if SHA_RE.match(revision) else []
    candidates += [f"refs/heads/{revision}", f"refs/tags/{revision}", revision]
    for candidate in candidates:
        try:
            return git(["rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
                       cwd=mirror, ctx=ctx, timeout=60).strip()
        except GitError:
            continue
    return None


def head_commit(url: str, branch: str, *, timeout: float = 120,
                env: dict[str, str] | None = None) -> str | None:
    """The head commit of ``branch`` in ``url`` without fetching (``git ls-remote``)."""
    out = git(["ls-remote", "--heads", "--", url, f"refs/heads/{branch}"], timeout=timeout,
              env=env)
    for line in out.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def changed_files(mirror: Path, old: str | None, new: str) -> list[str] | None:
    """Paths changed between two commits (None when ``old`` is unknown to the mirror)."""
    if not old or old == ZERO_SHA:
        return None
    try:
        out = git(["diff", "--name-only", "--no-renames", old, new, "--"], cwd=mirror,
                  timeout=120)
    except GitError:
        return None
    return [line for line in out.splitlines() if line]


@dataclass
class CommitInfo:
    sha: str
    author_name: str
    author_email: str
    author_date: str
    committer_date: str
    message: str

    @property
    def subject(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""


def commit_info(mirror: Path, sha: str, *, ctx: RunContext | None = None) -> CommitInfo:
    out = git(["log", "-1", "--format=%H%x00%an%x00%ae%x00%aI%x00%cI%x00%B", sha, "--"],
              cwd=mirror, ctx=ctx, timeout=60)
    parts = out.split("\x00", 5)
    return CommitInfo(parts[0].strip(), parts[1], parts[2], parts[3], parts[4],
                      parts[5].strip() if len(parts) > 5 else "")


def archive_into(mirror: Path, sha: str, destination: Path, *, ctx: RunContext | None = None,
                 log=None) -> int:
    """Write the tree of commit ``sha`` into ``destination``; return the file count.

    Every member passes tarfile's "data" filter (no absolute paths, no ``..``,
    no device files); links are skipped: artifacts hold regular files only.
    """
    destination.mkdir(parents=True, exist_ok=True)
    tar_path = destination.parent / f".{destination.name}.tar"
    try:
        with open(tar_path, "wb") as out:
            git(["archive", "--format=tar", sha], cwd=mirror, ctx=ctx, stdout=out)
        count = 0
        skipped = []

        def keep(member: tarfile.TarInfo, path: str):
            nonlocal count
            if member.issym() or member.islnk():
                skipped.append(f"{member.name} -> {member.linkname}")
                return None
            try:
                member = tarfile.data_filter(member, path)
            except tarfile.FilterError as exc:
                skipped.append(f"{member.name} ({exc})")
                return None
            if member is not None and member.isfile():
                count += 1
            return member

        with tarfile.open(tar_path) as archive:
            archive.extractall(destination, filter=keep)
        if log is not None:
            for item in skipped:
                log.line(f"Not kept in the artifact (links are not stored): {item}")
        return count
    finally:
        tar_path.unlink(missing_ok=True)


# --- where a source action fetches from, with which credential -------------------


class SourceUnreachable(Exception):
    """A source action has nothing to fetch from yet (no connection answers to it).

    ``reason`` says why in a sentence, ``need`` what is missing, ``how`` how to
    make it (a page, a command).
    """

    def __init__(self, reason: str, need: str, how: str = ""):
        self.reason, self.need, self.how = reason, need, how
        super().__init__(reason)


@dataclass
class SourceLocation:
    """Where a source action's repository is and how its changes are noticed.

    ``url`` never holds a credential (it is logged and shown); ``credential`` is
    handed to git through its environment only (``credential_env``).
    """

    url: str
    branch: str
    repository_name: str
    credential: object | None = None   # pipelines.secrets.Credential
    connection_name: str = ""
    clone_ref: bool = False
    on_push: bool = True     # a push webhook starts an execution
    polled: bool = True      # polling starts an execution


def _connection_how(key: str) -> str:
    return ("make one in the admin (/admin/pipelines/connection/add/), with "
            "POST /api/connections/ or with manage.py import_connections, and list "
            f"{key} among its ARNs")


def connection_location(key: str, repository: str, branch: str) -> SourceLocation:
    """The location of ``repository`` through the connection answering to ``key``."""
    from pipelines import selectors

    connection = selectors.connection_for(key)
    if connection is None:
        raise SourceUnreachable(f'no connection answers to "{key}"',
                                f'a connection answering to "{key}"', _connection_how(key))
    try:
        credential = definitions.connection_credential(connection=connection)
    except CredentialUnreadable as exc:
        raise SourceUnreachable(f'connection "{connection.name}": {exc}',
                                f'a readable credential for connection "{connection.name}"',
                                f"set it again at /admin/pipelines/connection/{connection.pk}"
                                "/change/") from exc
    base = connection.base_url.rstrip("/")
    separator = "" if base.endswith(":") else "/"  # git@host: (scp-like) takes no slash
    return SourceLocation(url=f"{base}{separator}{repository}", branch=branch,
                          repository_name=repository, credential=credential,
                          connection_name=connection.name)


def credential_env(location: SourceLocation, scratch: Path | None = None) -> dict[str, str]:
    """Environment that lets git (and git only) use the location's credential.

    A token travels as an ``http.<origin>.extraHeader`` set through
    ``GIT_CONFIG_*`` variables: scoped to the connection's host, never written
    to a git config, an argument list or a log. An SSH key is written to a 0600
    file in ``scratch`` (the caller removes it) and named in ``GIT_SSH_COMMAND``.
    """
    credential = location.credential
    if credential is None:
        return {}
    if credential.kind == "token":
        match = re.match(r"^(https?://[^/]+)", location.url)
        if not match:
            raise ActionFailed(f'Connection "{location.connection_name}" has a token, which is '
                               f"sent over HTTP(S) only, but clones from {location.url}")
        basic = base64.b64encode(f"{credential.username}:{credential.secret}".encode()).decode()
        # After any GIT_CONFIG_* entries the worker's own environment already sets.
        index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or 0)
        return {"GIT_CONFIG_COUNT": str(index + 1),
                f"GIT_CONFIG_KEY_{index}": f"http.{match.group(1)}/.extraHeader",
                f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {basic}"}
    if scratch is None:
        raise ActionFailed("An SSH key needs a scratch directory")
    key_file = scratch / "id"
    key_file.touch(mode=0o600)
    key_file.write_text(credential.secret)
    return {"GIT_SSH_COMMAND": (
        f"ssh -i {shlex.quote(str(key_file))} -o IdentitiesOnly=yes -o BatchMode=yes "
        "-o StrictHostKeyChecking=accept-new")}


def _mask(text: str, location: SourceLocation) -> str:
    secret = getattr(location.credential, "secret", "")
    for part in {line.strip() for line in secret.splitlines()} if secret else ():
        if len(part) >= 4:
            text = text.replace(part, "***")
    return text


def _flag(config: dict, key: str) -> bool:
    return config.get(key, "true") == "true"


def source_location(action_doc: dict) -> SourceLocation:
    """Where a Git, CodeStarSourceConnection or CodeCommit action fetches from.

    Raises ``SourceUnreachable`` when its connection does not exist yet.
    Change detection: Git and CodeStarSourceConnection follow ``DetectChanges``
    (webhook and polling); CodeCommit always follows push webhooks (they stand
    in for the EventBridge rule AWS pairs with it) and is polled when
    ``PollForSourceChanges`` is "true" (CodePipeline's default).
    """
    provider = (action_doc.get("actionTypeId") or {}).get("provider")
    config = configuration_of(action_doc)
    branch = config.get("BranchName", "")
    clone_ref = config.get("OutputArtifactFormat") == "CODEBUILD_CLONE_REF"
    if provider == "CodeStarSourceConnection":
        location = connection_location(config.get("ConnectionArn", ""),
                                       config.get("FullRepositoryId", ""), branch)
        location.on_push = location.polled = _flag(config, "DetectChanges")
    elif provider == "CodeCommit":
        name = config.get("RepositoryName", "")
        location = connection_location(selectors.codecommit_key(name), name, branch)
        location.polled = _flag(config, "PollForSourceChanges")
    else:
        url = config.get("RepositoryUrl", "")
        location = SourceLocation(url=url, branch=branch, repository_name=repository_name(url))
        location.on_push = location.polled = _flag(config, "DetectChanges")
    location.clone_ref = clone_ref
    return location


def clone_into(mirror: Path, sha: str, branch: str, url: str, destination: Path, *,
               ctx: RunContext | None = None) -> int:
    """A clone with its history, ``branch`` checked out at ``sha`` (CODEBUILD_CLONE_REF).

    Its ``origin`` is the repository's URL (never a credential); every branch of
    the mirror is there as ``origin/<branch>``. Returns the number of commits.
    """
    destination.mkdir(parents=True, exist_ok=True)
    git(["clone", "--quiet", "--no-local", "--no-checkout", "--template=", "--",
         str(mirror), str(destination)], ctx=ctx)
    git(["checkout", "--quiet", "-B", branch or "HEAD", sha], cwd=destination, ctx=ctx)
    git(["remote", "set-url", "origin", url], cwd=destination, ctx=ctx)
    return int(git(["rev-list", "--count", sha], cwd=destination, ctx=ctx).strip() or 0)


# --- the runners -----------------------------------------------------------------


def _check_flag(config: dict, key: str, problems: list[tuple[str, str]]) -> None:
    value = config.get(key, "true")
    if value not in ("true", "false"):
        problems.append((f"configuration.{key}", f'must be "true" or "false", not "{value}"'))


def _check_common(action_doc: dict, config: dict, keys: tuple[str, ...], provider: str,
                  problems: list[tuple[str, str]]) -> None:
    branch = config.get("BranchName")
    if not isinstance(branch, str) or not branch:
        problems.append(("configuration.BranchName", "is required"))
    elif "#{" not in branch and (problem := ref_name_problem(branch)):
        problems.append(("configuration.BranchName", problem))
    for key in config:
        if key not in keys:
            problems.append((f"configuration.{key}",
                             f'"{key}" is not a setting of the {provider} provider: use '
                             + ", ".join(keys)))
    if len(list_of(action_doc.get("outputArtifacts"))) != 1:
        problems.append(("outputArtifacts",
                         f"a {provider} source action produces exactly one output artifact"))
    if action_doc.get("inputArtifacts"):
        problems.append(("inputArtifacts", "a source action takes no input artifacts"))


class GitFetchingRunner(Runner):
    """Fetch a repository, resolve a commit, hand its tree (or a clone) on.

    Subclasses say where from (``source_location``) and which output variables
    CodePipeline gives for the provider (``variables``).
    """

    categories = ("Source",)
    default_timeout_minutes = 30

    def variables(self, ctx: RunContext, location: SourceLocation, info: CommitInfo,
                  branch: str) -> dict[str, str]:
        raise NotImplementedError

    def revision_url(self, location: SourceLocation, sha: str) -> str:
        return commit_url(location.url, sha)

    def readiness(self, action_doc: dict) -> list[Readiness]:
        try:
            location = source_location(action_doc)
        except SourceUnreachable as exc:
            return [Readiness(need=exc.need, how=exc.how)]
        if location.connection_name:
            return [Readiness(note=f'through connection "{location.connection_name}": '
                                   f"{location.url}")]
        return []

    def run(self, ctx: RunContext) -> Result:
        try:
            location = source_location(ctx.action)
        except SourceUnreachable as exc:
            raise ActionFailed(f"Cannot fetch: {exc.reason}: {exc.how}") from exc
        url, branch = location.url, location.branch
        if problem := repository_url_problem(url):
            raise ActionFailed(f"The repository URL {problem}")
        if problem := ref_name_problem(branch):
            raise ActionFailed(f"BranchName {problem}")
        override = ctx.source_override or {}
        revision = override.get("revisionValue") or ""
        if revision and override.get("revisionType", "COMMIT_ID") not in ("COMMIT_ID", ""):
            raise ActionFailed(f'A {ctx.provider} source takes a revision of type COMMIT_ID, '
                               f'not "{override.get("revisionType")}"')
        # The worker enforces the action's deadline (it stops us, and the action
        # ends "timed out"); git's own timeout is only a backstop behind it.
        timeout = max(1.0, ctx.remaining_seconds() or 600.0) + 30
        via = f' through connection "{location.connection_name}"' if location.connection_name \
            else ""
        ctx.log.line(f"Fetching {url}{via}")
        scratch = Path(tempfile.mkdtemp(prefix="conveyor-git-"))
        try:
            env = credential_env(location, scratch)
            try:
                mirror = mirror_fetch(url, ctx=ctx, timeout=timeout, env=env)
            except GitError as exc:
                raise ActionFailed(_mask(f"Cannot fetch {url}: {exc.last_words}",
                                         location)) from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        wanted = revision or branch
        sha = resolve(mirror, revision, ctx=ctx) if revision else resolve(
            mirror, f"refs/heads/{branch}", ctx=ctx)
        if sha is None:
            if revision:
                raise ActionFailed(f'Revision "{revision}" does not exist in {url}')
            raise ActionFailed(f'Branch "{branch}" does not exist in {url}')
        info = commit_info(mirror, sha, ctx=ctx)
        ctx.log.line(f"Resolved {wanted} to {sha}: {info.subject}")
        if not ctx.output_dirs:
            raise ActionFailed(f"A {ctx.provider} source action needs an output artifact")
        name, directory = next(iter(ctx.output_dirs.items()))
        branch_name = override.get("branchName") or branch
        if location.clone_ref:
            commits = clone_into(mirror, sha, branch_name, url, directory, ctx=ctx)
            ctx.log.line(f"Wrote a clone of {url} ({commits} commit(s) of history, "
                         f"{branch_name} at {sha[:12]}) into {name} (CODEBUILD_CLONE_REF)")
        else:
            count = archive_into(mirror, sha, directory, ctx=ctx, log=ctx.log)
            ctx.log.line(f"Wrote {count} file(s) of {sha[:12]} into {name}")
        page = self.revision_url(location, sha)
        variables = self.variables(ctx, location, info, branch_name)
        # An execution started by a pull request (triggers.pull_requests) adds its fields.
        pull_request = override.get("pullRequest")
        if isinstance(pull_request, dict):
            variables.update({k: str(v) for k, v in pull_request.items()})
        return Result(
            summary=f"{sha[:12]} on {branch_name}: {info.subject}"[:2000],
            output_variables=variables,
            external_url=page,
            external_id=sha,
            revision=Revision(revision_id=sha, summary=info.subject, url=page,
                              artifact_name=name, committed_at=_when(info.committer_date)),
        )


@register
class GitSourceRunner(GitFetchingRunner):
    provider = "Git"
    description = ("A git repository (URL or local path) and a branch: the tree of the "
                   "resolved commit becomes the source artifact.")

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        config = configuration_of(action_doc)
        problems: list[tuple[str, str]] = []
        url = config.get("RepositoryUrl")
        if not isinstance(url, str) or not url:
            problems.append(("configuration.RepositoryUrl", "is required"))
        elif "#{" not in url and (problem := repository_url_problem(url)):
            problems.append(("configuration.RepositoryUrl", problem))
        _check_flag(config, "DetectChanges", problems)
        _check_common(action_doc, config, CONFIG_KEYS, "Git", problems)
        return sorted(problems, key=lambda p: _ORDER.get(p[0], 9))

    def variables(self, ctx, location, info, branch):
        return {
            "CommitId": info.sha,
            "BranchName": branch,
            "CommitMessage": info.message,
            "AuthorDisplayName": info.author_name,
            "AuthorEmail": info.author_email,
            "CommitTime": info.author_date,
            "CommitterDate": info.committer_date,
            "RepositoryName": location.repository_name,
        }


_ORDER = {"configuration.RepositoryUrl": 0, "configuration.BranchName": 1,
          "configuration.DetectChanges": 2}


def _when(iso: str) -> datetime | None:
    """A git ISO 8601 date (``%cI``) as an aware datetime; None if unreadable."""
    try:
        return datetime.fromisoformat(iso.strip())
    except ValueError:
        return None
