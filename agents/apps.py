from django.apps import AppConfig


class AgentsConfig(AppConfig):
    """Conveyor's own build agents: keys, the agent protocol's server side, the Agents page."""

    name = "agents"
    default_auto_field = "django.db.models.BigAutoField"
