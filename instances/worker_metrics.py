"""Figures counted in Celery workers and shown on the web processes' /metrics.

A process-local prometheus_client metric counted in a worker never shows on /metrics, which web
processes answer, so each app keeps such figures in one Redis hash and a collector registered
when the app loads reads them back at scrape time. Recording is best effort: a Redis outage
never fails the work being counted.
"""

import functools
import logging

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


class SharedFigures:
    """Numbers under one Redis hash ``key``, added to or set by any process."""

    def __init__(self, key: str):
        self.key = key

    def add(self, amounts: dict[str, float]) -> None:
        """Add each amount to its field (a counter, or a histogram's sum, count and buckets)."""
        self._write(amounts, "hincrbyfloat")

    def set(self, values: dict[str, float]) -> None:
        """Overwrite each field (a gauge)."""
        self._write(values, "hset")

    def _write(self, values: dict[str, float], command: str) -> None:
        try:
            pipe = _redis().pipeline()
            for field, value in values.items():
                getattr(pipe, command)(self.key, field, value)
            pipe.execute()
        except redis.RedisError as error:
            logger.warning("could not record %s in %s: %s", ", ".join(values), self.key, error)

    def read(self) -> dict[str, float] | None:
        """Every field, or None when Redis cannot be reached."""
        try:
            stored = _redis().hgetall(self.key)
        except redis.RedisError:
            return None
        return {field.decode(): float(value) for field, value in stored.items()}
