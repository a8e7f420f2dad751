"""Pipeline definitions.

The definition *document* (CodePipeline's pipeline structure) is the source of
truth. Each saved change becomes an immutable ``PipelineVersion`` holding the
whole document; ``Stage`` and ``Action`` rows are its projection for the admin
and for queries, rewritten by ``pipelines.services`` on every save. Transition
state is not part of the document: it lives on ``Stage`` and survives saves.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from pipelines import secrets
from pipelines.choices import (
    ActionCategory,
    BuildNetwork,
    ComputeType,
    ConnectionProvider,
    CredentialKind,
    ExecutionMode,
)

NAME_PATTERN = r"^[A-Za-z0-9.@_-]{1,100}$"
name_validator = RegexValidator(
    NAME_PATTERN, "Use 1 to 100 characters: letters, digits and . @ _ -"
)


class Pipeline(models.Model):
    """A named release process; ``version`` is the number of its current PipelineVersion."""

    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    execution_mode = models.CharField(
        max_length=16, choices=ExecutionMode.choices, default=ExecutionMode.SUPERSEDED
    )
    version = models.PositiveIntegerField(default=1)
    # The whole normalized definition document of the current version (a copy of
    # PipelineVersion.document, kept here so reading a pipeline is one row).
    document = models.JSONField(default=dict)
    webhook_secret = models.CharField(
        max_length=200,
        blank=True,
        help_text="HMAC-SHA256 secret that push webhooks must sign their body with.",
    )
    # AWS resource tags (TagResource, CreatePipeline's ``tags``): {key: value}.
    # Not part of the definition document, as on AWS (get-pipeline omits them).
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def variables(self) -> list[dict]:
        return self.document.get("variables", [])

    @property
    def triggers(self) -> list[dict]:
        return self.document.get("triggers", [])

    @property
    def current_version(self) -> "PipelineVersion":
        return self.versions.get(number=self.version)


class PipelineVersion(models.Model):
    """An immutable snapshot of a pipeline's whole definition document.

    Executions pin the version they started on, so editing a pipeline never
    changes an execution that is already running.
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    document = models.JSONField()
    # Wrapper fields of an imported get-pipeline answer (AWS's ``metadata``):
    # kept as received, never interpreted.
    imported_metadata = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["pipeline", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "number"], name="pipelines_pipelineversion_unique_number"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("A PipelineVersion is immutable once saved.")
        super().save(*args, **kwargs)


class Stage(models.Model):
    """A stage of the current definition, with the state of the transition into it."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(max_length=100, validators=[name_validator])
    position = models.PositiveSmallIntegerField()
    # Stage-level fields Conveyor keeps but does not interpret (blockers, onFailure, ...).
    extras = models.JSONField(default=dict, blank=True)

    transition_enabled = models.BooleanField(default=True)
    transition_disabled_reason = models.CharField(max_length=300, blank=True)
    transition_changed_by = models.CharField(max_length=150, blank=True)
    transition_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["pipeline", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "name"], name="pipelines_stage_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name}"


class Action(models.Model):
    """An action of a stage in the current definition."""

    stage = models.ForeignKey(Stage, on_delete=models.CASCADE, related_name="actions")
    name = models.CharField(max_length=100, validators=[name_validator])
    position = models.PositiveSmallIntegerField(default=0)
    category = models.CharField(max_length=16, choices=ActionCategory.choices)
    owner = models.CharField(max_length=16, default="Custom")
    provider = models.CharField(max_length=100)
    provider_version = models.CharField(max_length=9, default="1")
    run_order = models.PositiveSmallIntegerField(default=1)
    configuration = models.JSONField(default=dict, blank=True)
    input_artifacts = models.JSONField(default=list, blank=True)
    output_artifacts = models.JSONField(default=list, blank=True)
    namespace = models.CharField(max_length=100, blank=True)
    timeout_in_minutes = models.PositiveIntegerField(null=True, blank=True)
    commands = models.JSONField(default=list, blank=True)
    environment_variables = models.JSONField(default=list, blank=True)
    # Action-level fields Conveyor keeps but does not interpret (roleArn, region, ...).
    extras = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["stage", "position"]
        constraints = [
            models.UniqueConstraint(fields=["stage", "name"], name="pipelines_action_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.stage} / {self.name}"


class WebhookAuthentication(models.TextChoices):
    GITHUB_HMAC = "GITHUB_HMAC", "HMAC signature (X-Hub-Signature-256 or X-Hub-Signature)"
    IP = "IP", "Sender's address in AllowedIPRange"
    UNAUTHENTICATED = "UNAUTHENTICATED", "Anyone who knows the URL"


class Webhook(models.Model):
    """A CodePipeline webhook (PutWebhook): a URL of its own that starts one source action.

    A delivery to ``/api/webhooks/{url_token}/`` that passes ``authentication``
    and every ``filters`` rule (``{"jsonPath", "matchEquals"}``, all must match)
    starts the pipeline for ``target_action``. It is the AWS-shaped sibling of the
    pipeline's own push hook (``/api/hooks/{pipeline}/``), which uses the
    pipeline's webhook secret and its ``triggers``.
    """

    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="webhooks")
    target_action = models.CharField(max_length=100)
    filters = models.JSONField(default=list)
    authentication = models.CharField(max_length=16, choices=WebhookAuthentication.choices)
    secret_token = models.CharField(max_length=100, blank=True)
    allowed_ip_range = models.CharField(max_length=100, blank=True)
    # The unguessable part of the URL (AWS's webhook URLs carry one too).
    url_token = models.CharField(max_length=64, unique=True)
    tags = models.JSONField(default=dict, blank=True)
    last_triggered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PipelineSchedule(models.Model):
    """A cron-style trigger: at each tick of ``cron`` in ``timezone`` the pipeline starts.

    The execution runs the latest commit of each source (no revision is
    pinned). Ticks are started by ``triggers.schedules`` from django-q2's
    scheduler; each tick starts at most once (``ScheduleTick``).
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=100, validators=[name_validator])
    cron = models.CharField(max_length=100, help_text='Five fields: minute hour day-of-month '
                            'month day-of-week, e.g. "0 2 * * 1-5" (02:00 on weekdays).')
    timezone = models.CharField(max_length=64, default="UTC",
                                help_text="An IANA time zone, e.g. Europe/Paris.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pipeline", "name"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"],
                                    name="pipelines_pipelineschedule_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} / {self.name} ({self.cron} {self.timezone})"


class ScheduleTick(models.Model):
    """One tick of a schedule that was acted on; unique, so several clusters start it once."""

    schedule = models.ForeignKey(PipelineSchedule, on_delete=models.CASCADE,
                                 related_name="ticks")
    tick = models.DateTimeField()
    # The execution it started (a UUID, not a key: pipelines does not know executions).
    execution_id = models.UUIDField(null=True, blank=True)
    outcome = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-tick"]
        constraints = [
            # Two clusters' schedulers firing for the same minute: one insert wins.
            models.UniqueConstraint(fields=["schedule", "tick"],
                                    name="pipelines_scheduletick_unique_tick"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule} @ {self.tick.isoformat()}"


class ForgeProvider(models.TextChoices):
    GITHUB = "GitHub", "GitHub"
    GITLAB = "GitLab", "GitLab"
    GITEA = "Gitea", "Gitea"


class CommitStatusTarget(models.Model):
    """Where a pipeline reports its commits' statuses (pending/success/failure/error).

    ``repository`` is the forge's name for it (``owner/name``, or GitLab's
    project path), ``api_url`` the forge's REST API root (GitHub:
    https://api.github.com; GitLab: https://host/api/v4; Gitea:
    https://host/api/v1). The token is configuration, never part of the
    definition document (an export must not carry it); it is stored sealed
    (``pipelines.secrets``) and never shown back.
    """

    pipeline = models.OneToOneField(Pipeline, on_delete=models.CASCADE,
                                    related_name="commit_status_target")
    provider = models.CharField(max_length=16, choices=ForgeProvider.choices)
    api_url = models.URLField(max_length=500)
    repository = models.CharField(max_length=300)
    token = models.CharField(max_length=500)
    # Also one status per stage (context "conveyor/<pipeline>/<stage>").
    per_stage = models.BooleanField(default=True)
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.pipeline.name} → {self.provider} {self.repository}"

    def save(self, *args, **kwargs):
        # Sealed at rest whichever surface wrote it (admin, a script, a test).
        if self.token and not secrets.is_sealed(self.token):
            self.token = secrets.seal(self.token)
        super().save(*args, **kwargs)

    @property
    def token_value(self) -> str:
        """The token itself, for the request to the forge (only ``triggers.statuses``)."""
        return secrets.unseal(self.token)


class BuildProject(models.Model):
    """A CodeBuild build project kept in Conveyor: what a ``CodeBuild`` action's
    ``ProjectName`` names.

    ``buildspec`` is a path in the primary source (default ``buildspec.yml``) or an
    inline buildspec (a text holding a new line), as CodeBuild's project source
    buildspec is. ``environment_variables`` are ``{name, value, type}`` entries
    (PLAINTEXT, PARAMETER_STORE, SECRETS_MANAGER — the last two name Conveyor's
    secrets). ``cache_paths`` are added to the buildspec's ``cache.paths``; the
    cache itself lives under ``var/build-cache/<name>/``. ``build_count`` numbers
    builds (``CODEBUILD_BUILD_NUMBER``). ``network`` is Conveyor's own setting (CodeBuild
    has none: its builds reach the internet or a VPC): ``none`` gives the project's builds
    no network at all, whatever the action says (docs/runners.md).
    """

    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    description = models.CharField(max_length=255, blank=True)
    buildspec = models.TextField(
        blank=True, help_text="A path in the primary source (default buildspec.yml) or an "
        "inline buildspec.")
    environment_variables = models.JSONField(default=list, blank=True)
    timeout_in_minutes = models.PositiveIntegerField(default=60)
    compute_type = models.CharField(max_length=32, choices=ComputeType.choices,
                                    default=ComputeType.SMALL)
    cache_paths = models.JSONField(default=list, blank=True)
    network = models.CharField(max_length=8, choices=BuildNetwork.choices,
                               default=BuildNetwork.HOST)
    build_count = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(timeout_in_minutes__gte=5, timeout_in_minutes__lte=2160),
                name="pipelines_buildproject_timeout_range"),
        ]

    def __str__(self) -> str:
        return self.name


class Connection(models.Model):
    """A way to reach a forge's repositories, standing in for CodePipeline's connections.

    A ``CodeStarSourceConnection`` action names its connection by ARN
    (``ConnectionArn``), a ``CodeCommit`` action by ``codecommit:<RepositoryName>``;
    the connection that answers to it (see ``ConnectionArn``) clones
    ``<base_url>/<repository>``. The credential (a token sent over HTTP, or an SSH
    private key) is stored encrypted (``pipelines.secrets``) and never shown back.
    """

    name = models.CharField(max_length=100, unique=True, validators=[name_validator])
    provider = models.CharField(max_length=16, choices=ConnectionProvider.choices,
                                default=ConnectionProvider.GIT)
    base_url = models.CharField(
        max_length=500,
        help_text="Repositories are cloned from <base URL>/<FullRepositoryId or "
                  "RepositoryName>, e.g. https://github.com or /srv/git.")
    credential_kind = models.CharField(max_length=8, choices=CredentialKind.choices,
                                       blank=True, default=CredentialKind.NONE)
    # The user name a token is sent with (HTTP basic auth); "" takes the provider's
    # usual one (pipelines.secrets.TOKEN_USERS).
    username = models.CharField(max_length=100, blank=True)
    # A Fernet token of the credential (pipelines.secrets); "" when there is none.
    credential_encrypted = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credential(self) -> bool:
        return bool(self.credential_encrypted)


class ConnectionArn(models.Model):
    """An ARN (or ``codecommit:<repository>`` name) a connection answers to.

    ``*`` matches any run of characters (``arn:aws:codestar-connections:*:111122223333:
    connection/*``); an exact entry wins over a pattern, a longer pattern over a
    shorter one. An exact entry belongs to one connection only (the unique
    constraint).
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="arns")
    arn = models.CharField(max_length=300)

    class Meta:
        ordering = ["connection", "arn"]
        constraints = [
            models.UniqueConstraint(fields=["arn"], name="pipelines_connectionarn_unique_arn"),
        ]

    def __str__(self) -> str:
        return self.arn
