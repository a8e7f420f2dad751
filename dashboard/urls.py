"""The dashboard's page URLs (people's names and numbers; UUIDs stay in the API)."""

from django.urls import path

from dashboard import execution_views, views

app_name = "dashboard"

EXECUTION = "pipelines/<str:name>/executions/<int:number>/"
ACTION = EXECUTION + "stages/<str:stage>/actions/<str:action>/"

urlpatterns = [
    path("", views.pipeline_list, name="pipelines"),
    path("insights/", execution_views.insights_overview, name="insights-overview"),
    path("pipelines/<str:name>/", views.pipeline_detail, name="pipeline"),
    path("pipelines/<str:name>/release/", views.pipeline_release, name="release"),
    path("pipelines/<str:name>/stages/<str:stage>/transition/", views.transition_toggle,
         name="transition"),
    path("pipelines/<str:name>/executions/", views.execution_history, name="history"),
    path("pipelines/<str:name>/insights/", execution_views.pipeline_insights, name="insights"),
    path(EXECUTION, execution_views.execution_detail, name="execution"),
    path(EXECUTION + "stop/", views.execution_stop, name="stop"),
    path(EXECUTION + "stages/<str:stage>/retry/", views.stage_retry, name="retry"),
    path(EXECUTION + "stages/<str:stage>/conditions/<str:condition_type>/override/",
         views.condition_override, name="override"),
    path(EXECUTION + "stages/<str:stage>/conditions/<str:condition_type>/rules/<str:rule>/log/",
         execution_views.rule_log, name="rule-log"),
    path(ACTION, execution_views.action_detail, name="action"),
    path(ACTION + "log/", execution_views.action_log, name="action-log"),
]
