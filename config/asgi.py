"""ASGI entry point: HTTP through Django, websockets through Channels."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402


def _answer_held_requests_on_shutdown() -> None:
    """Under daphne (a Twisted reactor): on its shutdown (SIGTERM), agents' held requests
    end at once rather than holding it for up to their 25 s (agents.doorbell); daphne
    has cancelled their connections, so their clients see them cut off and retry."""
    if "daphne.server" not in sys.modules:   # another ASGI server: no such hook here
        return
    from twisted.internet import reactor

    from agents.doorbell import close_all

    reactor.addSystemEventTrigger("before", "shutdown", close_all)


_answer_held_requests_on_shutdown()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
