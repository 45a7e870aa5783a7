"""The one HTTP API object: each app contributes a router; errors share one JSON envelope."""

import logging

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DataError, InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.renderers import BaseRenderer
from psycopg.errors import QueryCanceled

from alerts.api import router as alerts_router
from alerts.config_api import router as alerting_config_router
from api.auth import ScopeByMethod
from api.metrics import count_refusal
from checks.api import router as checks_router
from dashboard.api import router as analytics_router
from ingestion.api import router as ingestion_router
from ingestion.errors import ApiError
from ingestion.rest import router as rest_router
from instances.json_values import writable_json

logger = logging.getLogger(__name__)

STORAGE_RETRY_AFTER_SECONDS = 5


class ORJSONRenderer(BaseRenderer):
    """Writes answers with orjson; a stored value it cannot write (an integer beyond 64 bits,
    nesting beyond its limit) is written as a string and logged, never a 500 for the list."""

    media_type = "application/json"

    def render(self, request, data, *, response_status):
        try:
            return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError as error:
            writable, replaced = writable_json(data)
            logger.error(
                "%s %s: wrote %d value(s) as strings (%s): %s",
                request.method,
                request.path,
                len(replaced),
                error,
                ", ".join(path[:100] for path in replaced[:20]),
            )
            return orjson.dumps(writable, option=orjson.OPT_SERIALIZE_NUMPY)


api = NinjaAPI(
    title="Vigil API",
    version="1",
    description=(
        "Ingest and query monitoring data. Send `Authorization: Bearer <token>`; the token's "
        "scopes say what it may do: `ingest` pushes samples and alerts for its agent ids, "
        "`read` reads, `manage` changes and deletes."
    ),
    auth=ScopeByMethod(),
    renderer=ORJSONRenderer(),
    urls_namespace="api",
    docs_url="/docs",
)


def _error_response(request, error: ApiError):
    count_refusal(request.method, request.path_info, error.reason)
    response = api.create_response(request, error.body(), status=error.status)
    for header, value in error.headers.items():
        response[header] = value
    return response


@api.exception_handler(ApiError)
def api_error(request, error: ApiError):
    return _error_response(request, error)


@api.exception_handler(ValidationError)
def validation_error(request, error: ValidationError):
    details = [
        {
            "index": None,
            "field": _field_of(tuple(item.get("loc", ()))),
            "message": item.get("msg", "invalid").removeprefix("Value error, "),
        }
        for item in error.errors
    ]
    return _error_response(request, ApiError(400, "invalid request", details))


def _field_of(loc: tuple) -> str:
    """``("body", "payload", "name")`` → ``name``: the client's field, not the view's parameter."""
    parts = loc[2:] if loc[:1] == ("body",) and len(loc) > 2 else loc[1:]
    return ".".join(str(part) for part in parts)


@api.exception_handler(HttpError)
def ninja_refusal(request, error: HttpError):
    # django-ninja's own refusals, e.g. a body that is not JSON at all.
    return _error_response(request, ApiError(error.status_code, str(error)))


@api.exception_handler(AuthenticationError)
def authentication_error(request, error):
    return _error_response(request, ApiError(401, "missing or invalid bearer token"))


@api.exception_handler(PermissionDenied)
def not_allowed(request, error):
    return _error_response(request, ApiError(403, str(error) or "this token may not do that"))


@api.exception_handler(Http404)
def not_found(request, error):
    return _error_response(request, ApiError(404, str(error) or "not found"))


@api.exception_handler(RequestDataTooBig)
def too_big(request, error):
    return _error_response(request, ApiError(413, "request body too large"))


@api.exception_handler(DataError)
def unstorable_value(request, error):
    # SQLSTATE class 22 is raised by the values themselves, e.g. a NUL character in a string.
    message = str(error).splitlines()[0]
    return _error_response(request, ApiError(400, f"a value cannot be stored: {message}"))


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def storage_unavailable(request, error):
    if isinstance(error.__cause__, QueryCanceled):
        return statement_timeout(request, error)
    # The client only learns to retry; the operator needs the reason (e.g. too many clients).
    logger.warning("%s %s answered 503: %s", request.method, request.path, error)
    return _error_response(
        request,
        ApiError(
            503,
            "storage unavailable, retry later",
            headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
        ),
    )


def statement_timeout(request, error):
    """A statement ran past the web's statement timeout: a read asked for too much (422, a
    retry cannot help); a write may have waited on a lock (503, retry later)."""
    limit = settings.DATABASE_STATEMENT_TIMEOUT["web"]
    logger.warning("%s %s hit the statement timeout: %s", request.method, request.path, error)
    if request.method in ("GET", "HEAD"):
        message = f"the query ran longer than {limit} s; ask for a shorter range or fewer series"
        return _error_response(request, ApiError(422, message, reason="too_expensive"))
    return _error_response(
        request,
        ApiError(
            503,
            f"storage busy: the write waited longer than {limit} s, retry later",
            headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
        ),
    )


api.add_router("/", ingestion_router)
api.add_router("/", rest_router)
api.add_router("/", alerts_router)
api.add_router("/", analytics_router)
api.add_router("/", checks_router)
api.add_router("/", alerting_config_router)
