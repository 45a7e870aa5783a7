"""The cache's serializer: JSON, so a value planted in Redis is data, never code."""

import json

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
