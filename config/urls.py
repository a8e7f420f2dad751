from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from dashboard import views as dashboard_views

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
    path("api/", include("executions.api.urls")),
    path("api/", include("notifications.urls")),
    path("aws/", include("awsapi.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("config.health")),  # /healthz, /healthz/workers (no auth)
]

# Under /api/, Django's own 400/404/500 answers use the API's error body.
handler400 = "config.error_pages.bad_request"
handler404 = "config.error_pages.page_not_found"
handler500 = "config.error_pages.server_error"
