from django.apps import AppConfig


def _offered(sender, **kwargs) -> None:
    """An action routed to agents (and its Job) is being committed: ring the held polls."""
    from agents import doorbell

    doorbell.on_commit(doorbell.ring_offer)


def _key_saved(sender, instance, created=False, **kwargs) -> None:
    """A key revoked by a plain ``save()`` (not ``agents.services.agent_key_revoke``) stops
    its agents all the same."""
    if not created and instance.revoked_at is not None:
        from agents.services import agent_key_ended

        agent_key_ended(key=instance, how="revoked")


def _key_deleted(sender, instance, **kwargs) -> None:
    """Before a key's row (and its agents', by cascade) is deleted: its agents' actions
    fail naming it and its held requests are refused."""
    from agents.services import agent_key_ended

    agent_key_ended(key=instance, how="deleted")


class AgentsConfig(AppConfig):
    """Conveyor's own build agents: keys, the agent protocol's server side, the Agents page."""

    name = "agents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_save, pre_delete

        from agents.models import AgentKey
        from executions import signals

        signals.agent_action_started.connect(_offered, dispatch_uid="agents.offered")
        post_save.connect(_key_saved, sender=AgentKey, dispatch_uid="agents.key_saved")
        pre_delete.connect(_key_deleted, sender=AgentKey, dispatch_uid="agents.key_deleted")
