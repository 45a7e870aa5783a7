"""How Vigil writes moments: in ISO 8601 UTC (as JavaScript's toISOString) or as epoch
milliseconds. The API's own types and list shape are in ``api/formats.py``."""

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso8601(moment: datetime | None) -> str | None:
    """``2026-01-17T20:00:00.000Z``, or None for no moment."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since the epoch."""
    return (moment - EPOCH) // timedelta(milliseconds=1)
