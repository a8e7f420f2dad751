"""Websocket routes: the live dashboard (``dashboard.consumers``)."""

from django.urls import path

from dashboard import consumers

websocket_urlpatterns: list = [
    path("ws/pipelines/", consumers.PipelinesConsumer.as_asgi()),
    path("ws/pipelines/<str:name>/", consumers.PipelineConsumer.as_asgi()),
    path("ws/executions/<str:execution_id>/", consumers.ExecutionConsumer.as_asgi()),
]
