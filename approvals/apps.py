from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        # The Manual approval provider joins the executions runner registry (and,
        # through it, the providers validation consults); executions never
        # imports approvals (imports point one way: README, Architecture).
        import runners
        from approvals import receivers  # noqa: F401  (connects the engine's signals)
        from approvals.runner import ManualApprovalRunner

        runners.register(ManualApprovalRunner)
