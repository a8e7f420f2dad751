from django.urls import path

from notifications import api

urlpatterns = [
    path("notification-rules/", api.NotificationRuleListApi.as_view(),
         name="api-notification-rules"),
    path("notification-rules/<int:pk>/", api.NotificationRuleDetailApi.as_view(),
         name="api-notification-rule"),
    path("notification-rules/<int:pk>/deliveries/", api.NotificationDeliveryListApi.as_view(),
         name="api-notification-deliveries"),
]
