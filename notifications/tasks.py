"""django-q2 task adapters: they take ids and call ``notifications.services``."""

from __future__ import annotations


def events_scan(pipeline_id: int, up_to: int) -> str:
    from notifications import services

    created = services.events_scan(pipeline_id=pipeline_id, up_to=up_to)
    return f"{len(created)} delivery(ies)"


def delivery_send(delivery_id: int) -> str:
    from notifications import services

    return services.delivery_send(delivery_id=delivery_id)
