"""Bearer-token authentication and per-token rate limits for the API."""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from ninja.security import HttpBearer

from ingestion.errors import ApiError
from ingestion.models import IngestToken

logger = logging.getLogger(__name__)

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
RATE_WINDOW_SECONDS = 60


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>``: a live token; writes need a write-scoped token."""

    def authenticate(self, request, token: str) -> IngestToken:
        ingest_token = IngestToken.authenticate(token) if token else None
        if ingest_token is None:
            raise ApiError(401, "invalid or revoked token")
        if request.method not in READ_METHODS and not ingest_token.can_write:
            raise ApiError(403, "this token is read-only")
        enforce_rate_limit(ingest_token)
        return ingest_token


def enforce_rate_limit(token: IngestToken) -> None:
    """A fixed one-minute window per token, counted in Redis.

    When Redis is unreachable the limit is not enforced: storing data matters more.
    """
    limit = settings.INGEST_RATE_LIMIT_PER_MINUTE
    window = int(time.time() // RATE_WINDOW_SECONDS)
    key = f"ratelimit:token:{token.pk}:{window}"
    try:
        cache.add(key, 0, timeout=RATE_WINDOW_SECONDS * 2)
        count = cache.incr(key)
    except Exception as error:
        logger.warning("rate limit not enforced, Redis unreachable: %s", error)
        return
    if count > limit:
        retry_after = RATE_WINDOW_SECONDS - int(time.time()) % RATE_WINDOW_SECONDS
        raise ApiError(
            429,
            f"rate limit of {limit} requests per minute exceeded",
            headers={"Retry-After": str(max(retry_after, 1))},
        )
