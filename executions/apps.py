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
        # The runners of the runners issue register themselves when imported.
        from executions.runners import directory, git, python, webhook  # noqa: F401
