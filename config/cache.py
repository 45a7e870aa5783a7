"""The cache's serializer (JSON, so a value planted in Redis is data, never code) and its
backend (one Redis connection pool per process)."""

import json
import threading
from functools import cached_property

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.core.serializers.json import DjangoJSONEncoder


class JsonSerializer:
    """Django's Redis serializer with JSON in place of pickle; integers stay raw so that
    ``incr`` keeps working on them."""

    def dumps(self, value: object) -> bytes | int:
        if type(value) is int:
            return value
        return json.dumps(value, cls=DjangoJSONEncoder).encode()

    def loads(self, data: bytes) -> object:
        try:
            return int(data)
        except ValueError:
            return json.loads(data)


class ProcessRedisClient(RedisCacheClient):
    """Django's Redis client, keeping its ``redis.Redis`` objects: the stock one makes one per
    command (a few hundred response callbacks registered each time). They are thread-safe."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, redis.Redis] = {}

    def get_client(self, key=None, *, write: bool = False) -> redis.Redis:
        index = self._get_connection_pool_index(write)
        if index not in self._clients:
            self._clients[index] = self._client(connection_pool=self._get_connection_pool(write))
        return self._clients[index]


class ProcessRedisCache(RedisCache):
    """Django's Redis cache with one client, so one connection pool, per process.

    Django keeps a cache object per request context, and under ASGI every request is a new
    context: the stock backend made a new pool, so a new Redis connection, for each request
    (a connect and a health check before the rate limit's first command). redis-py makes a
    new pool in a forked child itself.
    """

    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = ProcessRedisClient

    @cached_property
    def _cache(self) -> ProcessRedisClient:
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _CLIENTS_LOCK:
            if key not in _CLIENTS:
                _CLIENTS[key] = self._class(self._servers, **self._options)
            return _CLIENTS[key]

    def count(self, key: str, timeout: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter at ``key`` (from 0) and return it, in one round trip;
        the counter is dropped ``timeout`` seconds after its last count."""
        key = self.make_and_validate_key(key)
        pipeline = self._cache.get_client(key, write=True).pipeline(transaction=False)
        pipeline.incr(key, amount)
        pipeline.expire(key, timeout)
        return pipeline.execute()[0]


_CLIENTS: dict[tuple, ProcessRedisClient] = {}
_CLIENTS_LOCK = threading.Lock()
