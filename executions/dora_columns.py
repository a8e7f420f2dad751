"""The copies ``executions.dora`` reads on a PipelineExecution, as computed from the rows
they copy, and the backfill of existing rows.

- ``committed_at``: the earliest commit time of the execution's source revisions
  (NULL when none gave one): the start of its lead time for changes.
- ``entered_last_stage``: a StageExecution of its pinned version's last stage exists: a
  Failed STANDARD execution that entered it is a change failure.

``SourceRevision.save``, ``commit_time_store`` and ``StageExecution.save``
(``executions.models``) keep them as rows are written; ``computed`` is their definition
as SQL over the rows they copy (tests compare the two); ``backfill`` fills them on rows
written before they existed (migration ``executions/0012``). Functions take the model
classes so that a migration can pass its historical ones.
"""

from __future__ import annotations

from django.db import NotSupportedError, transaction
from django.db.models import Exists, F, Func, IntegerField, Max, Min, OuterRef, Subquery


class StageCount(Func):
    """How many stages a pipeline version's document (a JSON object) lists."""

    output_field = IntegerField()

    def as_sql(self, compiler, connection, **extra):
        raise NotSupportedError(f"executions.dora_columns does not support {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template=(
            "COALESCE(jsonb_array_length(%(expressions)s -> 'stages'), 0)"), **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return super().as_sql(compiler, connection, template=(
            "COALESCE(json_array_length(%(expressions)s, '$.stages'), 0)"), **extra)


def first_commit_time(source_revision) -> Subquery:
    """The earliest commit time of the source revisions of the outer execution."""
    return Subquery(source_revision.objects.filter(execution_id=OuterRef("pk")).order_by()
                    .values("execution_id").annotate(first=Min("committed_at"))
                    .values("first"))


def computed(source_revision, stage_execution) -> dict:
    """{column: the expression that computes it for the outer PipelineExecution}."""
    last_stage = StageCount(F("execution__pipeline_version__document")) - 1
    return {
        "committed_at": first_commit_time(source_revision),
        "entered_last_stage": Exists(stage_execution.objects.filter(
            execution_id=OuterRef("pk"), stage_index__gte=last_stage)),
    }


def backfill(pipeline_execution, source_revision, stage_execution, *,
             batch: int = 5_000) -> int:
    """Compute both columns of every execution: one UPDATE per ``batch`` ids, each
    committed on its own (a long history is not one transaction holding every row's
    lock). Answers how many rows were updated."""
    values = computed(source_revision, stage_execution)
    top = pipeline_execution.objects.aggregate(top=Max("pk"))["top"] or 0
    bottom = pipeline_execution.objects.aggregate(bottom=Min("pk"))["bottom"] or 1
    updated = 0
    for start in range(bottom - 1, top, batch):
        with transaction.atomic():
            updated += (pipeline_execution.objects.filter(pk__gt=start, pk__lte=start + batch)
                        .update(**values))
    return updated
