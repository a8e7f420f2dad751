from django.urls import path

from agents import api

urlpatterns = [
    path("poll", api.poll, name="agent-poll"),
    path("jobs/<uuid:job_id>/heartbeat", api.heartbeat, name="agent-heartbeat"),
    path("jobs/<uuid:job_id>/log", api.log, name="agent-log"),
    path("jobs/<uuid:job_id>/inputs/<str:name>", api.input_artifact, name="agent-input"),
    path("jobs/<uuid:job_id>/outputs/<str:name>", api.output_artifact, name="agent-output"),
    path("jobs/<uuid:job_id>/result", api.result, name="agent-result"),
]
