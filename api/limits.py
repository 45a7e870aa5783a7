"""Limits that hold before any work is done: a body too large is refused while it streams in
(``BodySizeLimit``, around the whole ASGI application), and API writes of the wrong size or
content type are refused before authentication or parsing (``ApiRequestGuard``)."""

import logging

import orjson
from django.conf import settings
from django.db import OperationalError
from django.http import HttpResponse, JsonResponse
from psycopg.errors import QueryCanceled

from api.metrics import count_refusal

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
WRITE_METHODS = {"POST", "PUT", "PATCH"}
# Content types each write endpoint accepts; everything else under the API takes JSON.
CONTENT_TYPES = {
    "/api/v1/write": "application/x-protobuf",
    "/api/v1/alerting/config": "application/yaml",
}


class ApiRequestGuard:
    """Refuse oversized bodies (413) and wrong content types (415) before any work is done."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(API_PREFIX) and request.method in WRITE_METHODS:
            refusal = self.refusal(request)
            if refusal is not None:
                status, reason, message = refusal
                count_refusal(request.method, request.path_info, reason)
                return JsonResponse({"error": message, "details": []}, status=status)
        return self.get_response(request)

    def refusal(self, request) -> tuple[int, str, str] | None:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 400, "invalid", "Content-Length is not a number"
        if length > settings.INGEST_MAX_BODY_BYTES:
            return (
                413,
                "too_large",
                f"body of {length} bytes; at most {settings.INGEST_MAX_BODY_BYTES} accepted",
            )
        expected = CONTENT_TYPES.get(request.path_info.rstrip("/"), "application/json")
        if request.content_type != expected:
            return 415, "unsupported_media_type", f"Content-Type must be {expected}"
        return None


class BodyTooLarge(Exception):
    """The body streaming in passed the limit."""


class BodySizeLimit:
    """ASGI wrapper: an HTTP request whose body is larger than ``INGEST_MAX_BODY_BYTES`` is
    answered 413 as soon as that is known, before Django reads (and spools to disk) the body,
    authenticates or parses anything.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is read;
    a chunked body (no length) is counted as it arrives and refused once it passes the limit.
    The server then closes the connection rather than read the rest.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.INGEST_MAX_BODY_BYTES
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            message = f"body of {declared} bytes; at most {limit} accepted"
            return await _refuse(scope, send, message)
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, counted_receive, send)
        except BodyTooLarge:
            await _refuse(scope, send, f"body larger than {limit} bytes")


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope, send, message: str) -> None:
    count_refusal(scope["method"], scope["path"], "too_large")
    body = orjson.dumps({"error": message, "details": []})
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class StatementTimeoutAnswer:
    """A statement that ran past the statement timeout outside the django-ninja API (which
    answers it itself) is a 503, not a 500: in the Prometheus API's own error shape under
    ``/prometheus/`` (its ``timeout`` error), as plain text elsewhere."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not (
            isinstance(exception, OperationalError)
            and isinstance(exception.__cause__, QueryCanceled)
        ):
            return None
        limit = settings.DATABASE_STATEMENT_TIMEOUT["web"]
        logger.warning(
            "%s %s hit the statement timeout: %s", request.method, request.path, exception
        )
        message = f"the query ran longer than {limit} s; ask for a shorter range or fewer series"
        if request.path_info.startswith("/prometheus/"):
            body = {"status": "error", "errorType": "timeout", "error": message}
            return JsonResponse(body, status=503)
        return HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
