from django.apps import AppConfig


class RunnersConfig(AppConfig):
    """The runners of actions, by (category, provider); the engine reaches them only
    through the registry in ``runners/__init__.py``."""

    name = "runners"
    verbose_name = "Runners"

    def ready(self) -> None:
        # Register the built-in runners (and their configuration checkers into
        # pipelines.providers, which validation consults). The runners of the
        # runners issue register themselves when imported.
        from runners import (  # noqa: F401
            connection_sources,
            directory,
            git,
            load_builtin,
            python,
            webhook,
        )

        load_builtin()
