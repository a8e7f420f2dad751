"""Django's own 400/403/404/500 answers, in the API's error body under ``/api/``.

A request whose path matches no URL pattern never reaches a DRF view (``/api/approvals/
not-a-uuid/decision/``), so Django answers it with an HTML page; an API client expects
the one error body, ``{"detail": "..."}``. Elsewhere a 403 or 404 is a page of the site
(its header, the reason, a way back: ``templates/403.html``, ``404.html``); 400 and 500
stay Django's default pages. Used when ``DEBUG`` is off, as in production and in tests.
"""

from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception, template_name)


def _reason(exception, default: str) -> str:
    """The sentence the view raised (``No pipeline is named "x".``), else ``default``: a
    URL that matches no pattern raises Resolver404 with a dict, not a sentence."""
    message = exception.args[0] if exception is not None and exception.args else None
    return message if isinstance(message, str) and message else default


def permission_denied(request, exception, template_name=defaults.ERROR_403_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"detail": _reason(exception, "Permission denied.")}, status=403)
    return render(request, template_name, status=403, context={
        "reason": _reason(exception, "You may not do this.")})


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, template_name, status=404, context={
        "reason": _reason(exception, "Nothing is at this address.")})


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request, template_name)
