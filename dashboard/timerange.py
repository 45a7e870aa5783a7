"""The time range a chart page shows, as the URL query carries it (range, start, end)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from django.utils import timezone

RANGES = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DEFAULT_RANGE = "1h"
CUSTOM = "custom"
# What <input type="datetime-local"> sends: a wall time in the user's time zone (the one active
# for the request, accounts/time_zones.py).
INPUT_FORMAT = "%Y-%m-%dT%H:%M"
# Auto-refresh choices: "live" follows the websocket, the others reload the charts over HTTP.
REFRESH_CHOICES = {"live": None, "30s": 30, "1m": 60, "5m": 300, "off": None}
DEFAULT_REFRESH = "live"


@dataclass(frozen=True)
class TimeRange:
    key: str
    start: datetime
    end: datetime

    @classmethod
    def from_query(cls, query, now: datetime | None = None) -> "TimeRange":
        """The range the query asks for; a bad or missing one falls back to the last hour."""
        now = now or timezone.now()
        key = query.get("range", DEFAULT_RANGE)
        if key == CUSTOM:
            start, end = _parse_input(query.get("start")), _parse_input(query.get("end"))
            if start and end and start < end:
                return cls(CUSTOM, start, end)
            # An incomplete custom range starts from the default, ready to be edited.
            return cls(CUSTOM, now - RANGES[DEFAULT_RANGE], now)
        if key not in RANGES:
            key = DEFAULT_RANGE
        return cls(key, now - RANGES[key], now)

    @property
    def is_relative(self) -> bool:
        """A "last N" range slides with time; a custom one stays put."""
        return self.key != CUSTOM

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def start_input(self) -> str:
        return timezone.localtime(self.start).strftime(INPUT_FORMAT)

    @property
    def end_input(self) -> str:
        return timezone.localtime(self.end).strftime(INPUT_FORMAT)

    def as_query(self) -> str:
        if self.is_relative:
            return urlencode({"range": self.key})
        return urlencode({"range": CUSTOM, "start": self.start_input, "end": self.end_input})


def _parse_input(text: str | None) -> datetime | None:
    try:
        wall = datetime.strptime(text or "", INPUT_FORMAT)
    except ValueError:
        return None
    return timezone.make_aware(wall).astimezone(UTC)


def refresh_choice(query) -> str:
    choice = query.get("refresh", DEFAULT_REFRESH)
    return choice if choice in REFRESH_CHOICES else DEFAULT_REFRESH
