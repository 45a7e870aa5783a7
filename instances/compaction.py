"""Compaction: each closed day of raw samples becomes compressed blocks, a row per series and day.

A day is compacted once it ended ``COMPACTION_GRACE_HOURS`` ago: in one transaction its raw
samples are merged with the blocks of that day already stored (late samples written after an
earlier compaction), re-encoded, and deleted from the raw partition, so a reader sees the day
either raw or compacted, never both and never neither. The emptied partition is then detached and
dropped. A late sample into a compacted day recreates the day's raw partition (the write path
makes partitions on demand), and the next compaction merges it.

Blocks (migration 0010) hold timestamps as microsecond deltas and values as plain float8 arrays,
which TOAST compresses (lz4 where the server has it); readers get them through
``store.samples_between`` in SQL and ``store.block_arrays`` in numpy.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import connection, transaction

from instances import store
from instances.formats import EPOCH
from instances.store import BLOCKS, MICROSECOND, SAMPLES, epoch_us

logger = logging.getLogger(__name__)

LOCK = "hashtext('vigil.compaction')"
# A day being compacted keeps its writers waiting; one that cannot be locked this soon (a long
# reader holds it) is left for the next run rather than queueing ingest behind it.
LOCK_TIMEOUT = "10s"
DAY = timedelta(days=1)


@dataclass
class CompactionReport:
    """What a run compacted: per day, the raw samples folded into blocks."""

    days: dict[date, int] = field(default_factory=dict)


def compactable_days(now: datetime | None = None) -> list[date]:
    """Days with a raw partition that ended at least the grace window before ``now``."""
    now = now or datetime.now(UTC)
    closed_before = now - timedelta(hours=settings.COMPACTION_GRACE_HOURS)
    days = map(SAMPLES.partition_start, store.list_partitions(SAMPLES))
    return sorted(day for day in days if day is not None and _midnight(day + DAY) <= closed_before)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), UTC)


def compact_samples(
    now: datetime | None = None, progress: Callable[[date, str], None] | None = None
) -> CompactionReport | None:
    """Compact every closed day still (or again) holding raw samples, oldest first; None when
    another compaction is running. ``progress`` is told each day's stages as they start."""
    with store.session_lock(LOCK) as locked:
        if not locked:
            logger.info("compaction skipped: another is running")
            return None
        report = CompactionReport()
        for day in _detached_days():
            _drop_raw_partition(day)
        for day in compactable_days(now):
            report.days[day] = compact_day(day, progress and partial(progress, day))
        return report


def compact_day(day: date, progress: Callable[[str], None] | None = None) -> int:
    """Fold the raw samples of ``day`` into its blocks, then drop its raw partition; returns how
    many raw samples were folded. ``progress`` is told each stage as it starts."""
    progress = progress or (lambda stage: None)
    partition = SAMPLES.partition_name(day)
    start = _midnight(day)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        # Writers of this day wait until the blocks and the raw rows change places; readers go on
        # (they see the raw rows until this commits, the blocks after).
        cursor.execute(f"LOCK TABLE {partition} IN EXCLUSIVE MODE")
        store.ensure_partitions([day], BLOCKS)
        progress("encoding blocks")
        cursor.execute(
            _MERGE_SQL.format(partition=partition),
            {"day": start, "next": start + DAY, "day_us": (start - EPOCH) // MICROSECOND},
        )
        progress("removing the raw samples")
        cursor.execute(f"DELETE FROM {partition}")
        folded = cursor.rowcount
        progress("committing")
    progress("dropping the raw partition")
    _drop_raw_partition(day)
    logger.info("compacted %s: %d raw samples into blocks", day, folded)
    return folded


# The day's raw rows and the samples of its blocks for the same series, one row per (series, ts)
# (a block's sample is kept over a raw one at the same time: the first stored wins, as on the raw
# table's primary key), encoded again into one block per series, with where each hour starts in it
# (migration 0011): for an hour without samples, where the next hour with some starts.
_MERGE_SQL = (
    "WITH merged AS ("
    "  SELECT DISTINCT ON (series_id, ts) series_id, ts, value FROM ("
    "    SELECT series_id, ts, value, false AS raw FROM block_samples_between("
    "      (SELECT array_agg(DISTINCT series_id) FROM {partition}), %(day)s, %(next)s)"
    "    UNION ALL SELECT series_id, ts, value, true FROM {partition}"
    "  ) AS both_kinds ORDER BY series_id, ts, raw"
    "), encoded AS ("
    "  SELECT series_id, ts, value, us, us - coalesce(previous_us, %(day_us)s) AS delta,"
    "  coalesce(previous_us, %(day_us)s) - %(day_us)s AS base,"
    "  row_number() OVER (PARTITION BY series_id ORDER BY ts) AS n,"
    "  (us - %(day_us)s) / 3600000000 AS hour FROM ("
    "    SELECT *, " + epoch_us("ts") + " AS us,"
    "    lag(" + epoch_us("ts") + ") OVER (PARTITION BY series_id ORDER BY ts) AS previous_us"
    "    FROM merged) AS stamped"
    "), blocks AS ("
    "  SELECT series_id, count(*) AS count, min(ts) AS first_ts, max(ts) AS last_ts,"
    "  array_agg(delta ORDER BY ts) AS deltas, array_agg(value ORDER BY ts) AS sample_values"
    "  FROM encoded GROUP BY series_id"
    "), hours AS ("
    "  SELECT series_id, hour, min(n) AS first_n, min(base) AS base"
    "  FROM encoded GROUP BY series_id, hour"
    "), hour_index AS ("
    "  SELECT series_id, array_agg(first_n ORDER BY hour) AS starts,"
    "  array_agg(base ORDER BY hour) AS bases FROM ("
    "    SELECT b.series_id, h.hour, coalesce(min(p.first_n) OVER later, b.count + 1) AS first_n,"
    "    coalesce(min(p.base) OVER later, 0) AS base"
    "    FROM blocks b CROSS JOIN generate_series(0, 23) AS h(hour)"
    "    LEFT JOIN hours p ON p.series_id = b.series_id AND p.hour = h.hour"
    "    WINDOW later AS (PARTITION BY b.series_id ORDER BY h.hour DESC)"
    "  ) AS grid GROUP BY series_id"
    ") "
    "INSERT INTO sample_blocks (series_id, day, count, first_ts, last_ts, ts_deltas_us, "
    "sample_values, hour_starts, hour_bases_us) "
    "SELECT b.series_id, %(day)s, b.count, b.first_ts, b.last_ts, b.deltas, b.sample_values, "
    "i.starts, i.bases FROM blocks b JOIN hour_index i USING (series_id) "
    "ON CONFLICT (series_id, day) DO UPDATE SET count = EXCLUDED.count, "
    "first_ts = EXCLUDED.first_ts, last_ts = EXCLUDED.last_ts, "
    "ts_deltas_us = EXCLUDED.ts_deltas_us, sample_values = EXCLUDED.sample_values, "
    "hour_starts = EXCLUDED.hour_starts, hour_bases_us = EXCLUDED.hour_bases_us"
)


def _detached_days() -> list[date]:
    """Days whose raw partition a compaction detached but did not drop (its worker died between
    the two): the table would stop the day's partition from being made again."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND NOT relispartition "
            "AND relname LIKE %s AND relnamespace = 'public'::regnamespace",
            [SAMPLES.name + r"\_p%"],
        )
        names = [name for (name,) in cursor.fetchall()]
    return sorted(day for day in map(SAMPLES.partition_start, names) if day is not None)


def _drop_raw_partition(day: date) -> None:
    """Detach and drop the (emptied) raw partition of ``day`` without blocking other days'
    writers. A sample written into it between the compaction and the detach is moved to a new
    partition of the day first, for the next compaction to merge."""
    partition = SAMPLES.partition_name(day)
    store.detach_partition(SAMPLES, partition)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT series_id, ts, value FROM {partition}")
        stragglers = cursor.fetchall()
        cursor.execute(f"DROP TABLE {partition}")
        if stragglers:
            store.write_samples(stragglers)
    logger.info("dropped the raw partition %s", partition)
