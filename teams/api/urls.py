from django.urls import path

from teams.api import views

urlpatterns = [
    path("pipeline-groups/", views.PipelineGroupListApi.as_view(),
         name="api-pipeline-group-list"),
    path("pipeline-groups/<str:name>/", views.PipelineGroupDetailApi.as_view(),
         name="api-pipeline-group-detail"),
]
