"""The definition vocabulary, in CodePipeline's own strings."""

from django.db import models


class ExecutionMode(models.TextChoices):
    SUPERSEDED = "SUPERSEDED", "Superseded"
    QUEUED = "QUEUED", "Queued"
    PARALLEL = "PARALLEL", "Parallel"


class ActionCategory(models.TextChoices):
    SOURCE = "Source", "Source"
    BUILD = "Build", "Build"
    TEST = "Test", "Test"
    DEPLOY = "Deploy", "Deploy"
    APPROVAL = "Approval", "Approval"
    INVOKE = "Invoke", "Invoke"


class ActionOwner(models.TextChoices):
    AWS = "AWS", "AWS"
    THIRD_PARTY = "ThirdParty", "ThirdParty"
    CUSTOM = "Custom", "Custom"


class ConnectionProvider(models.TextChoices):
    """Where the repositories a connection reaches live (CodeConnections' ProviderType)."""

    GITHUB = "GitHub", "GitHub"
    GITLAB = "GitLab", "GitLab"
    BITBUCKET = "Bitbucket", "Bitbucket"
    GITEA = "Gitea", "Gitea"
    GIT = "Git", "plain git"


class CredentialKind(models.TextChoices):
    NONE = "", "none"
    TOKEN = "token", "token (HTTP)"
    SSH_KEY = "ssh_key", "SSH private key"
