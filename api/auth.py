"""Bearer tokens, their scopes, and per-token rate limits.

Every API operation needs a token with a scope (PRODUCT.md section 8). Without ``auth=``, an
operation of the API takes the default: reads (GET, HEAD) need ``read``, anything else
``manage``. Declare it where it differs, or to say so::

    from api.auth import ingest_scope, manage_scope, read_scope

    @router.get("/checks", auth=read_scope)
    @router.post("/checks", auth=manage_scope)       # creates, changes, deletes: manage
    @router.post("/ingest", auth=ingest_scope)       # what an agent pushes: ingest

An ingest operation also checks the agent ids it pushes for with
``request.auth.check_push_for(agent_ids)`` (403 outside the token's patterns). Views outside
django-ninja (the Prometheus and Alertmanager APIs) are wrapped by ``readers_only`` and
``readers_and_managers`` in the URL configuration; a token's requests there count against
its rate limit too.
"""

import logging
import math
import os
import threading
import time
from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from ninja.security import HttpBearer

from accounts.models import client_ip
from accounts.permissions import Role, has_role
from ingestion.errors import ApiError
from ingestion.models import IngestToken

logger = logging.getLogger(__name__)

Scope = IngestToken.Scope
READ_METHODS = {"GET", "HEAD", "OPTIONS"}
RATE_WINDOW_SECONDS = 60


class TokenScope(HttpBearer):
    """``Authorization: Bearer <token>``: a live token holding one of ``scopes``."""

    def __init__(self, *scopes: str):
        super().__init__()
        self.scopes = scopes

    def required_scopes(self, request: HttpRequest) -> tuple[str, ...]:
        return self.scopes

    def authenticate(self, request: HttpRequest, token: str) -> IngestToken:
        ingest_token = IngestToken.authenticate(token, client_ip(request)) if token else None
        if ingest_token is None:
            raise ApiError(401, "invalid, expired or revoked token")
        needed = self.required_scopes(request)
        if not any(ingest_token.has_scope(scope) for scope in needed):
            raise ApiError(403, f"this token lacks the {' or '.join(needed)} scope")
        enforce_rate_limit(ingest_token)
        return ingest_token


class ScopeByMethod(TokenScope):
    """The API's default: ``read`` to read, ``manage`` to change anything."""

    def required_scopes(self, request: HttpRequest) -> tuple[str, ...]:
        return (Scope.READ,) if request.method in READ_METHODS else (Scope.MANAGE,)


ingest_scope = TokenScope(Scope.INGEST)
read_scope = TokenScope(Scope.READ)
manage_scope = TokenScope(Scope.MANAGE)
# Registering or updating an instance, or raising an alert: an agent's own (within its
# patterns) with ingest, anyone's with manage.
ingest_or_manage_scope = TokenScope(Scope.INGEST, Scope.MANAGE)


def check_push_for(request: HttpRequest, agent_ids) -> None:
    """403 unless the request's token may push under every one of ``agent_ids``: a manage
    token may; an ingest token only within its agent-id patterns."""
    if not request.auth.has_scope(Scope.MANAGE):
        request.auth.check_push_for(agent_ids)


def enforce_rate_limit(token: IngestToken) -> None:
    """A fixed one-minute window per token, counted in Redis.

    A process takes a token's requests from the window's count a hundredth of the limit at a
    time (at least one; one at a time while another thread of it is taking) and admits them as
    they come, so a busy token costs a Redis round trip every so many requests rather than each
    one. No more than the limit is ever admitted in a window; with several web processes a
    token may be refused a little early (by at most a hundredth of the limit for each other
    process holding requests it has not used yet).
    When Redis is unreachable the limit is not enforced: storing data matters more.
    """
    global _HELD_WINDOW
    limit = settings.INGEST_RATE_LIMIT_PER_MINUTE
    window = int(time.time() // RATE_WINDOW_SECONDS)
    key = f"ratelimit:token:{token.pk}:{window}"
    held = cache.make_key(key)
    with _HELD_LOCK:
        if window != _HELD_WINDOW:
            # What was held for a past window can never be admitted.
            _HELD.clear()
            _HELD_WINDOW = window
        if _HELD.get(held, 0) > 0:
            _HELD[held] -= 1
            return
        taking_ahead = held not in _TAKING
        _TAKING.add(held)
    taken = max(1, limit // 100) if taking_ahead else 1
    try:
        count = cache.count(key, timeout=RATE_WINDOW_SECONDS * 2, amount=taken)
    except Exception as error:
        logger.warning("rate limit not enforced, Redis unreachable: %s", error)
        return
    finally:
        if taking_ahead:
            with _HELD_LOCK:
                _TAKING.discard(held)
    granted = min(taken, limit - (count - taken))
    if granted <= 0:
        retry_after = math.ceil((window + 1) * RATE_WINDOW_SECONDS - time.time())
        raise ApiError(
            429,
            f"rate limit of {limit} requests per minute exceeded",
            headers={"Retry-After": str(max(retry_after, 1))},
        )
    if granted > 1:
        with _HELD_LOCK:
            _HELD[held] = _HELD.get(held, 0) + granted - 1


# Requests this process has taken from a token's count for the current window (by the
# window's Redis key) and not admitted yet, and the keys a thread is taking for now.
_HELD: dict[str, int] = {}
_HELD_WINDOW: int | None = None
_TAKING: set[str] = set()
_HELD_LOCK = threading.Lock()


def _forget_held() -> None:
    # A forked child (a Celery worker) must not admit what its parent holds as well, nor wait
    # on a take that its parent's thread was making.
    _HELD.clear()
    _TAKING.clear()


os.register_at_fork(after_in_child=_forget_held)


def token_of(request: HttpRequest) -> IngestToken | None:
    """The live token the request sends (bearer, or basic auth's password), if any."""
    return IngestToken.from_authorization(
        request.headers.get("Authorization", ""), client_ip(request)
    )


def may_read(request: HttpRequest, token: IngestToken | None = None) -> bool:
    """A Viewer's session, or a live token with the read scope (``token``, else the one the
    request sends)."""
    if has_role(request.user, Role.VIEWER):
        return True
    token = token or token_of(request)
    return token is not None and token.has_scope(Scope.READ)


def over_rate_limit(token: IngestToken | None) -> JsonResponse | None:
    """For views outside django-ninja: the 429 (with ``Retry-After``) of a token past its
    rate limit, else None."""
    if token is None:
        return None
    try:
        enforce_rate_limit(token)
    except ApiError as error:
        response = JsonResponse(error.body(), status=error.status)
        for header, value in error.headers.items():
            response[header] = value
        return response
    return None


def readers_and_managers(view):
    """For the Alertmanager API: reads as ``readers_only``; changes need a live token with the
    manage scope (a session is not enough: these endpoints take JSON from other programs and
    are not protected against cross-site requests). The token is ``request.auth``, as in the
    django-ninja API, so changes are audited with its name."""

    @login_not_required
    @wraps(view)
    def checked(request, *args, **kwargs):
        request.auth = token_of(request)
        if request.method in ("GET", "HEAD"):
            allowed = may_read(request, request.auth)
        else:
            allowed = request.auth is not None and request.auth.has_scope(Scope.MANAGE)
        if not allowed:
            status = 403 if request.auth is not None or may_read(request) else 401
            return JsonResponse(
                "send a token with the manage scope, or log in", status=status, safe=False
            )
        return over_rate_limit(request.auth) or view(request, *args, **kwargs)

    return checked


def readers_only(view):
    """For the Prometheus query API: a 401 in its JSON error shape unless ``may_read``."""

    @login_not_required
    @wraps(view)
    def checked(request, *args, **kwargs):
        token = token_of(request)
        if not may_read(request, token):
            response = JsonResponse(
                {"status": "error", "errorType": "unauthorized",
                 "error": "send Authorization: Bearer <token> with the read scope, or log in"},
                status=401,
            )  # fmt: skip
            response["WWW-Authenticate"] = 'Bearer realm="vigil"'
            return response
        return over_rate_limit(token) or view(request, *args, **kwargs)

    return checked
