"""Numbers as a person reads them: durations as ``2m 30s``, quantities in their unit's scale
(``1.93 GB``, ``12.4 MB/s``, ``45 %``, ``250 ms``), moments as ``3 minutes ago``."""

import math
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

DURATION_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
SI_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
BYTE_UNITS = {"bytes", "byte", "b"}
BYTE_RATE_UNITS = {"bytes/s", "b/s", "bytes_per_second"}
PERCENT_UNITS = {"percent", "%"}
SECOND_UNITS = {"seconds", "second", "s"}
MILLISECOND_UNITS = {"milliseconds", "ms"}


def duration(value: timedelta | float | None, parts: int = 2) -> str:
    """``1m``, ``2m 30s``, ``1h 5m``, ``3d 4h`` (the ``parts`` largest units, whole seconds);
    ``0s`` for nothing, ``""`` for None; seconds may be given as a number."""
    if value is None:
        return ""
    seconds = round(value.total_seconds() if isinstance(value, timedelta) else value)
    if seconds <= 0:
        return "0s"
    shown = []
    for unit, size in DURATION_UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            shown.append(f"{count}{unit}")
    return " ".join(shown[:parts])


def quantity(value: float | None, unit: str = "") -> str:
    """``value`` in ``unit`` scaled for reading: bytes as kB/MB/GB (SI), seconds as ms/s or a
    duration, percentages as ``45 %``, other units as a number with three significant digits."""
    if value is None or not math.isfinite(value):
        return "—" if value is None else str(value)
    key = unit.lower()
    if key in PERCENT_UNITS:
        return f"{_significant(value)} %"
    if key in BYTE_UNITS:
        return _si(value, "B")
    if key in BYTE_RATE_UNITS:
        return _si(value, "B/s")
    if key in MILLISECOND_UNITS:
        return quantity(value / 1000, "s")
    if key in SECOND_UNITS:
        if abs(value) >= 60:
            return duration(value)
        if 0 < abs(value) < 1:
            return f"{_significant(value * 1000)} ms"
        return f"{_significant(value)} s"
    if abs(value) < 1e4:  # 1234 stays 1234; 12345 is 12.3k
        return f"{_significant(value)} {unit}".rstrip()
    size, prefix = next((size, prefix) for size, prefix in SI_PREFIXES if abs(value) >= size)
    return f"{_significant(value / size)}{prefix} {unit}".rstrip()


def _si(value: float, unit: str) -> str:
    for size, prefix in SI_PREFIXES:
        if abs(value) >= size:
            return f"{_significant(value / size)} {prefix}{unit}"
    return f"{_significant(value)} {unit}"


def _significant(value: float) -> str:
    """Three significant digits, no exponent and no trailing zeros: ``84.2``, ``1.93``, ``1230``."""
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def relative(when: datetime, now: datetime | None = None) -> str:
    """``just now``, ``3 minutes ago``, ``in 2 hours`` (the largest unit only)."""
    now = now or timezone.now()
    if abs((now - when).total_seconds()) < 60:
        return "just now"
    if when > now:
        return f"in {timeuntil(when, now, depth=1)}"
    return f"{timesince(when, now, depth=1)} ago"
