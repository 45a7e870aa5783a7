"""Rollups: 1-minute, 5-minute and 1-hour min, max, sum, count and last of every series.

A refresh reads only the samples stamped since its watermark (less the grace window, which folds
in samples that arrived a little late) and recomputes the buckets they fall in, whole: 1m from the
samples, 5m from 1m, 1h from 5m. Running it twice gives the same rows, and a row whose values did
not change is not rewritten. Minutes that got samples older than the grace window are queued by
the write path in ``rollup_late`` and recomputed here too. A first refresh reads every stored day,
a day per transaction, so a large backfill commits as it goes and resumes where it stopped.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from instances import store
from instances.store import MINUTE, ROLLUP_LEVELS, SAMPLES_TABLE, RollupLevel

logger = logging.getLogger(__name__)

# The most samples time a refresh reads in one transaction (a day: one samples partition).
CHUNK = timedelta(days=1)
LOCK = "hashtext('vigil.rollups')"
# Aggregating a day of samples in memory rather than spilling the hash table to disk.
WORK_MEM = "64MB"
COLUMNS = ("min", "max", "sum", "count", "last")


def _upsert_sql(target: str, select: str) -> str:
    """INSERT the rows of ``select`` into the rollup ``target``, replacing a bucket already there
    only when a value changed (re-reading the grace window mostly finds none)."""
    old = ", ".join(f"{target}.{column}" for column in COLUMNS)
    new = ", ".join(f"EXCLUDED.{column}" for column in COLUMNS)
    return (
        f"INSERT INTO {target} (series_id, bucket, {', '.join(COLUMNS)}) {select} "
        "ON CONFLICT (series_id, bucket) DO UPDATE SET "
        + ", ".join(f"{column} = EXCLUDED.{column}" for column in COLUMNS)
        + f" WHERE ({old}) IS DISTINCT FROM ({new})"
    )


def _source(level: RollupLevel) -> tuple[str, str, str]:
    """(table, time column, aggregates) that ``level``'s buckets are computed from."""
    if level.source is None:
        return SAMPLES_TABLE, "ts", store.SAMPLE_AGGREGATES
    return level.source.table.name, "bucket", store.ROLLUP_AGGREGATES


def _range_sql(level: RollupLevel) -> str:
    """``level``'s buckets from its source rows in [%(start)s, %(end)s)."""
    table, column, aggregates = _source(level)
    return _upsert_sql(
        level.table.name,
        f"SELECT series_id, date_bin(%(width)s, {column}, 'epoch') AS b, {aggregates} "
        f"FROM {table} WHERE {column} >= %(start)s AND {column} < %(end)s GROUP BY series_id, b",
    )


def _buckets_sql(level: RollupLevel) -> str:
    """``level``'s buckets listed in %(ids)s / %(buckets)s, from their source rows."""
    table, column, aggregates = _source(level)
    return _upsert_sql(
        level.table.name,
        f"SELECT l.series_id, l.b, {aggregates} "
        "FROM unnest(%(ids)s::bigint[], %(buckets)s::timestamptz[]) AS l(series_id, b) "
        f"JOIN {table} USING (series_id) WHERE {column} >= l.b AND {column} < l.b + %(width)s "
        "GROUP BY l.series_id, l.b",
    )


@dataclass
class RefreshReport:
    """What one refresh did: the time read and the rows written to each rollup."""

    start: datetime | None = None
    end: datetime | None = None
    rows: dict[str, int] = field(default_factory=dict)
    late_minutes: int = 0
    chunks: list[tuple[datetime, datetime]] = field(default_factory=list)


def refresh_rollups(now: datetime | None = None) -> RefreshReport | None:
    """Bring every rollup up to ``now``; None when another refresh holds the lock."""
    now = now or datetime.now(UTC)
    with _refresh_lock() as locked:
        if not locked:
            logger.info("rollup refresh skipped: another refresh is running")
            return None
        report = RefreshReport(end=now, rows={level.name: 0 for level in ROLLUP_LEVELS})
        report.late_minutes = _recompute_late_minutes()
        for start, end in _chunks(now):
            with transaction.atomic():
                for name, rows in _recompute(start, end).items():
                    report.rows[name] += rows
                _set_watermark(end)
            report.start = report.start or start
            report.chunks.append((start, end))
    logger.info(
        "rollups refreshed from %s to %s: %s rows, %d late minutes",
        report.start,
        report.end,
        ", ".join(f"{rows} {name}" for name, rows in report.rows.items()),
        report.late_minutes,
    )
    return report


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
    watermark = store.rollup_watermark()
    if watermark is None:
        days = sorted(
            datetime.combine(day, datetime.min.time(), UTC)
            for day in map(store.SAMPLES.partition_start, store.list_partitions())
            if day is not None
        )
        return [(day, min(day + CHUNK, now)) for day in days if day < now]
    grace = timedelta(seconds=settings.ROLLUP_GRACE_SECONDS)
    chunks, start = [], store.floor_time(watermark - grace, MINUTE)
    while start < now:
        chunks.append((start, min(start + CHUNK, now)))
        start = chunks[-1][1]
    return chunks


def _ensure_rollup_partitions(start: datetime, end: datetime) -> None:
    days = [start.date() + timedelta(days=n) for n in range((end.date() - start.date()).days + 1)]
    for level in ROLLUP_LEVELS:
        store.ensure_partitions(days, level.table)


def _recompute(start: datetime, end: datetime) -> dict[str, int]:
    """Recompute each rollup's buckets holding [``start``, ``end``), finest first (each is made
    from the one before); returns the rows written to each."""
    coarsest = ROLLUP_LEVELS[-1].width
    _ensure_rollup_partitions(store.floor_time(start, coarsest), end)
    rows = {}
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        for level in ROLLUP_LEVELS:
            params = {"width": level.width, "start": store.floor_time(start, level.width)}
            cursor.execute(_range_sql(level), {**params, "end": end})
            rows[level.name] = cursor.rowcount
    return rows


def _recompute_late_minutes() -> int:
    """Recompute the queued late minutes, and the coarser buckets holding them, in one
    transaction; returns how many minutes."""
    with transaction.atomic(), connection.cursor() as cursor:
        if store.rollup_watermark() is None:
            # A first refresh reads every stored day anyway.
            cursor.execute("TRUNCATE rollup_late")
            return 0
        cursor.execute("DELETE FROM rollup_late RETURNING series_id, bucket")
        late = cursor.fetchall()
        if not late:
            return 0
        coarsest = ROLLUP_LEVELS[-1].width
        _ensure_rollup_partitions(
            store.floor_time(min(bucket for _, bucket in late), coarsest),
            max(bucket for _, bucket in late),
        )
        for level in ROLLUP_LEVELS:
            buckets = sorted({(sid, store.floor_time(bucket, level.width)) for sid, bucket in late})
            cursor.execute(
                _buckets_sql(level),
                {
                    "width": level.width,
                    "ids": [series_id for series_id, _ in buckets],
                    "buckets": [bucket for _, bucket in buckets],
                },
            )
    return len(late)


def _set_watermark(upto: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rollup_watermark (resolution, upto) VALUES ('rollups', %s) "
            "ON CONFLICT (resolution) DO UPDATE SET upto = EXCLUDED.upto",
            [upto],
        )
