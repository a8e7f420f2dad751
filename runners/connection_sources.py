"""CodePipeline's connection sources (CodeStarSourceConnection, CodeCommit), run by the
Git runner's machinery through the Conveyor connection that answers to the action."""

import re

from runners import register
from runners.checks import configuration_of
from runners.git import GitFetchingRunner, _check_common, _check_flag, commit_url

CODESTAR_KEYS = ("ConnectionArn", "FullRepositoryId", "BranchName", "OutputArtifactFormat",
                 "DetectChanges")
CODECOMMIT_KEYS = ("RepositoryName", "BranchName", "PollForSourceChanges",
                   "OutputArtifactFormat")
FORMATS = ("CODE_ZIP", "CODEBUILD_CLONE_REF")
FULL_REPOSITORY_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")
CODECOMMIT_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def _check_format(config: dict, problems: list[tuple[str, str]]) -> None:
    value = config.get("OutputArtifactFormat", "CODE_ZIP")
    if value not in FORMATS:
        problems.append(("configuration.OutputArtifactFormat",
                         f'"{value}" is not an output artifact format: use CODE_ZIP or '
                         "CODEBUILD_CLONE_REF"))


def _repository_problem(name: str, pattern: re.Pattern, example: str) -> str | None:
    if "#{" in name:
        return None
    if not pattern.match(name) or any(part in ("", ".", "..") for part in name.split("/")):
        return f'"{name}" is not a repository name such as {example}'
    return None


@register
class CodeStarSourceConnectionRunner(GitFetchingRunner):
    provider = "CodeStarSourceConnection"
    description = ("CodePipeline's connection source (GitHub, GitLab, Bitbucket, ...): the "
                   "repository is cloned through the Conveyor connection answering to "
                   "ConnectionArn.")

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        config = configuration_of(action_doc)
        problems: list[tuple[str, str]] = []
        arn = config.get("ConnectionArn")
        if not arn:
            problems.append(("configuration.ConnectionArn", "is required"))
        repository = config.get("FullRepositoryId")
        if not repository:
            problems.append(("configuration.FullRepositoryId", "is required"))
        elif problem := _repository_problem(repository, FULL_REPOSITORY_RE, "owner/repo"):
            problems.append(("configuration.FullRepositoryId", problem))
        _check_common(action_doc, config, CODESTAR_KEYS, "CodeStarSourceConnection",
                      problems)
        _check_format(config, problems)
        _check_flag(config, "DetectChanges", problems)
        return problems

    def variables(self, ctx, location, info, branch):
        # CodePipeline's own set for this provider, no more (a definition that
        # reads another name would fail on AWS too).
        return {
            "AuthorDate": info.author_date,
            "BranchName": branch,
            "CommitId": info.sha,
            "CommitMessage": info.message,
            "ConnectionArn": ctx.configuration.get("ConnectionArn", ""),
            "FullRepositoryName": ctx.configuration.get("FullRepositoryId", ""),
        }

    def revision_url(self, location, sha):
        return commit_url(location.url, sha)


@register
class CodeCommitRunner(GitFetchingRunner):
    provider = "CodeCommit"
    description = ("A CodeCommit repository, cloned from where it lives now: the connection "
                   "answering to codecommit:<RepositoryName> gives the base URL.")

    def check(self, action_doc: dict) -> list[tuple[str, str]]:
        config = configuration_of(action_doc)
        problems: list[tuple[str, str]] = []
        name = config.get("RepositoryName")
        if not name:
            problems.append(("configuration.RepositoryName", "is required"))
        elif problem := _repository_problem(name, CODECOMMIT_NAME_RE, "MyDemoRepo"):
            problems.append(("configuration.RepositoryName", problem))
        _check_common(action_doc, config, CODECOMMIT_KEYS, "CodeCommit", problems)
        _check_format(config, problems)
        _check_flag(config, "PollForSourceChanges", problems)
        return problems

    def variables(self, ctx, location, info, branch):
        return {
            "AuthorDate": info.author_date,
            "BranchName": branch,
            "CommitId": info.sha,
            "CommitMessage": info.message,
            "CommitterDate": info.committer_date,
            "RepositoryName": ctx.configuration.get("RepositoryName", ""),
        }
