from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "teams"
    verbose_name = "Pipeline groups"
    default_auto_field = "django.db.models.BigAutoField"
