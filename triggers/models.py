"""What was reported to forges about executions' commits."""

from django.db import models

from executions.models import PipelineExecution


class CommitStatusReport(models.Model):
    """The status of one context (pipeline, or pipeline/stage) of an execution's commit.

    ``wanted_state`` follows the execution; ``reported_state`` is what the
    forge accepted last. They differ while a report is due or failing.
    Unique per (execution, context), so concurrent syncs share one row.
    """

    execution = models.ForeignKey(PipelineExecution, on_delete=models.CASCADE,
                                  related_name="+")
    context = models.CharField(max_length=255)
    commit = models.CharField(max_length=200)
    wanted_state = models.CharField(max_length=16)
    reported_state = models.CharField(max_length=16, blank=True)
    description = models.CharField(max_length=140, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_answer = models.CharField(max_length=1000, blank=True)
    # After a failed report, not before this (the backoff); a new wanted state clears it.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["execution", "context"],
                                    name="triggers_commitstatusreport_unique_context"),
        ]

    def __str__(self) -> str:
        return f"{self.context} {self.commit[:12]}: {self.reported_state or '-'} → " \
               f"{self.wanted_state}"
