"""The ingest endpoints' own way through Django under ASGI.

Agents post a batch every few seconds each, so the ingest endpoints carry most of a busy
server's requests. Django's ASGI handler runs every request through the whole middleware list
(sessions, CSRF, users, time zones, messages, allauth, htmx: none of which an ingest request
uses, as its token is its only credential) and hops threads twice per request (the sync
middleware, then the sync view, each given to a thread started for the request). Here an ingest
request runs through the middleware it needs, whole in one thread of the event loop's pool:
the same URL configuration, django-ninja view, authentication, limits and error answers as any
other API request, at a fraction of the CPU.
"""

from asgiref.sync import sync_to_async
from csp.middleware import CSPMiddleware
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import set_script_prefix

from api.limits import ApiRequestGuard
from config.monitoring import RequestMetricsMiddleware

INGEST_PATHS = frozenset({"/api/v1/ingest", "/api/v1/write"})
# Outermost first, as in settings.MIDDLEWARE (where each also stands, in this order): those
# that refuse a request ingest must refuse too (CommonMiddleware: a Host not in ALLOWED_HOSTS)
# or set the headers of every answer (security headers, CSP, Content-Length, X-Frame-Options).
INGEST_MIDDLEWARE = (
    RequestMetricsMiddleware,
    ApiRequestGuard,
    SecurityMiddleware,
    CSPMiddleware,
    CommonMiddleware,
    XFrameOptionsMiddleware,
)


class IngestRoute:
    """ASGI: ingest requests to an ``IngestHandler``, everything else to ``application``."""

    def __init__(self, application):
        self.application = application
        self.ingest = IngestHandler()

    async def __call__(self, scope, receive, send) -> None:
        if is_ingest(scope):
            return await self.ingest(scope, receive, send)
        return await self.application(scope, receive, send)


def is_ingest(scope) -> bool:
    """An HTTP POST to an ingest endpoint (its path below the application's root path)."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    return scope["path"].removeprefix(scope.get("root_path", "")) in INGEST_PATHS


class IngestHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        # A sync chain (the request is served whole in one thread), built as BaseHandler
        # builds settings.MIDDLEWARE's; none of these has view or exception hooks.
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for middleware in reversed(INGEST_MIDDLEWARE):
            handler = convert_exception_to_response(middleware(handler))
        self._middleware_chain = handler

    async def __call__(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self.serve, thread_sensitive=False)(scope, body_file)
            await self.send_response(response, send)
        finally:
            body_file.close()

    def serve(self, scope, body_file):
        """The request's whole life in this thread, so the database connection it takes is
        given back (``request_finished``) by the thread that used it."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        response.close()
        return response
