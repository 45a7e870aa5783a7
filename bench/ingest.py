"""Benchmark: samples/s through POST /api/v1/ingest against raw binary COPY of the same rows.

The HTTP side is the real ASGI server (uvicorn, production settings, ``--workers``) with
``--clients`` threads each holding a keep-alive connection and posting pre-serialised batches of
1,000 samples (1,000 instances × 10 metrics, new timestamps, no replays) for ``--seconds``. Then the
rows it stored are written again straight into the same ``samples`` table with binary COPY: in
1,000-row COPY + COMMIT batches over as many connections as there were clients (the same shape
as the HTTP requests, the ratio's denominator), and as one big COPY.
"""

import http.client
import os
import statistics
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import psycopg

from bench.common import (
    Figure,
    emit,
    ingest_bench_setup,
    log,
    percentile,
    web_server,
)

INSTANCES = 1000
METRICS = 10
BATCH = 1000


def batches(count: int) -> list[bytes]:
    """``count`` request bodies of 1,000 samples, cycling over the instances, each batch of an
    instance 100 seconds after its previous one. The newest are stamped about now, so, as from
    live agents, nothing is older than the rollups' grace window."""
    rounds = -(-count // INSTANCES)
    start_ms = int((datetime.now(UTC) - timedelta(seconds=100 * rounds)).timestamp() * 1000)
    steps = BATCH // METRICS
    bodies = []
    for n in range(count):
        instance, round_ = n % INSTANCES, n // INSTANCES
        base = start_ms + round_ * steps * 1000
        samples = [
            {
                "name": f"bench_metric_{m}",
                "value": (n * 7 + s * 13 + m) % 1000 / 10,
                "ts": base + s * 1000,
            }
            for s in range(steps)
            for m in range(METRICS)
        ]
        bodies.append(
            orjson.dumps({"instance": {"agent_id": f"bench-{instance}"}, "samples": samples})
        )
    return bodies


def post_all(url: str, token: str, bodies: list[bytes], clients: int, seconds: float) -> dict:
    """Post ``bodies`` from ``clients`` threads until done or ``seconds`` pass."""
    host, port = url.removeprefix("http://").split(":")
    lock = threading.Lock()
    queue = iter(bodies)
    latencies, statuses = [], {}
    deadline = time.monotonic() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        while time.monotonic() < deadline:
            with lock:
                body = next(queue, None)
            if body is None:
                break
            started = time.perf_counter()
            connection.request("POST", "/api/v1/ingest", body, headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"seconds": time.perf_counter() - started, "latencies": latencies, "statuses": statuses}


def copy_rows(dsn: str, rows: list[tuple], clients: int, batch: int) -> float:
    """Seconds to COPY ``rows`` into samples in ``batch``-row COPY + COMMIT over ``clients``
    connections (as Vigil's write path does: binary, set_types, write_row)."""
    chunks = iter([rows[i : i + batch] for i in range(0, len(rows), batch)])
    lock = threading.Lock()

    def worker() -> None:
        with psycopg.connect(dsn) as connection:
            while True:
                with lock:
                    chunk = next(chunks, None)
                if chunk is None:
                    return
                with (
                    connection.cursor() as cursor,
                    cursor.copy(
                        "COPY samples (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
                    ) as copy,
                ):
                    copy.set_types(["int8", "timestamptz", "float8"])
                    for row in chunk:
                        copy.write_row(row)
                connection.commit()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    args, token, dsn = ingest_bench_setup(__doc__.splitlines()[0], seconds=25)

    log(f"building {args.batches} request bodies")
    bodies = batches(args.batches)
    with web_server(workers=args.workers) as (url, _):
        log(f"warming up {url}")
        post_all(url, token, bodies[:INSTANCES], args.clients, 60)
        log(f"posting for up to {args.seconds:.0f} s from {args.clients} clients")
        load_before = os.getloadavg()[0]
        result = post_all(url, token, bodies[INSTANCES:], args.clients, args.seconds)
    accepted = result["statuses"].get(202, 0)
    http_rate = accepted * BATCH / result["seconds"]
    latencies = result["latencies"]

    with psycopg.connect(dsn, autocommit=True) as db:
        rows = db.execute(
            "SELECT series_id, ts, value FROM samples ORDER BY ts, series_id"
        ).fetchall()
        stored = len(rows)
        db.execute("TRUNCATE samples")
        batched = copy_rows(dsn, rows, args.clients, BATCH)
        db.execute("TRUNCATE samples")
        single = copy_rows(dsn, rows, 1, len(rows))
        db.execute("TRUNCATE samples")
    load_after = os.getloadavg()[0]
    batched_rate, single_rate = stored / batched, stored / single
    ratio = http_rate / batched_rate
    log(
        f"HTTP {http_rate:,.0f}/s, COPY batched {batched_rate:,.0f}/s, "
        f"one COPY {single_rate:,.0f}/s"
    )

    emit(
        [
            Figure(
                "ingest.http_samples_per_s",
                "Ingest via POST /api/v1/ingest",
                http_rate,
                "samples/s",
            ),
            Figure(
                "ingest.copy_batched_samples_per_s",
                f"Raw binary COPY, 1,000 rows per COPY+COMMIT, {args.clients} connections",
                batched_rate,
                "samples/s",
            ),
            Figure(
                "ingest.copy_single_samples_per_s",
                "Raw binary COPY, one COPY",
                single_rate,
                "samples/s",
            ),
            Figure(
                "ingest.ratio",
                "Ingest / raw COPY (same batch shape and concurrency)",
                ratio,
                "ratio",
                "≥ 0.6",
                ratio >= 0.6,
            ),
            Figure(
                "ingest.request_p50_ms",
                "Ingest request p50",
                statistics.median(latencies) * 1000,
                "ms",
            ),
            Figure(
                "ingest.request_p99_ms",
                "Ingest request p99",
                percentile(latencies, 0.99) * 1000,
                "ms",
            ),
        ],
        [
            f"{accepted} batches of {BATCH} accepted in {result['seconds']:.1f} s "
            f"(statuses {result['statuses']}); {stored} rows stored; uvicorn --workers "
            f"{args.workers}, {args.clients} client threads on the same {os.cpu_count()} cores.",
            "The ratio compares like with like: the HTTP path and the raw COPY both write 1,000 "
            "rows per transaction over the same number of connections. Load average "
            f"{load_before:.1f} before the HTTP phase, {load_after:.1f} after the COPYs "
            f"({os.cpu_count()} cores).",
        ],
    )


if __name__ == "__main__":
    main()
