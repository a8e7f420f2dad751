from django.urls import path

from pipelines.api import views

urlpatterns = [
    path("pipelines/", views.PipelineListApi.as_view(), name="api-pipeline-list"),
    path("pipelines/<str:name>/", views.PipelineDetailApi.as_view(), name="api-pipeline-detail"),
    path("pipelines/<str:name>/webhook/", views.PipelineWebhookApi.as_view(),
         name="api-pipeline-webhook"),
    path("pipelines/<str:name>/versions/", views.PipelineVersionListApi.as_view(),
         name="api-pipeline-version-list"),
    path("pipelines/<str:name>/versions/<int:number>/", views.PipelineVersionDetailApi.as_view(),
         name="api-pipeline-version-detail"),
    path("build-projects/", views.BuildProjectListApi.as_view(), name="api-build-project-list"),
    path("build-projects/<str:name>/", views.BuildProjectDetailApi.as_view(),
         name="api-build-project-detail"),
]
