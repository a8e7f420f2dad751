from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    name = "executions"
    verbose_name = "Executions"

    def ready(self) -> None:
        # Register the built-in runners (and their configuration checkers into
        # pipelines.providers, which validation consults).
        from executions.runners import load_builtin

        load_builtin()
        # The live dashboard's doorbell rings after every commit that appended events.
        from executions import live

        live.connect()
        # The runners of the runners issue register themselves when imported, and
        # `migrate` makes the polling schedule follow CONVEYOR_POLL_SECONDS.
        from django.db.models.signals import post_migrate

        from executions.runners import directory, git, python, webhook  # noqa: F401
        from executions.triggers import poll_schedule_ensure

        post_migrate.connect(poll_schedule_ensure, sender=self,
                             dispatch_uid="conveyor-poll-schedule")
        # ... and the daily prune schedule follow CONVEYOR_RETENTION_DAYS.
        from executions.retention import retention_schedule_ensure

        post_migrate.connect(retention_schedule_ensure, sender=self,
                             dispatch_uid="conveyor-retention-schedule")
        # ... and the pipelines' own schedules be ticked every minute.
        from executions.schedules import schedule_ensure

        post_migrate.connect(schedule_ensure, sender=self,
                             dispatch_uid="conveyor-pipeline-schedules")
