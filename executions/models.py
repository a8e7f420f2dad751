"""Executions: what happened when a pipeline ran.

A ``PipelineExecution`` traverses the stages of the ``PipelineVersion`` it
pinned at start. Each entry into a stage is a ``StageExecution`` and each try of
an action an ``ActionExecution`` (one row per attempt, earlier attempts kept).
``Artifact`` rows name the immutable, content-addressed file sets actions
produce; ``SourceRevision`` the revision each source action resolved;
``ExecutionEvent`` is the append-only record of every status change.

Only ``executions.engine`` writes the ``status`` fields, through one
compare-and-set helper that also appends the event (docs/semantics.md §11).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from executions.choices import (
    ActionExecutionStatus,
    EventKind,
    ExecutionType,
    PipelineExecutionStatus,
    RetryMode,
    RetryTrigger,
    StageExecutionStatus,
    TriggerType,
    WaitingReason,
)
from executions.dora_columns import first_commit_time
from pipelines.models import Pipeline, PipelineVersion

_LOCKING = sorted(StageExecutionStatus.ACTIVE)


# Default orderings are by primary key only: an ordering through a relation
# would join (and sort by) the related tables in every .first() the engine runs.


class PipelineExecution(models.Model):
    """One traversal of a pipeline's stages, pinned to the version it started on.

    ``number`` is the per-pipeline ordinal people read (#42); ``execution_id``
    the UUID the API shows; the integer primary key never leaves the server.
    While the execution waits at the gate of a stage (docs/semantics.md §2) it is that stage's
    *inbound execution*: ``inbound_stage_name`` is set, with since when and why.
    """

    execution_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="executions")
    number = models.PositiveIntegerField()
    pipeline_version = models.ForeignKey(
        PipelineVersion, on_delete=models.CASCADE, related_name="executions"
    )
    # The mode the pipeline had when this execution started; a later edit of the
    # pipeline's mode applies to later executions only.
    execution_mode = models.CharField(max_length=16)
    execution_type = models.CharField(
        max_length=16, choices=ExecutionType.choices, default=ExecutionType.STANDARD
    )
    rollback_target = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="rollbacks"
    )
    # The stage a ROLLBACK execution runs again (it runs only that one).
    rollback_stage_name = models.CharField(max_length=100, blank=True)

    trigger_type = models.CharField(max_length=32, choices=TriggerType.choices)
    trigger_detail = models.CharField(max_length=1000, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    # StartPipelineExecution's idempotency token: a repeated start with the same
    # token answers the execution it already started.
    client_request_token = models.CharField(max_length=128, blank=True)

    status = models.CharField(
        max_length=16, choices=PipelineExecutionStatus.choices,
        default=PipelineExecutionStatus.IN_PROGRESS,
    )
    status_summary = models.CharField(max_length=2000, blank=True)
    # Pipeline variables, defaults overridden at start: {"name": "value"}.
    variables = models.JSONField(default=dict, blank=True)
    # sourceRevisions given at start: [{"actionName", "revisionType", "revisionValue"}].
    source_revision_overrides = models.JSONField(default=list, blank=True)
    superseded_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="supersedes"
    )

    inbound_stage_name = models.CharField(max_length=100, blank=True)
    inbound_since = models.DateTimeField(null=True, blank=True)
    inbound_reason = models.CharField(max_length=32, choices=WaitingReason.choices, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Copies kept for executions.dora, so that each DORA figure reads this table alone
    # (the join with every source revision, or with the stage executions and the
    # version's document, was most of their time at 100,000 executions:
    # docs/benchmarks.md). ``committed_at``: the earliest commit time of its source
    # revisions (NULL when none gave one), stored by ``SourceRevision.save`` and
    # ``commit_time_store``; ``entered_last_stage``: a StageExecution of its version's
    # last stage exists, stored by ``StageExecution.save``. Older rows were filled by
    # migration 0012 (``executions.dora_columns``).
    committed_at = models.DateTimeField(null=True, blank=True)
    entered_last_stage = models.BooleanField(default=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["pipeline", "number"], name="executions_pipelineexecution_unique_number"
            ),
            models.UniqueConstraint(
                fields=["pipeline", "client_request_token"],
                condition=~Q(client_request_token=""),
                name="executions_pipelineexecution_unique_token",
            ),
        ]
        indexes = [
            # "The inbound executions waiting at stage S of pipeline P, oldest
            # first" — asked at every stage boundary and whenever a stage unlocks.
            models.Index(
                fields=["pipeline", "inbound_stage_name", "number"],
                condition=~Q(inbound_stage_name=""),
                name="executions_pe_inbound_idx",
            ),
            # "The active executions of pipeline P" (dashboard, pipeline state).
            models.Index(
                fields=["pipeline", "number"],
                condition=Q(status__in=sorted(PipelineExecutionStatus.ACTIVE)),
                name="executions_pe_active_idx",
            ),
            # "The executions of pipeline P with status S, newest first, and how many"
            # (execution history page ?status=, executions list API ?status=). Without
            # it the page and its count walk all of P's executions and filter them.
            # The unfiltered page and count use the (pipeline, number) unique
            # constraint's index and the pipeline foreign key's index.
            models.Index(fields=["pipeline", "status", "number"],
                         name="executions_pe_status_idx"),
            # "The executions of P that ended between two times" (executions.dora: the
            # DORA figures over a window; without it every execution of P is read).
            models.Index(fields=["pipeline", "ended_at"], name="executions_pe_ended_idx"),
            # "The executions of P that ended Succeeded or Failed between two times,
            # with what executions.dora reads of them": its three queries read this
            # index alone on PostgreSQL (an index-only scan, not 40 MB of rows for the
            # 90,000 of 52 weeks at 100,000 executions; SQLite keeps no INCLUDE).
            models.Index(fields=["pipeline", "ended_at"],
                         include=["status", "execution_type", "entered_last_stage",
                                  "committed_at", "id"],
                         condition=Q(status__in=["Failed", "Succeeded"]),
                         name="executions_pe_counted_idx"),
            # "The change failures of P that ended between two times" (executions.dora's
            # incidents start from them): a few percent of the rows, a small index.
            models.Index(fields=["pipeline", "ended_at"],
                         condition=Q(status="Failed", execution_type="STANDARD",
                                     entered_last_stage=True),
                         name="executions_pe_failure_idx"),
        ]
        permissions = [
            ("start_pipelineexecution", "Can start executions"),
            ("stop_pipelineexecution", "Can stop executions"),
            ("retry_pipelineexecution", "Can retry a stage of an execution"),
            ("rollback_pipelineexecution", "Can roll a stage back to an earlier execution"),
            ("toggle_transition", "Can disable and enable transitions"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline.name} #{self.number}"

    @property
    def is_terminal(self) -> bool:
        return self.status in PipelineExecutionStatus.TERMINAL

    @property
    def document(self) -> dict:
        """The pinned definition document."""
        return self.pipeline_version.document


class StageExecution(models.Model):
    """One entry of an execution into a stage (a retry is a new row, ``attempt`` + 1).

    ``pipeline`` and ``stage_name`` are copied from the execution and its pinned
    document so the database itself can lock the stage (docs/semantics.md §1): at most one
    *locking* row per (pipeline, stage) may be InProgress or Stopping. Rows of
    PARALLEL executions have ``locking`` False and lock nothing.
    """

    execution = models.ForeignKey(
        PipelineExecution, on_delete=models.CASCADE, related_name="stage_executions"
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    stage_name = models.CharField(max_length=100)
    # Position of the stage in the pinned document (0 = the source stage).
    stage_index = models.PositiveSmallIntegerField()
    attempt = models.PositiveSmallIntegerField(default=1)
    retry_mode = models.CharField(max_length=16, choices=RetryMode.choices, blank=True)
    # Who started this attempt when it is a retry (attempt > 1): the stage's
    # onFailure RETRY or a person; retryStageMetadata counts them.
    retry_trigger = models.CharField(max_length=24, choices=RetryTrigger.choices, blank=True)
    locking = models.BooleanField(default=True)
    status = models.CharField(
        max_length=16, choices=StageExecutionStatus.choices,
        default=StageExecutionStatus.IN_PROGRESS,
    )
    status_summary = models.CharField(max_length=2000, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # The stage lock. No code path, buggy or not, can put two executions in
            # one stage: the second INSERT (or status change) fails.
            models.UniqueConstraint(
                fields=["pipeline", "stage_name"],
                condition=Q(status__in=_LOCKING, locking=True),
                name="executions_stageexecution_stage_lock",
            ),
            models.UniqueConstraint(
                fields=["execution", "stage_name", "attempt"],
                name="executions_stageexecution_unique_attempt",
            ),
        ]
        indexes = [
            # "The latest execution in stage S of pipeline P" (pipeline state) and
            # "did an execution newer than #n enter stage S" (retry, docs/semantics.md §8).
            models.Index(fields=["pipeline", "stage_name", "-id"],
                         name="executions_se_stage_idx"),
            # "The stage executions that ended since T" (observability.rollups: each
            # /metrics scrape aggregates only those, not every stage execution).
            models.Index(fields=["ended_at"], name="executions_se_ended_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.execution} / {self.stage_name} (attempt {self.attempt})"

    def save(self, *args, **kwargs):
        """Insert or update the row; the first entry into the pinned version's last
        stage also sets the execution's ``entered_last_stage`` (one UPDATE per
        execution; the document is the one the engine has already loaded)."""
        adding = self._state.adding
        super().save(*args, **kwargs)
        ex = self.execution
        if adding and not ex.entered_last_stage and \
                self.stage_index >= len(ex.document.get("stages", [])) - 1:
            PipelineExecution.objects.filter(pk=ex.pk).update(entered_last_stage=True)
            ex.entered_last_stage = True


class ActionExecution(models.Model):
    """One try of one action in a stage execution.

    Created InProgress when the engine decides the action starts; a worker then
    *claims* it (``worker`` set, ``started_at``, lease) and runs it. A running
    action holds a lease its worker renews; the sweeper fails one whose lease
    expired ("worker lost") or whose ``deadline_at`` passed ("timed out").
    ``configuration`` is the action document with its variable references
    resolved at claim time, exactly what the runner received.
    """

    action_execution_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    execution = models.ForeignKey(
        PipelineExecution, on_delete=models.CASCADE, related_name="action_executions"
    )
    stage_execution = models.ForeignKey(
        StageExecution, on_delete=models.CASCADE, related_name="action_executions"
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    stage_name = models.CharField(max_length=100)
    action_name = models.CharField(max_length=100)
    category = models.CharField(max_length=16)
    owner = models.CharField(max_length=16, default="Custom")
    provider = models.CharField(max_length=100)
    run_order = models.PositiveSmallIntegerField(default=1)
    namespace = models.CharField(max_length=100, blank=True)
    attempt = models.PositiveSmallIntegerField(default=1)

    status = models.CharField(
        max_length=16, choices=ActionExecutionStatus.choices,
        default=ActionExecutionStatus.IN_PROGRESS,
    )
    summary = models.CharField(max_length=2000, blank=True)
    external_url = models.URLField(max_length=2000, blank=True)
    external_id = models.CharField(max_length=200, blank=True)
    # A secret an outside party presents to complete a waiting action (an
    # approval's token, an Invoke webhook's job token).
    token = models.CharField(max_length=64, blank=True)
    configuration = models.JSONField(default=dict, blank=True)
    output_variables = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)

    timeout_minutes = models.PositiveIntegerField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Set when the runner answered "Waiting": the action completes later from
    # outside (approval decision, webhook callback); no worker holds it.
    waiting_since = models.DateTimeField(null=True, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    pgid = models.IntegerField(null=True, blank=True)
    log_path = models.CharField(max_length=500, blank=True)
    # The agent labels the action's configuration.RunOn asks for ("linux,arm64",
    # sorted): "" runs on the django-q2 workers; otherwise only an agent whose labels
    # include all of them claims it, never a worker (docs/deploy.md, Build farm).
    run_on = models.CharField(max_length=200, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "stage_name", "action_name", "attempt"],
                name="executions_actionexecution_unique_attempt",
            ),
        ]
        indexes = [
            # The sweeper: "InProgress actions whose lease expired" (worker lost,
            # or a dispatch that never reached a worker).
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="InProgress"),
                name="executions_ae_lease_idx",
            ),
            # The sweeper: "InProgress actions past their deadline" (docs/semantics.md §9).
            models.Index(
                fields=["deadline_at"],
                condition=Q(status="InProgress"),
                name="executions_ae_deadline_idx",
            ),
            # "The latest execution of action A in stage S of pipeline P"
            # (pipeline state's actionStates).
            models.Index(fields=["pipeline", "stage_name", "action_name", "-id"],
                         name="executions_ae_action_idx"),
            # "The action executions that ended since T" (observability.rollups: each
            # /metrics scrape aggregates only those, not a million rows).
            models.Index(fields=["ended_at"], name="executions_ae_ended_idx"),
            # An agent's poll: "InProgress actions routed to agents that nobody claimed".
            models.Index(fields=["id"], condition=Q(status="InProgress", worker="")
                         & ~Q(run_on=""), name="executions_ae_agent_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.execution} / {self.stage_name} / {self.action_name} #{self.attempt}"

    @property
    def is_terminal(self) -> bool:
        return self.status in ActionExecutionStatus.TERMINAL


class Artifact(models.Model):
    """A named, immutable file set an action produced, stored once by content hash.

    The content is a zip archive with sorted entries and fixed timestamps, so the
    same files always hash the same; ``storage_name`` is its name in the
    "artifacts" Django storage (``sha256/ab/<hash>.zip``). Two artifacts with the
    same content share one stored file.
    """

    execution = models.ForeignKey(
        PipelineExecution, on_delete=models.CASCADE, related_name="artifacts"
    )
    name = models.CharField(max_length=100)
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    file_count = models.PositiveIntegerField(default=0)
    storage_name = models.CharField(max_length=300)
    produced_by = models.ForeignKey(
        ActionExecution, on_delete=models.CASCADE, related_name="artifacts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["produced_by", "name"], name="executions_artifact_unique_output"
            ),
        ]
        indexes = [
            # "The latest artifact named N of execution E" (a downstream action's inputs).
            models.Index(fields=["execution", "name", "-id"], name="executions_artifact_name_idx"),
            # "Which of these stored contents does some artifact still name"
            # (retention's _delete_unreferenced and its dry run: storage_name IN (...)),
            # asked after each pruned batch; without it, a scan of every artifact.
            models.Index(fields=["storage_name"], name="executions_art_storage_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sha256[:12]})"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("An Artifact is immutable once saved.")
        super().save(*args, **kwargs)


class SourceRevision(models.Model):
    """The revision a source action resolved for an execution (``artifactRevisions``)."""

    execution = models.ForeignKey(
        PipelineExecution, on_delete=models.CASCADE, related_name="source_revisions"
    )
    action_name = models.CharField(max_length=100)
    # The output artifact this revision describes (CodePipeline's artifactRevisions[].name).
    artifact_name = models.CharField(max_length=100, blank=True)
    revision_id = models.CharField(max_length=200)
    revision_summary = models.CharField(max_length=2000, blank=True)
    revision_url = models.URLField(max_length=2000, blank=True)
    revision_change_identifier = models.CharField(max_length=200, blank=True)
    # The commit's time (committer date), where the source runner knows it: the
    # start of the lead time for changes (executions.dora).
    committed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "action_name"],
                name="executions_sourcerevision_unique_action",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_name}@{self.revision_id[:12]}"

    def save(self, *args, **kwargs):
        """Insert or update the row, then the execution's ``committed_at``."""
        super().save(*args, **kwargs)
        commit_time_store(execution_id=self.execution_id)


def commit_time_store(*, execution_id: int) -> None:
    """Store on the execution the earliest commit time of its source revisions (one
    UPDATE). Called by ``SourceRevision.save`` and by whoever writes source revisions
    without it (``QuerySet.update``, ``bulk_create``): the engine and the rollback."""
    PipelineExecution.objects.filter(pk=execution_id).update(
        committed_at=first_commit_time(SourceRevision))


class ExecutionEvent(models.Model):
    """An append-only record of one status change (or inbound wait, or transition change).

    The primary key is the sequence number live consumers resume from. Every
    transaction that writes events first locks its pipeline's row, so within
    one pipeline the events commit in sequence order: a reader that saw
    sequence N never later finds a committed event of that pipeline below N.
    """

    id = models.BigAutoField(primary_key=True)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="events")
    execution = models.ForeignKey(
        PipelineExecution, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    kind = models.CharField(max_length=24, choices=EventKind.choices)
    stage_name = models.CharField(max_length=100, blank=True)
    action_name = models.CharField(max_length=100, blank=True)
    # The StageExecution / ActionExecution the event is about (ids, not FKs:
    # the log outlives nothing, but it must never block a delete or a write).
    stage_execution_id = models.BigIntegerField(null=True, blank=True)
    action_execution_id = models.BigIntegerField(null=True, blank=True)
    previous_status = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=16, blank=True)
    summary = models.CharField(max_length=2000, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            # "Events of pipeline P after sequence N" (pipeline websocket resume).
            models.Index(fields=["pipeline", "id"], name="executions_event_pipeline_idx"),
            # "Events of execution E after sequence N" (execution page, audit trail).
            models.Index(fields=["execution", "id"], name="executions_event_execution_idx"),
        ]

    def __str__(self) -> str:
        where = "/".join(x for x in (self.stage_name, self.action_name) if x)
        return f"#{self.id} {self.kind} {where} {self.previous_status}->{self.status}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("ExecutionEvent is append-only.")
        super().save(*args, **kwargs)


class HookDelivery(models.Model):
    """A push webhook delivery a pipeline has received, by the sender's delivery id.

    A signed delivery can be captured and sent again: the signature covers the
    body only, with no time in it. Its id (``X-GitHub-Delivery``,
    ``X-Gitea-Delivery``, ``X-Gitlab-Event-UUID``, ``X-Conveyor-Delivery``) is
    recorded once per pipeline and the unique constraint refuses a replay
    (``triggers.hooks.services.push_receive``).
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="+")
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "hook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "delivery_id"],
                                    name="executions_hookdelivery_unique_delivery"),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline_id}:{self.delivery_id}"
