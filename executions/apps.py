from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Executions"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # `migrate` makes the daily prune schedule follow CONVEYOR_RETENTION_DAYS.
        from executions.retention import retention_schedule_ensure

        post_migrate.connect(retention_schedule_ensure, sender=self,
                             dispatch_uid="conveyor-retention-schedule")
