"""Rollups: 1-minute, 5-minute and 1-hour min, max, sum, count and last of every series.

A refresh reads only the samples stamped since its watermark (less the grace window, which folds
in samples that arrived a little late) and recomputes the buckets they fall in, whole: 1m from the
samples, 5m from 1m, 1h from 5m. Running it twice gives the same rows, and a row whose values did
not change is not rewritten. Minutes that got samples older than the grace window are queued by
the write path in ``rollup_late`` and recomputed here too. A first refresh reads every stored day,
a day per transaction, so a large backfill commits as it goes and resumes where it stopped.

A statement that fails is tried again over halves of the series, down to single ones: a series
whose rollups cannot be computed fails alone, its minutes are queued in ``rollup_late`` to be
tried again at the next refresh, and the others and the watermark move on. Failures and the
watermark's lag are on /metrics, and each beat run records the lag as a sample of Vigil's own
instance, which the shipped "RollupsLagging" rule watches.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from instances import store
from instances.models import Instance
from instances.samples import samples_engine
from instances.store import MINUTE, ROLLUP_LEVELS, RollupLevel
from instances.worker_metrics import SharedFigures

logger = logging.getLogger(__name__)

# The most samples time a refresh reads in one transaction (a day: one samples partition).
CHUNK = timedelta(days=1)
LOCK = "hashtext('vigil.rollups')"
# Aggregating a day of samples in memory rather than spilling the hash table to disk.
WORK_MEM = "64MB"
COLUMNS = ("min", "max", "sum", "count", "last")
FIGURES = SharedFigures("vigil:metrics:rollups")
# A refresh's log line names at most this many of the series that failed.
FAILURES_LOGGED = 10
# The sample of Vigil's own instance that says how far the rollups lag behind now.
LAG_METRIC = "vigil_rollup_lag_seconds"


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


def _range_sql(level: RollupLevel, some_series: bool = False) -> str:
    """``level``'s buckets from its source rows in [%(start)s, %(end)s), of every series or
    (``some_series``) of those in %(ids)s. Samples are read raw and compacted alike."""
    if level.source is None:
        rows = (
            "samples_between(%(ids)s, %(start)s, %(end)s)"
            if some_series
            else "all_samples_between(%(start)s, %(end)s)"
        )
        column, aggregates, which = "ts", store.SAMPLE_AGGREGATES, ""
    else:
        rows, column, aggregates = level.source.table.name, "bucket", store.ROLLUP_AGGREGATES
        which = "AND series_id = ANY(%(ids)s) " if some_series else ""
        which = f"WHERE {column} >= %(start)s AND {column} < %(end)s {which}"
    return _upsert_sql(
        level.table.name,
        f"SELECT series_id, date_bin(%(width)s, {column}, 'epoch') AS b, {aggregates} "
        f"FROM {rows} {which} GROUP BY series_id, b",
    )


def _buckets_sql(level: RollupLevel) -> str:
    """``level``'s buckets listed in %(ids)s / %(buckets)s, from their source rows."""
    if level.source is None:
        rows = "samples_between(ARRAY[l.series_id], l.b, l.b + %(width)s)"
        aggregates = store.SAMPLE_AGGREGATES
    else:
        rows = (
            f"(SELECT * FROM {level.source.table.name} WHERE series_id = l.series_id "
            "AND bucket >= l.b AND bucket < l.b + %(width)s)"
        )
        aggregates = store.ROLLUP_AGGREGATES
    return _upsert_sql(
        level.table.name,
        f"SELECT l.series_id, l.b, {aggregates} "
        "FROM unnest(%(ids)s::bigint[], %(buckets)s::timestamptz[]) AS l(series_id, b) "
        f"CROSS JOIN LATERAL {rows} AS source GROUP BY l.series_id, l.b",
    )


@dataclass
class RefreshReport:
    """What one refresh did: the time read, the rows written to each rollup, and the series
    whose rollups failed (with the error), queued to be tried again."""

    start: datetime | None = None
    end: datetime | None = None
    rows: dict[str, int] = field(default_factory=dict)
    late_minutes: int = 0
    chunks: list[tuple[datetime, datetime]] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def refresh_rollups(now: datetime | None = None) -> RefreshReport | None:
    """Bring every rollup up to ``now``; None when another refresh holds the lock."""
    now = now or datetime.now(UTC)
    try:
        with store.session_lock(LOCK) as locked:
            if not locked:
                logger.info("rollup refresh skipped: another refresh is running")
                return None
            report = _refresh(now)
    except Exception:
        FIGURES.add({"failed_runs": 1})
        raise
    if report.failed:
        named = sorted(report.failed.items())[:FAILURES_LOGGED]
        logger.error(
            "rollups of %d series failed and are queued to be tried again: %s",
            len(report.failed),
            "; ".join(f"series {series_id}: {error}" for series_id, error in named),
        )
    FIGURES.add({"failed_series": len(report.failed)})
    FIGURES.set({"failing_series": len(report.failed), "watermark": report.end.timestamp()})
    logger.info(
        "rollups refreshed from %s to %s: %s rows, %d late minutes",
        report.start,
        report.end,
        ", ".join(f"{rows} {name}" for name, rows in report.rows.items()),
        report.late_minutes,
    )
    return report


def _refresh(now: datetime) -> RefreshReport:
    report = RefreshReport(end=now, rows={level.name: 0 for level in ROLLUP_LEVELS})
    report.late_minutes = _recompute_late_minutes(report)
    for start, end in _chunks(now):
        with transaction.atomic():
            rows, failed = _recompute(start, end)
            for name, count in rows.items():
                report.rows[name] += count
            _queue_series_minutes(failed, start, end)
            report.failed.update(failed)
            _set_watermark(end)
        report.start = report.start or start
        report.chunks.append((start, end))
    if not report.chunks or report.chunks[-1][1] < now:
        # A first refresh reads the stored days only: there is nothing after the last of them.
        _set_watermark(now)
    return report


def _chunks(now: datetime) -> list[tuple[datetime, datetime]]:
    """The time ranges to read, each at most a day: from the watermark less the grace window to
    ``now``; on a first refresh, every stored day (empty days between are skipped)."""
    watermark = store.rollup_watermark()
    if watermark is None:
        days = sorted(
            datetime.combine(day, datetime.min.time(), UTC) for day in store.stored_days()
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


def _recompute(start: datetime, end: datetime) -> tuple[Counter, dict[int, str]]:
    """Recompute each rollup's buckets holding [``start``, ``end``), finest first (each is made
    from the one before); returns the rows written to each and the series that failed."""
    coarsest = ROLLUP_LEVELS[-1].width
    _ensure_rollup_partitions(store.floor_time(start, coarsest), end)

    def recompute(series_ids: list[int] | None) -> dict[str, int]:
        rows = {}
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
            for level in ROLLUP_LEVELS:
                params = {"width": level.width, "start": store.floor_time(start, level.width)}
                sql = _range_sql(level, some_series=series_ids is not None)
                cursor.execute(sql, {**params, "end": end, "ids": series_ids})
                rows[level.name] = cursor.rowcount
        return rows

    def series_ids() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT series_id FROM all_samples_between(%s, %s) ORDER BY series_id",
                [start, end],
            )
            return [row[0] for row in cursor.fetchall()]

    return _isolating_failures(recompute, series_ids)


def _recompute_late_minutes(report: RefreshReport) -> int:
    """Recompute the queued late minutes, and the coarser buckets holding them, in one
    transaction; returns how many minutes. The minutes of series that fail go back in the
    queue, and the series into ``report.failed``."""
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

        def recompute(series_ids: list[int] | None) -> dict[str, int]:
            chosen = late
            if series_ids is not None:
                wanted = set(series_ids)
                chosen = [minute for minute in late if minute[0] in wanted]
            rows = {}
            for level in ROLLUP_LEVELS:
                buckets = sorted({(sid, store.floor_time(b, level.width)) for sid, b in chosen})
                cursor.execute(
                    _buckets_sql(level),
                    {
                        "width": level.width,
                        "ids": [series_id for series_id, _ in buckets],
                        "buckets": [bucket for _, bucket in buckets],
                    },
                )
                rows[level.name] = cursor.rowcount
            return rows

        _, failed = _isolating_failures(recompute, lambda: sorted({sid for sid, _ in late}))
        if failed:
            store.queue_late_minutes(minute for minute in late if minute[0] in failed)
            report.failed.update(failed)
    return len(late)


def _isolating_failures(
    recompute: Callable[[list[int] | None], dict[str, int]],
    series_ids: Callable[[], list[int]],
) -> tuple[Counter, dict[int, str]]:
    """Run ``recompute`` for every series at once (``None``); if it fails, again over halves of
    ``series_ids()``, down to single series, each attempt in a savepoint, so that a series whose
    rollups cannot be computed fails alone. Returns the rows written to each rollup and the
    series that failed, with their errors. A lost connection is not a series' fault: it raises.
    """
    rows, failed = Counter(), {}

    def attempt(ids: list[int] | None) -> DatabaseError | None:
        try:
            with transaction.atomic():
                written = recompute(ids)
        except DatabaseError as error:
            if connection.needs_rollback:
                raise  # the savepoint could not be rolled back: the connection is gone
            return error
        rows.update(written)
        return None

    error = attempt(None)
    if error is None:
        return rows, failed
    logger.warning("rollup refresh failed (%s); trying the series apart", error)
    pending = [series_ids()]
    while pending:
        ids = pending.pop()
        error = attempt(ids)
        if error is None:
            continue
        if len(ids) == 1:
            failed[ids[0]] = str(error).strip().splitlines()[0]
        else:
            pending += [ids[: len(ids) // 2], ids[len(ids) // 2 :]]
    return rows, failed


def _queue_series_minutes(series_ids, start: datetime, end: datetime) -> None:
    """Queue the minutes in [``start``, ``end``) that hold samples of ``series_ids`` in
    ``rollup_late``, so that the next refresh tries them again."""
    if not series_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rollup_late (series_id, bucket) "
            "SELECT DISTINCT series_id, date_bin(%s, ts, 'epoch') "
            "FROM samples_between(%s, %s, %s) ON CONFLICT DO NOTHING",
            [MINUTE, list(series_ids), start, end],
        )


def _set_watermark(upto: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rollup_watermark (resolution, upto) VALUES ('rollups', %s) "
            "ON CONFLICT (resolution) DO UPDATE SET upto = EXCLUDED.upto",
            [upto],
        )


def record_lag(now: datetime | None = None) -> float | None:
    """Store how far the rollups lag behind ``now`` (seconds since their watermark) as a sample
    of Vigil's own instance, which the shipped "RollupsLagging" rule watches; returns the lag,
    None before the first refresh."""
    now = now or datetime.now(UTC)
    watermark = store.rollup_watermark()
    if watermark is None:
        return None
    lag = max((now - watermark).total_seconds(), 0.0)
    key = store.SeriesKey(LAG_METRIC, {}, "seconds")
    with transaction.atomic():
        series = store.resolve_series(Instance.vigil().pk, [key])
        samples_engine().write_samples([(series[(key.name, key.labels_key)], now, lag)])
    return lag


class RollupCollector:
    """/metrics: the rollups' lag and refresh failures, as the workers' refreshes left them in
    Redis (a scrape never waits on PostgreSQL, and still answers while it is down)."""

    def describe(self):
        # Nothing at registration time: collect() needs Redis, which may not be up yet.
        return []

    def collect(self):
        figures = FIGURES.read()
        if figures is None:
            return
        if "watermark" in figures:
            yield GaugeMetricFamily(
                "vigil_rollup_lag_seconds",
                "How far the rollups are behind now: seconds since the watermark of the last "
                "refresh that went through",
                value=max(time.time() - figures["watermark"], 0.0),
            )
        failures = CounterMetricFamily(
            "vigil_rollup_refresh_failures",
            "Rollup refresh runs that failed, and series whose rollups failed in a run "
            "(tried again at the next)",
            labels=["what"],
        )
        failures.add_metric(["run"], figures.get("failed_runs", 0))
        failures.add_metric(["series"], figures.get("failed_series", 0))
        yield failures
        yield GaugeMetricFamily(
            "vigil_rollup_failing_series",
            "Series whose rollups failed in the last refresh, queued to be tried again",
            value=figures.get("failing_series", 0),
        )
