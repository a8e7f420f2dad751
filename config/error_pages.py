"""Django's own 400/404/500 answers, in the API's error body under ``/api/``.

A request whose path matches no URL pattern never reaches a DRF view (``/api/approvals/
not-a-uuid/decision/``), so Django answers it with an HTML page; an API client expects
the one error body, ``{"detail": "..."}``. Elsewhere (pages, admin) Django's default
pages stay. Used when ``DEBUG`` is off, as in production and in tests.
"""

from django.http import JsonResponse
from django.views import defaults


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception, template_name)


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception, template_name)


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request, template_name)
