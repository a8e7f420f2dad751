from django.apps import AppConfig


class TriggersConfig(AppConfig):
    """What starts executions from outside: push webhooks, polling, post-receive hooks,
    and the results that Invoke Webhook receivers post back."""

    name = "triggers"
    verbose_name = "Triggers"

    def ready(self) -> None:
        # `migrate` makes the polling schedule follow CONVEYOR_POLL_SECONDS. This app
        # has no models, so Django sends it no post_migrate: listen to executions'.
        from django.apps import apps
        from django.db.models.signals import post_migrate

        from triggers.changes import poll_schedule_ensure

        post_migrate.connect(poll_schedule_ensure, sender=apps.get_app_config("executions"),
                             dispatch_uid="conveyor-poll-schedule")
        # ... and the pipelines' own schedules be ticked every minute.
        from triggers.schedules import schedule_ensure

        post_migrate.connect(schedule_ensure, sender=apps.get_app_config("executions"),
                             dispatch_uid="conveyor-pipeline-schedules")
        # Commit statuses follow the engine's events (after its commits).
        from executions import signals
        from triggers import statuses

        signals.events_appended.connect(statuses.on_events_appended,
                                        dispatch_uid="conveyor.commit-statuses")
