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
