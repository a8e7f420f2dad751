from django.urls import path

from jobs import api

urlpatterns = [
    path("action-types/", api.ActionTypeListApi.as_view(), name="api-action-type-list"),
    path("action-types/<str:category>/<str:owner>/<str:provider>/<str:version>/",
         api.ActionTypeDetailApi.as_view(), name="api-action-type-detail"),
]
