from django.apps import AppConfig


class ConditionsConfig(AppConfig):
    name = "conditions"
    verbose_name = "Stage conditions"

    def ready(self) -> None:
        # The engine reaches conditions through a port (it cannot import this app, which
        # imports it); the sweeper's signal re-evaluates waiting rules.
        from conditions import port

        port.connect()
