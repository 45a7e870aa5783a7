"""ASGI entry point: HTTP through Django, websockets through Channels (PRODUCT.md section 6)."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from api.limits import BodySizeLimit  # noqa: E402
from config.ingest_handler import IngestRoute  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Outermost, so an oversized body is refused before Django reads it.
        "http": BodySizeLimit(IngestRoute(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)

# What is loaded by now (Django, the apps, their modules and settings) lives as long as the
# process. Frozen, it is left out of the cyclic collector's passes, which a request making
# thousands of short-lived objects (an ingest batch) otherwise sets off to walk all of it: a
# third of the ingest path's CPU.
gc.freeze()
