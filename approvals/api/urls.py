from django.urls import path

from approvals.api import views

urlpatterns = [
    path("approvals/", views.ApprovalListApi.as_view(), name="api-approval-list"),
    path("approvals/<uuid:id>/decision/", views.ApprovalDecisionApi.as_view(),
         name="api-approval-decision"),
]
