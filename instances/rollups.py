"""Rollups: 1-minute and 1-hour min, max, sum, count and last of every series.

A refresh reads only the samples stamped since its watermark (less the grace window, which folds
in samples that arrived a little late) and recomputes the buckets they fall in, whole, from the
samples (1m) and from the 1m rollups (1h): running it twice gives the same rows. Minutes that got
samples older than the grace window are queued by the write path in ``rollup_late`` and
recomputed here too. A first refresh reads every stored day, a day per transaction, so a large
backfill commits as it goes and resumes where it stopped.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from instances import store
from instances.store import MINUTE, ROLLUP_1H, ROLLUP_1M, SAMPLES_TABLE

logger = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# The most samples time a refresh reads in one transaction (a day: one samples partition).
CHUNK = timedelta(days=1)
LOCK = "hashtext('vigil.rollups')"

_UPSERT = (
    " ON CONFLICT (series_id, bucket) DO UPDATE SET min = EXCLUDED.min, max = EXCLUDED.max,"
    " sum = EXCLUDED.sum, count = EXCLUDED.count, last = EXCLUDED.last"
)
# 1-minute buckets from the samples in [%(start)s, %(end)s).
_MINUTES_FROM_SAMPLES = (
    f"INSERT INTO {ROLLUP_1M.name} (series_id, bucket, min, max, sum, count, last) "
    "SELECT series_id, date_bin('1 minute', ts, 'epoch') AS minute, min(value), max(value), "
    "sum(value), count(*), (array_agg(value ORDER BY ts DESC))[1] "
    f"FROM {SAMPLES_TABLE} WHERE ts >= %(start)s AND ts < %(end)s "
    "GROUP BY series_id, minute" + _UPSERT
)
# 1-hour buckets from the 1-minute ones in [%(start)s, %(end)s).
_HOURS_FROM_MINUTES = (
    f"INSERT INTO {ROLLUP_1H.name} (series_id, bucket, min, max, sum, count, last) "
    "SELECT series_id, date_bin('1 hour', bucket, 'epoch') AS hour, min(min), max(max), "
    "sum(sum), sum(count), (array_agg(last ORDER BY bucket DESC))[1] "
    f"FROM {ROLLUP_1M.name} WHERE bucket >= %(start)s AND bucket < %(end)s "
    "GROUP BY series_id, hour" + _UPSERT
)


@dataclass
class RefreshReport:
    """What one refresh did."""

    start: datetime | None = None
    end: datetime | None = None
    minute_rows: int = 0
    hour_rows: int = 0
    late_minutes: int = 0
    chunks: list[tuple[datetime, datetime]] = field(default_factory=list)


def refresh_rollups(now: datetime | None = None) -> RefreshReport | None:
    """Bring both rollups up to ``now``; None when another refresh holds the lock."""
    now = now or datetime.now(UTC)
    with _refresh_lock() as locked:
        if not locked:
            logger.info("rollup refresh skipped: another refresh is running")
            return None
        report = RefreshReport(end=now)
        report.late_minutes = _recompute_late_minutes()
        for start, end in _chunks(now):
            with transaction.atomic():
                minutes, hours = _recompute(start, end)
                _set_watermark(end)
            report.start = report.start or start
            report.minute_rows += minutes
            report.hour_rows += hours
            report.chunks.append((start, end))
    logger.info(
        "rollups refreshed from %s to %s: %d minute rows, %d hour rows, %d late minutes",
        report.start,
        report.end,
        report.minute_rows,
        report.hour_rows,
        report.late_minutes,
    )
    return report


def _grace() -> timedelta:
    return timedelta(seconds=settings.ROLLUP_GRACE_SECONDS)


@contextmanager
def _refresh_lock() -> Iterator[bool]:
    """A session advisory lock, so one refresh runs at a time; a dead worker's lock goes with
    its connection."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({LOCK})")
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({LOCK})")


def _chunks(now: datetime) -> list[tuple[datetime, datetime]]:
    """The time ranges to read, each at most a day: from the watermark less the grace window to
    ``now``; on a first refresh, every stored day (empty days between are skipped)."""
    watermark = store.rollup_watermark(ROLLUP_1M)
    if watermark is None:
        days = sorted(
            datetime.combine(day, datetime.min.time(), UTC)
            for day in map(store.SAMPLES.partition_start, store.list_partitions())
            if day is not None
        )
        return [(day, min(day + CHUNK, now)) for day in days if day < now]
    chunks, start = [], store.floor_time(watermark - _grace(), MINUTE)
    while start < now:
        chunks.append((start, min(start + CHUNK, now)))
        start = chunks[-1][1]
    return chunks


def _ensure_rollup_partitions(start: datetime, end: datetime) -> None:
    days = []
    day = start.date()
    while day <= end.date():
        days.append(day)
        day += timedelta(days=1)
    for table in (ROLLUP_1M, ROLLUP_1H):
        store.ensure_partitions(days, table)


def _recompute(start: datetime, end: datetime) -> tuple[int, int]:
    """Recompute the minutes from ``start`` (a whole minute) to ``end``, then the hours
    holding them; returns the rows written to each rollup."""
    hour_start = store.floor_time(start, HOUR)
    _ensure_rollup_partitions(hour_start, end)
    with connection.cursor() as cursor:
        cursor.execute(_MINUTES_FROM_SAMPLES, {"start": start, "end": end})
        minutes = cursor.rowcount
        cursor.execute(_HOURS_FROM_MINUTES, {"start": hour_start, "end": end})
        return minutes, cursor.rowcount


def _recompute_late_minutes() -> int:
    """Recompute the queued late minutes, and their hours, in one transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM rollup_late RETURNING series_id, bucket")
        late = cursor.fetchall()
        if not late:
            return 0
        minutes = sorted({bucket for _, bucket in late})
        _ensure_rollup_partitions(store.floor_time(minutes[0], HOUR), minutes[-1])
        cursor.execute(
            f"INSERT INTO {ROLLUP_1M.name} (series_id, bucket, min, max, sum, count, last) "
            "SELECT x.series_id, l.bucket, min(x.value), max(x.value), sum(x.value), count(*), "
            "(array_agg(x.value ORDER BY x.ts DESC))[1] "
            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS l(series_id, bucket) "
            f"JOIN {SAMPLES_TABLE} x ON x.series_id = l.series_id "
            "AND x.ts >= l.bucket AND x.ts < l.bucket + interval '1 minute' "
            "GROUP BY x.series_id, l.bucket" + _UPSERT,
            [[series_id for series_id, _ in late], [bucket for _, bucket in late]],
        )
        hours = sorted({(series_id, store.floor_time(bucket, HOUR)) for series_id, bucket in late})
        cursor.execute(
            f"INSERT INTO {ROLLUP_1H.name} (series_id, bucket, min, max, sum, count, last) "
            "SELECT m.series_id, h.bucket, min(m.min), max(m.max), sum(m.sum), sum(m.count), "
            "(array_agg(m.last ORDER BY m.bucket DESC))[1] "
            "FROM unnest(%s::bigint[], %s::timestamptz[]) AS h(series_id, bucket) "
            f"JOIN {ROLLUP_1M.name} m ON m.series_id = h.series_id "
            "AND m.bucket >= h.bucket AND m.bucket < h.bucket + interval '1 hour' "
            "GROUP BY m.series_id, h.bucket" + _UPSERT,
            [[series_id for series_id, _ in hours], [bucket for _, bucket in hours]],
        )
    return len(late)


def _set_watermark(upto: datetime) -> None:
    with connection.cursor() as cursor:
        for table in (ROLLUP_1M, ROLLUP_1H):
            cursor.execute(
                "INSERT INTO rollup_watermark (resolution, upto) VALUES (%s, %s) "
                "ON CONFLICT (resolution) DO UPDATE SET upto = EXCLUDED.upto",
                [table.name, upto],
            )
