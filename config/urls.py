from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_safe
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from awsapi import s3 as awsapi_s3
from dashboard import views as dashboard_views
from observability import views as observability_views

urlpatterns = [
    # The home page is the live Pipelines list of the dashboard.
    path("", dashboard_views.pipeline_list, name="home"),
    path("", include("dashboard.urls")),
    path("approvals/<uuid:pk>/review/", dashboard_views.review_decide, name="dashboard-review"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("nested_admin/", include("nested_admin.urls")),
    path("approvals/", include("approvals.urls")),
    path("api/", include("triggers.hooks.urls")),  # signed, user-less: before the rest
    path("api/", include("approvals.api.urls")),
    path("api/", include("pipelines.api.urls")),
    path("api/", include("teams.api.urls")),
    path("api/", include("executions.api.urls")),
    path("api/", include("conditions.api")),
    path("api/audit/", observability_views.AuditEntryListApi.as_view(), name="api-audit"),
    path("api/audit/export/", observability_views.AuditEntryExportApi.as_view(),
         name="api-audit-export"),
    path("pipelines/<str:name>/audit/", observability_views.pipeline_audit,
         name="pipeline-audit"),
    path("api/", include("notifications.urls")),
    path("api/", include("jobs.urls")),
    path("aws/", include("awsapi.urls")),
    # The job workers' artifacts, path-style S3 (awsapi/s3.py).
    path("s3/<str:bucket>/<path:key>", awsapi_s3.endpoint, name="s3-object"),
    path("agents/", include("agents.pages")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file (no inline script); the
    # page's own <style> and Swagger UI's inline styles need 'unsafe-inline' for styles.
    path("api/docs/", csp_update({"style-src": ["'unsafe-inline'"]})(
        SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
    path("", include("config.health")),  # /healthz, /healthz/workers (no auth)
    path("metrics", observability_views.metrics, name="metrics"),  # token or staff
    # Browsers ask every site for /favicon.ico, on pages without the <link rel="icon">
    # of base.html too (the admin, the API docs): the one icon, served as a static file.
    path("favicon.ico", require_safe(RedirectView.as_view(url=static("favicon.ico"),
                                                          permanent=True)), name="favicon"),
]

# Under /api/, Django's own 400/403/404/500 answers use the API's error body.
handler400 = "config.error_pages.bad_request"
handler403 = "config.error_pages.permission_denied"
handler404 = "config.error_pages.page_not_found"
handler500 = "config.error_pages.server_error"
