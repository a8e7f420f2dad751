from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Notifications"

    def ready(self) -> None:
        # Rules are matched against the engine's events after they commit, in a
        # task of their own: the engine only rings (executions.signals).
        from executions import signals
        from notifications import services

        signals.events_appended.connect(services.on_events_appended,
                                        dispatch_uid="conveyor.notifications")
