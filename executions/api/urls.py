from django.urls import path

from executions.api import views

urlpatterns = [
    path("pipelines/<str:name>/state/", views.PipelineStateApi.as_view(),
         name="api-pipeline-state"),
    path("pipelines/<str:name>/stages/<str:stage>/transition/",
         views.StageTransitionApi.as_view(), name="api-stage-transition"),
    path("pipelines/<str:name>/stages/<str:stage>/rollback/",
         views.StageRollbackApi.as_view(), name="api-stage-rollback"),
    path("pipelines/<str:name>/executions/", views.PipelineExecutionListApi.as_view(),
         name="api-execution-list"),
    path("executions/<str:id>/", views.PipelineExecutionDetailApi.as_view(),
         name="api-execution-detail"),
    path("executions/<str:id>/stop/", views.PipelineExecutionStopApi.as_view(),
         name="api-execution-stop"),
    path("executions/<str:id>/stages/<str:stage>/retry/", views.StageRetryApi.as_view(),
         name="api-stage-retry"),
    path("executions/<str:id>/actions/", views.ActionExecutionListApi.as_view(),
         name="api-action-execution-list"),
    path("executions/<str:id>/events/", views.ExecutionEventListApi.as_view(),
         name="api-execution-events"),
    path("executions/<str:id>/artifacts/<str:name>/", views.ArtifactDownloadApi.as_view(),
         name="api-artifact-download"),
    path("action-executions/<str:id>/log/", views.ActionExecutionLogApi.as_view(),
         name="api-action-execution-log"),
]
