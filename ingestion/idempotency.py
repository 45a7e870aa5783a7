"""Answers to batches sent with an ``Idempotency-Key``, kept so a retry gets the same answer.

Storage is idempotent on its own (a (series, ts) is stored once); the key only spares a retried
batch the work. Without Redis the key is ignored and storage still keeps the data single.
"""

import hashlib
import logging

from django.core.cache import cache

logger = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 200


def _cache_key(token_id: int, key: str) -> str:
    return f"idempotency:{token_id}:{hashlib.sha256(key.encode()).hexdigest()}"


def recall(token_id: int, key: str | None) -> dict | None:
    if not key:
        return None
    try:
        return cache.get(_cache_key(token_id, key))
    except Exception as error:
        logger.warning("idempotency lookup skipped, Redis unreachable: %s", error)
        return None


def remember(token_id: int, key: str | None, answer: dict) -> None:
    if not key:
        return
    try:
        cache.set(_cache_key(token_id, key), answer, timeout=KEEP_SECONDS)
    except Exception as error:
        logger.warning("idempotency key not kept, Redis unreachable: %s", error)
