from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Executions"

    def ready(self) -> None:
        # The engine hands work to the queue through a port; the django-q2 adapter
        # imports the engine, so it is wired here rather than imported by it.
        from executions import queue, tasks

        queue.wire(tasks)
        from django.db.models.signals import post_migrate

        # `migrate` makes the daily prune schedule follow CONVEYOR_RETENTION_DAYS.
        from executions.retention import retention_schedule_ensure

        post_migrate.connect(retention_schedule_ensure, sender=self,
                             dispatch_uid="conveyor-retention-schedule")
