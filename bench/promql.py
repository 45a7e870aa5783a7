"""Benchmark: PromQL through Vigil's Prometheus query API beside a real Prometheus holding the
same samples (issue 15).

Vigil's store is the 10 M-sample store of bench/queries.py plus a counter ``x_total`` (50
instances × 10 shards) and a 10-bucket histogram ``req_duration_seconds_bucket`` (50
instances), both 15 s apart over the last 70 minutes. Every series the queries read (those two
and the one series averaged over 7 days, read back from Vigil's store) is written as OpenMetrics
text and backfilled into Prometheus (Debian's 2.42) with ``promtool tsdb create-blocks-from
openmetrics``. Each query goes through both servers' ``/api/v1/query_range`` over HTTP, warm,
median of ``--runs``, and the two answers are compared.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg

from bench.common import (
    Figure,
    alternating_medians_ms,
    database_dsn,
    emit,
    free_port,
    log,
    setup_django,
    stop,
    wait_until_answering,
    web_server,
)
from bench.queries import COPY_HEADER, COPY_ROW, PG_EPOCH, create_store, fill_latest_samples

INSTANCES = 50
SHARDS = 10
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")
SCRAPE_S = 15
# The counter and the histogram cover the hour queried plus the 5-minute windows before it.
RECENT_S = 70 * 60
WEEK_S = 7 * 86_400
RELATIVE_TOLERANCE = 1e-6
TARGET_RATIO = 5
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@dataclass
class Series:
    """One series as both stores get it: its labels (with ``__name__``), times (s) and values."""

    labels: dict[str, str]
    ts_s: np.ndarray
    values: np.ndarray


@dataclass
class RangeQuery:
    key: str
    label: str
    query: str
    start_s: int
    end_s: int
    step_s: int

    def params(self) -> dict[str, str]:
        return {
            "query": self.query,
            "start": str(self.start_s),
            "end": str(self.end_s),
            "step": str(self.step_s),
        }


def counters(times_s: np.ndarray, rng: np.random.Generator) -> list[Series]:
    """``x_total`` for every instance and shard: random increments, a reset in one in ten."""
    found = []
    for n in range(INSTANCES):
        for shard in range(SHARDS):
            values = np.cumsum(rng.exponential(12.5, len(times_s)))
            if shard == 3:
                restart = len(times_s) // 2
                values[restart:] -= values[restart - 1]
            labels = {"__name__": "x_total", "instance": f"bench-{n}", "shard": str(shard)}
            found.append(Series(labels, times_s, values))
    return found


def histograms(times_s: np.ndarray, rng: np.random.Generator) -> list[Series]:
    """``req_duration_seconds_bucket`` per instance: cumulative over ``le`` and over time."""
    found = []
    for n in range(INSTANCES):
        per_bucket = rng.poisson(rng.uniform(1, 20, len(BUCKETS)), (len(times_s), len(BUCKETS)))
        cumulative = np.cumsum(np.cumsum(per_bucket, axis=1), axis=0).astype(np.float64)
        for b, le in enumerate(BUCKETS):
            labels = {"__name__": "req_duration_seconds_bucket", "instance": f"bench-{n}", "le": le}
            found.append(Series(labels, times_s, cumulative[:, b]))
    return found


def write_to_vigil(dsn: str, instances: list, series: list[Series]) -> int:
    """Create ``series`` in Vigil's store and write their samples with one binary COPY."""
    from instances import store

    by_agent = {instance.agent_id: instance for instance in instances}
    buffer = bytearray(COPY_HEADER)
    pg_epoch_s = int(PG_EPOCH.timestamp())
    rows = 0
    for one in series:
        stored = {k: v for k, v in one.labels.items() if k not in ("__name__", "instance")}
        key = store.SeriesKey(one.labels["__name__"], stored)
        instance = by_agent[one.labels["instance"]]
        (series_id,) = store.resolve_series(instance.pk, [key]).values()
        for ts, value in zip(one.ts_s.tolist(), one.values.tolist(), strict=True):
            buffer += COPY_ROW.pack(3, 8, series_id, 8, (ts - pg_epoch_s) * 1_000_000, 8, value)
            rows += 1
    buffer += b"\xff\xff"
    with (
        psycopg.connect(dsn) as db,
        db.cursor().copy("COPY samples (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.write(buffer)
    return rows


def stored_series(name: str, agent_id: str, start_s: int, end_s: int) -> Series:
    """One series of Vigil's store as it holds it, to give Prometheus the very same samples."""
    from instances import store

    matchers = [
        {"label": "__name__", "op": "=", "value": name},
        {"label": "instance", "op": "=", "value": agent_id},
    ]
    (found,) = store.match_series([matchers])
    arrays = store.sample_arrays([found.series_id], start_s * 1000, end_s * 1000, 10**7)
    return Series(found.labels, arrays.ts_ms // 1000, arrays.value)


def openmetrics(series: list[Series]) -> Iterator[str]:
    """The lines of an OpenMetrics exposition holding every sample (``# EOF`` last), as
    ``promtool tsdb create-blocks-from openmetrics`` reads it: timestamps in seconds."""
    for one in series:
        name = one.labels["__name__"]
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(one.labels.items()) if k != "__name__")
        for ts, value in zip(one.ts_s.tolist(), one.values.tolist(), strict=True):
            # repr round-trips a float64 exactly.
            yield f"{name}{{{labels}}} {value!r} {ts}\n"
    yield "# EOF\n"


def backfill_prometheus(series: list[Series], data_dir: Path) -> float:
    """Write ``series`` into TSDB blocks under ``data_dir``; returns the seconds it took."""
    exposition = data_dir.parent / "samples.om"
    with exposition.open("w") as text:
        text.writelines(openmetrics(series))
    started = time.perf_counter()
    # Blocks as long as the data: promtool reads the whole file once per block.
    subprocess.run(
        [PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=768h",
         str(exposition), str(data_dir)],
        check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


@contextmanager
def prometheus_server(data_dir: Path) -> Iterator[str]:
    """Prometheus serving the blocks of ``data_dir`` on a free loopback port (no scraping)."""
    config = data_dir.parent / "prometheus.yml"
    config.write_text("scrape_configs: []\n")
    port = free_port()
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
         # Retention counts back from the newest block: it must cover the 14-day series.
         "--storage.tsdb.retention.time=60d", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/-/ready", process, "Prometheus")
        yield url
    finally:
        stop(process)


def query_range(api: str, query: RangeQuery, headers: dict[str, str]) -> dict:
    """The ``data`` of a successful ``query_range`` answer from the API at ``api``."""
    request = urllib.request.Request(
        f"{api}/query_range?{urllib.parse.urlencode(query.params())}", headers=headers
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{api} answered {body}")
    return body["data"]


def compare(ours: dict, theirs: dict) -> tuple[bool, str]:
    """Whether two ``query_range`` answers hold the same series at the same steps with values
    within RELATIVE_TOLERANCE (NaN equal to NaN), and a sentence saying how close they are."""

    def by_labels(data: dict) -> dict:
        return {tuple(sorted(row["metric"].items())): row["values"] for row in data["result"]}

    vigil, prometheus = by_labels(ours), by_labels(theirs)
    problems, worst, points = [], 0.0, 0
    if vigil.keys() != prometheus.keys():
        problems.append(
            f"series differ (Vigil {len(vigil)}, Prometheus {len(prometheus)}, "
            f"{len(vigil.keys() ^ prometheus.keys())} in one only)"
        )
    for labels in vigil.keys() & prometheus.keys():
        a = np.array(vigil[labels], dtype=np.float64).reshape(-1, 2)
        b = np.array(prometheus[labels], dtype=np.float64).reshape(-1, 2)
        if a.shape != b.shape or not np.array_equal(a[:, 0], b[:, 0]):
            problems.append(f"steps differ for {dict(labels)}")
            continue
        x, y = a[:, 1], b[:, 1]
        both_nan = np.isnan(x) & np.isnan(y)
        scale = np.maximum(np.abs(x), np.abs(y))
        with np.errstate(invalid="ignore", divide="ignore"):
            relative = np.where(x == y, 0.0, np.abs(x - y) / scale)
        relative = np.where(both_nan, 0.0, relative)
        worst = max(worst, float(np.nanmax(relative, initial=0.0)))
        if np.isnan(relative).any():
            worst = math.inf
        points += len(x)
    if worst > RELATIVE_TOLERANCE:
        problems.append(f"values differ by up to {worst:.3g} relative")
    summary = (
        f"{len(vigil)} series, {points:,} points, largest relative difference {worst:.2g}"
        if not problems
        else "; ".join(problems)
    )
    return not problems, summary


def profile_engine(queries: list[RangeQuery]) -> None:
    """Log where ``query.engine.evaluate`` spends each query's time (needs pyinstrument)."""
    from pyinstrument import Profiler

    from query import engine

    for query in queries:
        window_ms = (query.start_s * 1000, query.end_s * 1000, query.step_s * 1000)
        engine.evaluate(query.query, *window_ms)
        profiler = Profiler(interval=0.0005)
        with profiler:
            for _ in range(5):
                engine.evaluate(query.query, *window_ms)
        log(f"--- {query.query} (5 runs)")
        log(profiler.output_text(unicode=True, show_all=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--profile", action="store_true", help="also profile the engine in-process (pyinstrument)"
    )
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    from ingestion.models import IngestToken
    from instances.rollups import refresh_rollups

    end = datetime.now(UTC).replace(second=0, microsecond=0)
    end_s = int(end.timestamp())
    dsn = database_dsn()
    built = create_store(dsn, end)
    log(f"store: {built.rows:,} samples in {built.copy_seconds:.1f} s")

    rng = np.random.default_rng(15)
    recent_s = np.arange(end_s - RECENT_S, end_s, SCRAPE_S, dtype=np.int64)
    recent = counters(recent_s, rng) + histograms(recent_s, rng)
    extra_rows = write_to_vigil(dsn, built.instances, recent)
    week_series = stored_series("bench_metric_0", "bench-25", 0, end_s)
    fill_latest_samples(dsn)
    # The rollups as the beat task keeps them: long *_over_time windows read their buckets.
    started = time.perf_counter()
    refresh_rollups(now=end)
    log(f"rollups refreshed in {time.perf_counter() - started:.1f} s")
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute("ANALYZE samples, instances_series, samples_1m, samples_5m, samples_1h")
    log(f"{extra_rows:,} more samples in Vigil; backfilling Prometheus")

    queries = [
        RangeQuery(
            "rate_sum",
            "sum by (instance) (rate(x_total[5m])), 500 series × 1 h / 15 s",
            "sum by (instance) (rate(x_total[5m]))",
            end_s - 3660, end_s - 60, SCRAPE_S,
        ),
        RangeQuery(
            "histogram_quantile",
            "histogram_quantile(0.9, …), 10 buckets × 50 instances × 1 h / 15 s",
            "histogram_quantile(0.9, "
            "sum by (le, instance) (rate(req_duration_seconds_bucket[5m])))",
            end_s - 3660, end_s - 60, SCRAPE_S,
        ),
        RangeQuery(
            "avg_over_time_7d",
            "avg_over_time(one series[1h]), 7 days / 1 h",
            'avg_over_time(bench_metric_0{instance="bench-25"}[1h])',
            end_s - 60 - WEEK_S, end_s - 60, 3600,
        ),
    ]  # fmt: skip

    figures, notes = [], []
    token = IngestToken.issue("bench", [IngestToken.Scope.READ])[1]
    connection.close()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-prometheus-") as scratch:
        data_dir = Path(scratch) / "data"
        prometheus_samples = sum(len(one.ts_s) for one in [*recent, week_series])
        backfill_seconds = backfill_prometheus([*recent, week_series], data_dir)
        log(f"{prometheus_samples:,} samples backfilled in {backfill_seconds:.1f} s")
        # One worker: the warm runs then warm the process that is measured.
        with prometheus_server(data_dir) as prometheus, web_server(workers=1) as (vigil, _):
            vigil_api = f"{vigil}/prometheus/api/v1"
            prometheus_api = f"{prometheus}/api/v1"
            bearer = {"Authorization": f"Bearer {token}"}
            # The cores are shared: say how busy they were, since every ratio moves with it.
            load_before = os.getloadavg()[0]
            for query in queries:
                log(f"timing {query.query}")
                theirs = query_range(prometheus_api, query, {})
                ours = query_range(vigil_api, query, bearer)
                same, summary = compare(ours, theirs)
                prometheus_ms, vigil_ms = alternating_medians_ms(
                    [
                        lambda q=query: query_range(prometheus_api, q, {}),
                        lambda q=query: query_range(vigil_api, q, bearer),
                    ],
                    args.runs,
                )
                ratio = vigil_ms / prometheus_ms
                figures += [
                    Figure(f"promql.{query.key}.vigil_ms", f"{query.label}: Vigil", vigil_ms, "ms"),
                    Figure(
                        f"promql.{query.key}.prometheus_ms",
                        f"{query.label}: Prometheus",
                        prometheus_ms,
                        "ms",
                    ),
                    Figure(
                        f"promql.{query.key}.ratio",
                        f"{query.label}: Vigil / Prometheus",
                        ratio,
                        "ratio",
                        f"≤ {TARGET_RATIO}",
                        ratio <= TARGET_RATIO,
                    ),
                ]
                notes.append(
                    f"`{query.query}`: {'same answer' if same else 'DIFFERENT answers'} "
                    f"({summary})."
                )
            load_after = os.getloadavg()[0]
    if args.profile:
        profile_engine(queries)
    connection.close()

    notes.insert(
        0,
        f"Vigil's store: {built.rows + extra_rows:,} samples (bench/queries.py's 10 M plus "
        f"x_total and the histogram, {len(recent)} series 15 s apart over 70 min); Prometheus "
        f"{prometheus_version()}: the {len(recent) + 1} series the queries read, "
        f"{prometheus_samples:,} samples, backfilled with promtool in {backfill_seconds:.1f} s. "
        f"Medians of {args.runs} warm runs of GET /api/v1/query_range on each, taken in turn "
        "(Vigil: uvicorn, one worker, bearer token); answers compared within 1e-6 relative. "
        f"Load average {load_before:.1f} before the timings, {load_after:.1f} after (2 cores).",
    )
    emit(figures, notes)


def prometheus_version() -> str:
    first_line = subprocess.run(
        [PROMETHEUS, "--version"], capture_output=True, text=True
    ).stdout.splitlines()[0]
    return first_line.split()[2]


if __name__ == "__main__":
    main()
