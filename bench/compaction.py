"""Benchmark: compressed history. Bytes per sample raw and compacted, the compaction's rate, and
reads over a week of compacted days against the same reads over raw ones.

40 hosts × 5 node-exporter-like series (a CPU counter, a network byte counter, load1 with two
decimals, available memory varying by ±1 MB, a constant filesystem size), one sample every 15 s
for 8 days ending now, written time-major with binary COPY as live collectors write. Reads go
through the store (``instances/store.py``), warm, median of ``--runs``; the same reads run
before the compaction (every day raw) and after it (7 closed days compacted, today raw).
"""

import argparse
import math
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from bench.common import Figure, alternating_medians_ms, database_dsn, emit, log, setup_django
from bench.queries import COPY_HEADER, PG_EPOCH, fill_latest_samples, relation_bytes

HOSTS = 40
STEP_SECONDS = 15
DAYS = 8
POINTS = DAYS * 86_400 // STEP_SECONDS
METRICS = (
    "node_cpu_seconds_total",
    "node_network_receive_bytes_total",
    "node_load1",
    "node_memory_MemAvailable_bytes",
    "node_filesystem_size_bytes",
)
# A binary COPY row: field count, then (length, value) for series id, ts and value.
ROW = np.dtype([
    ("fields", ">i2"), ("id_length", ">i4"), ("series_id", ">i8"),
    ("ts_length", ">i4"), ("ts", ">i8"), ("value_length", ">i4"), ("value", ">f8"),
])  # fmt: skip


def host_values(rng: np.random.Generator) -> list[np.ndarray]:
    """One host's five series, ``POINTS`` values each, in ``METRICS`` order."""
    cpu = np.round(np.cumsum(rng.random(POINTS) * STEP_SECONDS), 2)
    network = np.cumsum(rng.integers(0, 200_000, POINTS)).astype(float)
    load = np.round(np.abs(np.cumsum(rng.normal(0, 0.05, POINTS))) + 0.2, 2)
    memory = 8e9 + rng.integers(-1_000_000, 1_000_000, POINTS).astype(float)
    size = np.full(POINTS, 5.0e11)
    return [cpu, network, load, memory, size]


def build_store(dsn: str, series_ids: list[int], end: datetime) -> int:
    """Write every series' samples, a COPY of 1,000 time steps (of all series) at a time."""
    rng = np.random.default_rng(20)
    values = np.stack([v for _ in range(HOSTS) for v in host_values(rng)])  # series × points
    start_us = (end - timedelta(seconds=STEP_SECONDS * POINTS) - PG_EPOCH) // timedelta(
        microseconds=1
    )
    ids = np.array(series_ids, dtype=np.int64)
    with psycopg.connect(dsn) as db:
        for first in range(0, POINTS, 1000):
            steps = np.arange(first, min(first + 1000, POINTS))
            rows = np.zeros(len(steps) * len(ids), ROW)
            rows["fields"], rows["id_length"], rows["ts_length"], rows["value_length"] = 3, 8, 8, 8
            rows["series_id"] = np.tile(ids, len(steps))
            rows["ts"] = np.repeat(start_us + steps * STEP_SECONDS * 1_000_000, len(ids))
            rows["value"] = values[:, steps].T.ravel()
            with db.cursor().copy("COPY samples (series_id, ts, value) FROM STDIN BINARY") as copy:
                copy.write(COPY_HEADER + rows.tobytes() + b"\xff\xff")
            db.commit()
    return POINTS * len(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    setup_django()
    from django.conf import settings
    from django.db import connection

    from instances import store
    from instances.compaction import compact_samples
    from instances.models import Instance
    from instances.rollups import refresh_rollups

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    dsn = database_dsn()
    series_ids = []
    for host in range(HOSTS):
        instance = Instance.register(f"node-{host}")
        keys = [store.SeriesKey(name, {"job": "node"}) for name in METRICS]
        found = store.resolve_series(instance.pk, keys)
        series_ids += [found[(key.name, key.labels_key)] for key in keys]
    store.ensure_partitions((end - timedelta(days=d)).date() for d in range(-1, DAYS + 2))
    log(f"writing {len(series_ids)} series × {POINTS} samples, {STEP_SECONDS} s apart")
    rows = build_store(dsn, series_ids, end)
    fill_latest_samples(dsn)
    refresh_rollups(now=end + timedelta(minutes=1))
    with psycopg.connect(dsn, autocommit=True) as db:
        for table in ("samples", "samples_1m", "samples_5m", "samples_1h", "instances_series"):
            db.execute(f"VACUUM ANALYZE {table}")
    raw_bytes = relation_bytes(dsn, ["samples"]) / rows

    load = series_ids[2]  # node_load1 of node-0
    week = end - timedelta(days=7)
    hour = (week + timedelta(days=2), week + timedelta(days=2, hours=1))
    hour_ms = [(ts - store.EPOCH) // timedelta(milliseconds=1) for ts in hour]
    week_ms = [(ts - store.EPOCH) // timedelta(milliseconds=1) for ts in (week, end)]
    reads = {
        "chart": lambda: store.series_points(load, week, end, 500),
        "chart_raw": lambda: store.series_points(load, week, end, 500, "raw"),
        "promql_week": lambda: store.sample_arrays([load], *week_ms, 10**7),
        "promql_hour": lambda: store.sample_arrays(series_ids, *hour_ms, 10**7),
    }
    raw_reads = dict(
        zip(reads, alternating_medians_ms(list(reads.values()), args.runs), strict=True)
    )
    answers = {name: read() for name, read in reads.items()}

    log("compacting the closed days")
    started = time.perf_counter()
    # The grace window after today's midnight: every day before today is closed, today is not.
    midnight = datetime.combine(end.date(), datetime.min.time(), UTC)
    report = compact_samples(now=midnight + timedelta(hours=settings.COMPACTION_GRACE_HOURS))
    compact_seconds = time.perf_counter() - started
    compacted = sum(report.days.values())
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("VACUUM ANALYZE sample_blocks")
    compacted_bytes = relation_bytes(dsn, ["sample_blocks"]) / compacted
    compacted_reads = dict(
        zip(reads, alternating_medians_ms(list(reads.values()), args.runs), strict=True)
    )
    assert all(_same(answers[name], read()) for name, read in reads.items()), (
        "reads over compacted days differ from reads over raw ones"
    )
    connection.close()

    figures = [
        Figure("compaction.raw_bytes_per_sample", "Raw samples: bytes per sample", raw_bytes, "B"),
        Figure(
            "compaction.compacted_bytes_per_sample",
            "Compacted samples: bytes per sample",
            compacted_bytes,
            "B",
            "≤ 12 B",
            compacted_bytes <= 12,
        ),
        Figure(
            "compaction.samples_per_s",
            f"Compaction of {len(report.days)} days",
            compacted / compact_seconds,
            "samples/s",
        ),
    ]
    labels = {
        "chart": "7-day chart of one series (rollups)",
        "chart_raw": "7-day chart of one series from samples",
        "promql_week": "PromQL read: one series, 7 days",
        "promql_hour": f"PromQL read: {len(series_ids)} series, one hour",
    }
    for name, label in labels.items():
        before, after = raw_reads[name], compacted_reads[name]
        figures.append(Figure(f"compaction.{name}_raw_ms", f"{label}, raw days", before, "ms"))
        figures.append(
            Figure(
                f"compaction.{name}_compacted_ms",
                f"{label}, compacted days",
                after,
                "ms",
                "≤ raw (+10 %)" if name == "chart" else None,
                after <= before * 1.1 if name == "chart" else None,
            )
        )
    emit(
        figures,
        [
            f"{rows:,} samples ({len(series_ids)} node-exporter-like series, {STEP_SECONDS} s "
            f"apart, {DAYS} days); {compacted:,} of them compacted; reads are medians of "
            f"{args.runs} warm runs, before and after the compaction, with the same answers."
        ],
    )


def _same(a, b) -> bool:
    """Two answers alike: sample arrays bit for bit, chart buckets but for the last bits of the
    average (sums in another order)."""
    if isinstance(a, tuple):
        return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    return len(a) == len(b) and all(
        (x.ts, x.min, x.max, x.last, x.count) == (y.ts, y.min, y.max, y.last, y.count)
        and math.isclose(x.avg, y.avg, rel_tol=1e-12)
        for x, y in zip(a, b, strict=True)
    )


if __name__ == "__main__":
    main()
