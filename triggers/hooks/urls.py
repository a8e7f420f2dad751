"""Hook endpoints; included under ``api/`` before the other API URLs.

Both accept the path with or without its trailing slash: forges and
receivers are configured by hand, and a POST cannot follow APPEND_SLASH's
redirect.
"""

from django.urls import re_path

from triggers.hooks import views

urlpatterns = [
    re_path(r"^hooks/(?P<pipeline>[A-Za-z0-9.@_-]{1,100})/?$", views.PushHookApi.as_view(),
            name="api-push-hook"),
    re_path(r"^jobs/(?P<token>[A-Za-z0-9_-]{1,128})/result/?$", views.JobResultApi.as_view(),
            name="api-job-result"),
    re_path(r"^webhooks/(?P<token>[A-Za-z0-9_-]{1,64})/?$", views.AwsWebhookApi.as_view(),
            name="api-aws-webhook"),
]
