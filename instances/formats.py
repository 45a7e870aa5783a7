"""How the API writes things: moments in ISO 8601 UTC (as JavaScript's toISOString) or epoch
milliseconds, and lists as ``{"items": [...], "count": N}``."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import Field, StringConstraints

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LIST_LIMIT = 1000
# A list endpoint's ``limit`` query parameter: default 100 (given where it is used), at most 1000.
ListLimit = Annotated[int, Field(ge=1, le=MAX_LIST_LIMIT)]
# An ``instanceId`` or ``agentId`` in a request body: the instance's uuid or its agent's id.
InstanceRef = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def iso8601(moment: datetime | None) -> str | None:
    """``2026-01-17T20:00:00.000Z``, or None for no moment."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def api_list(objects: Sequence) -> dict:
    """A list answer of objects that have ``to_api()``."""
    return {"items": [item.to_api() for item in objects], "count": len(objects)}
