from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Custom action types and the job-worker protocol (docs/job-workers.md)."""

    name = "jobs"
    verbose_name = "Job workers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from jobs import wiring

        wiring.connect()
