"""Websocket routes; the dashboard issue fills them in."""

websocket_urlpatterns: list = []
