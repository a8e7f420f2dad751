"""Counters shared by every process, kept in the database.

A Prometheus counter kept in one process's memory would need prometheus-client's
multiprocess directory to add up the web processes and the django-q2 workers of
every machine; a row per (name, labels) incremented in the database adds them up
wherever they run, and survives restarts.
"""

from django.db import models


class Counter(models.Model):
    """A cumulative count (sweeper runs, webhook deliveries) for one label set.

    ``labels`` is the label dict as canonical JSON (sorted keys), so one
    (name, labels) pair is one row; ``updated_at`` is when it last moved.
    Only ``observability.counters.counter_add`` writes it.
    """

    name = models.CharField(max_length=100)
    labels = models.CharField(max_length=500, default="{}")
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "labels"]
        constraints = [
            models.UniqueConstraint(fields=["name", "labels"],
                                    name="observability_counter_unique_labels"),
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.labels} = {self.value}"
