"""Benchmark: reads on a store of 10 million samples, rollup upkeep, and bytes per sample.

500 series × 20,000 points 60 s apart (about 14 days, ending now) are written time-major, as live
collectors write, with binary COPY into Vigil's own ``samples`` table. The first rollup refresh
then folds them in (its rate is a figure too). Each query goes through the read module
(``instances/store.py``), warm, median of ``--runs``.
"""

import argparse
import struct
import time
from datetime import UTC, datetime, timedelta
from importlib import import_module
from typing import NamedTuple

import psycopg

from bench.common import Figure, database_dsn, emit, log, median_ms, setup_django

SERIES = 500
POINTS = 20_000
STEP = timedelta(seconds=60)
# PostgreSQL's binary COPY: header, then per row a field count and (length, value) per field.
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_ROW = struct.Struct(">hiqiqid")
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def build_store(dsn: str, series_ids: list[int], end: datetime) -> int:
    """Write the samples with one binary COPY per 1,000 time steps; returns the row count."""
    start = end - STEP * POINTS
    step_us = STEP // timedelta(microseconds=1)
    start_us = (start - PG_EPOCH) // timedelta(microseconds=1)
    rows = 0
    with psycopg.connect(dsn) as db:
        for first in range(0, POINTS, 1000):
            buffer = bytearray(COPY_HEADER)
            for point in range(first, min(first + 1000, POINTS)):
                ts = start_us + point * step_us
                for n, series_id in enumerate(series_ids):
                    value = 50 + 40 * ((point * 31 + n * 17) % 97) / 97
                    buffer += COPY_ROW.pack(3, 8, series_id, 8, ts, 8, value)
                    rows += 1
            buffer += struct.pack(">h", -1)
            with db.cursor().copy(
                "COPY samples (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.write(buffer)
            db.commit()
    return rows


class BenchStore(NamedTuple):
    """The store ``create_store`` wrote: its instances (bench-0 …), series ids and COPY rate."""

    instances: list
    series_ids: list[int]
    rows: int
    copy_seconds: float


def create_store(dsn: str, end: datetime) -> BenchStore:
    """Instances bench-0 … bench-49 with ten series each (``bench_metric_0`` …), their
    partitions, and the samples up to ``end`` (see ``build_store``), newest samples kept."""
    from instances import store
    from instances.models import Instance

    instances, series_ids = [], []
    for n in range(SERIES // 10):
        instance = Instance.register(f"bench-{n}")
        keys = [store.SeriesKey(f"bench_metric_{m}", {}) for m in range(10)]
        series_ids += list(store.resolve_series(instance.pk, keys).values())
        instances.append(instance)
    days = (STEP * POINTS).days + 2
    store.ensure_partitions((end - timedelta(days=d)).date() for d in range(-1, days))

    log(f"writing {SERIES} × {POINTS} samples with binary COPY")
    started = time.perf_counter()
    rows = build_store(dsn, series_ids, end)
    copy_seconds = time.perf_counter() - started
    fill_latest_samples(dsn)
    return BenchStore(instances, series_ids, rows, copy_seconds)


def fill_latest_samples(dsn: str) -> None:
    """Samples written around the write path: set what it keeps, each series' newest sample."""
    fill_latest = import_module("instances.migrations.0004_series_latest").FILL_FROM_SAMPLES
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(fill_latest)


def relation_bytes(dsn: str, tables: list[str]) -> int:
    """On-disk size (heap, indexes, TOAST) of every partition of ``tables``."""
    with psycopg.connect(dsn) as db:
        return db.execute(
            "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0)::bigint "
            "FROM pg_inherits i WHERE i.inhparent = ANY(%s::regclass[])",
            [tables],
        ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    from instances import store
    from instances.rollups import refresh_rollups

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    dsn = database_dsn()
    built = create_store(dsn, end)
    series_ids, rows, copy_seconds = built.series_ids, built.rows, built.copy_seconds
    log(f"{rows} rows in {copy_seconds:.1f} s; first rollup refresh")
    started = time.perf_counter()
    refresh_rollups(now=end + timedelta(minutes=1))
    rollup_seconds = time.perf_counter() - started
    log(f"rollups in {rollup_seconds:.1f} s; VACUUM ANALYZE")
    with psycopg.connect(dsn, autocommit=True) as db:
        for table in ("samples", "samples_1m", "samples_5m", "samples_1h", "instances_series"):
            db.execute(f"VACUUM ANALYZE {table}")

    one = series_ids[SERIES // 2]
    week = end - timedelta(days=7)
    chart_auto = median_ms(lambda: store.series_points(one, week, end, 500), args.runs)
    chart_raw = median_ms(lambda: store.series_points(one, week, end, 500, "raw"), args.runs)
    points = len(store.series_points(one, week, end, 500))
    latest = median_ms(lambda: store.latest_values(), args.runs)
    latest_hour = median_ms(lambda: store.latest_values(since=end - timedelta(hours=1)), args.runs)
    assert len(store.latest_values()) == SERIES
    average = median_ms(
        lambda: store.window_aggregates(series_ids, end - timedelta(minutes=5), end, "avg"),
        args.runs,
    )
    raw_bytes = relation_bytes(dsn, ["samples"])
    rollup_bytes = relation_bytes(dsn, ["samples_1m", "samples_5m", "samples_1h"])
    connection.close()

    emit(
        [
            Figure(
                "store.copy_rows_per_s",
                "Building the store: binary COPY",
                rows / copy_seconds,
                "rows/s",
            ),
            Figure(
                "rollups.backfill_rows_per_s",
                "First rollup refresh (1m, 5m, 1h) over the store",
                rows / rollup_seconds,
                "samples/s",
            ),
            Figure(
                "query.chart_7d_rollups_ms",
                f"7-day chart of one series, {points} points, rollups",
                chart_auto,
                "ms",
                "≤ 10 ms",
                chart_auto <= 10,
            ),
            Figure(
                "query.chart_7d_raw_ms", "7-day chart of one series, raw samples", chart_raw, "ms"
            ),
            Figure(
                "query.latest_500_ms",
                "Latest value of every series (500)",
                latest,
                "ms",
                "≤ 5 ms",
                latest <= 5,
            ),
            Figure(
                "query.latest_500_last_hour_ms",
                "Latest value of every series, bounded to the last hour",
                latest_hour,
                "ms",
            ),
            Figure("query.avg_5m_500_ms", "5-minute average of every series (500)", average, "ms"),
            Figure(
                "storage.bytes_per_sample", "On-disk bytes per stored sample", raw_bytes / rows, "B"
            ),
            Figure(
                "storage.rollup_bytes_per_sample",
                "Rollups' on-disk bytes per stored sample",
                rollup_bytes / rows,
                "B",
            ),
        ],
        [
            f"{rows:,} samples ({SERIES} series × {POINTS:,} points, 60 s apart); "
            f"medians of {args.runs} warm runs through instances/store.py, "
            "Django's cursor included.",
        ],
    )


if __name__ == "__main__":
    main()
