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
    # CodePipeline V2's built-in Commands action (provider Commands, owner AWS).
    COMPUTE = "Compute", "Compute"


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


class ComputeType(models.TextChoices):
    """CodeBuild's compute sizes; ``runners.sandbox.COMPUTE_TYPES`` maps each to limits."""

    SMALL = "BUILD_GENERAL1_SMALL", "Small (3 GB, 2 vCPUs)"
    MEDIUM = "BUILD_GENERAL1_MEDIUM", "Medium (7 GB, 4 vCPUs)"
    LARGE = "BUILD_GENERAL1_LARGE", "Large (15 GB, 8 vCPUs)"
    XLARGE = "BUILD_GENERAL1_XLARGE", "X-Large (70 GB, 36 vCPUs)"
    XXLARGE = "BUILD_GENERAL1_2XLARGE", "2X-Large (145 GB, 72 vCPUs)"


class BuildNetwork(models.TextChoices):
    """What a build project's builds reach (``runners.sandbox.NETWORKS``; docs/runners.md)."""

    HOST = "host", "the network of the machine"
    NONE = "none", "no network at all"


class EnvironmentVariableType(models.TextChoices):
    PLAINTEXT = "PLAINTEXT", "Plain text"
    PARAMETER_STORE = "PARAMETER_STORE", "Parameter Store (from Conveyor's secrets)"
    SECRETS_MANAGER = "SECRETS_MANAGER", "Secrets Manager (from Conveyor's secrets)"
