from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The live dashboard: pages, websocket consumers, the live hub, template tags."""

    name = "dashboard"
    verbose_name = "Dashboard"

    def ready(self) -> None:
        # The live dashboard's doorbell rings after every commit that appended events.
        from dashboard import live

        live.connect()
