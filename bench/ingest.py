"""Benchmark: samples/s through POST /api/v1/ingest against raw binary COPY of the same rows.

The HTTP side is the real ASGI server (uvicorn, production settings, ``--workers``) with
``--clients`` threads each holding a keep-alive connection and posting pre-serialised batches of
1,000 samples (1,000 instances × 10 metrics, new timestamps, no replays) for ``--seconds``, once
the server is warm (``WARM_ROUNDS``: every web process has met the instances; the samples of the
warm-up are then emptied out). Then the rows it stored are written again straight into the same
``samples`` table with binary COPY: each request's rows as one COPY + COMMIT, in the order they
were posted, over as many connections as there were clients (the ratio's denominator: the same
rows in the same transactions), and as one big COPY.
"""

import http.client
import os
import statistics
import threading
import time
from datetime import UTC, datetime

import orjson
import psutil
import psycopg

from bench.common import (
    Figure,
    backend_cpu,
    backend_cpu_seconds,
    cpu_seconds,
    emit,
    ingest_bench_setup,
    log,
    percentile,
    web_server,
)

INSTANCES = 1000
METRICS = 10
BATCH = 1000
# Rounds of a batch per instance before the timed part. A web process keeps what it learns of
# an instance (its id, its series' ids) from the first batch of it that it stores, which costs
# several round trips more than the next; an agent posts every few seconds for as long as it
# runs, so a server spends nearly all its time past that. A keep-alive connection stays with
# the process that accepted it, so each round posts on connections of its own: in a round a
# process meets a given instance with odds about one in two (however the round's connections
# fall to the processes), so after eight rounds it has met it with odds about 255 in 256.
WARM_ROUNDS = 8


def batches(count: int) -> list[bytes]:
    """``count`` request bodies of 1,000 samples, cycling over the instances, each batch of an
    instance the next 100 scrapes after its previous one. The newest are stamped about now and,
    as from live agents, none older than half the rollups' grace window: scrapes are a second
    apart, closer when that many batches would reach further back."""
    from django.conf import settings

    rounds = -(-count // INSTANCES)
    steps = BATCH // METRICS
    interval_ms = min(1000, settings.ROLLUP_GRACE_SECONDS * 1000 // 2 // (rounds * steps))
    start_ms = int(datetime.now(UTC).timestamp() * 1000) - rounds * steps * interval_ms
    bodies = []
    for n in range(count):
        instance, round_ = n % INSTANCES, n // INSTANCES
        base = start_ms + round_ * steps * interval_ms
        samples = [
            {
                "name": f"bench_metric_{m}",
                "value": (n * 7 + s * 13 + m) % 1000 / 10,
                "ts": base + s * interval_ms,
            }
            for s in range(steps)
            for m in range(METRICS)
        ]
        bodies.append(
            orjson.dumps({"instance": {"agent_id": f"bench-{instance}"}, "samples": samples})
        )
    return bodies


def warm_up(url: str, token: str, bodies: list[bytes], clients: int) -> int:
    """Post ``WARM_ROUNDS`` rounds of one scrape per instance (each of its series once), the
    last a second before the first of ``bodies``, each round on new connections; the samples
    acknowledged. RuntimeError if any batch was refused."""
    first_ms = orjson.loads(bodies[0])["samples"][0]["ts"]
    acknowledged = 0
    for round_ in range(WARM_ROUNDS, 0, -1):
        warm = [
            orjson.dumps(
                {
                    "instance": {"agent_id": f"bench-{instance}"},
                    "samples": [
                        {"name": f"bench_metric_{m}", "value": 0.0, "ts": first_ms - 1000 * round_}
                        for m in range(METRICS)
                    ],
                }
            )
            for instance in range(INSTANCES)
        ]
        statuses = post_all(url, token, warm, clients, 60)["statuses"]
        if statuses != {202: INSTANCES}:
            raise RuntimeError(f"warm-up round answered {statuses}")
        acknowledged += INSTANCES * METRICS
    return acknowledged


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


def as_posted(db: psycopg.Connection) -> list[tuple]:
    """The stored rows as the requests carried them: in 1,000-row runs, each one request's
    (one instance's next 100 scrapes, scrape by scrape), the runs in the order posted (a round
    over the instances bench-0, bench-1, …, then the next)."""
    runs = []
    instance_rows: list[tuple] = []
    instance = None
    for agent_id, *row in db.execute(
        "SELECT i.agent_id, x.series_id, x.ts, x.value FROM samples x "
        "JOIN instances_series s ON s.id = x.series_id "
        "JOIN instances_instance i ON i.id = s.instance_id ORDER BY i.agent_id, x.ts, x.series_id"
    ):
        if agent_id != instance:
            runs.extend(_runs_of(instance, instance_rows))
            instance_rows, instance = [], agent_id
        instance_rows.append(tuple(row))
    runs.extend(_runs_of(instance, instance_rows))
    runs.sort(key=lambda run: run[:2])
    return [row for _, _, rows in runs for row in rows]


def _runs_of(agent_id: str | None, rows: list[tuple]) -> list[tuple[int, int, list[tuple]]]:
    """(round, instance number, rows) of each request's run of instance ``agent_id``'s rows
    (every request was accepted whole, so each run is one request's)."""
    number = int(agent_id.removeprefix("bench-")) if agent_id else 0
    return [
        (round_, number, rows[start : start + BATCH])
        for round_, start in enumerate(range(0, len(rows), BATCH))
    ]


def copy_rows(dsn: str, rows: list[tuple], clients: int, batch: int) -> tuple[float, float]:
    """Seconds to COPY ``rows`` into samples in ``batch``-row COPY + COMMIT over ``clients``
    connections (binary, set_types, write_row), and the CPU seconds their backends spent."""
    chunks = iter([rows[i : i + batch] for i in range(0, len(rows), batch)])
    lock = threading.Lock()
    backend_seconds = []

    def worker() -> None:
        with psycopg.connect(dsn) as connection:
            pid = connection.info.backend_pid
            before = backend_cpu(pid)
            try:
                copy_chunks(connection)
            finally:
                after = backend_cpu(pid)
                with lock:
                    backend_seconds.append(
                        after - before if None not in (before, after) else float("nan")
                    )

    def copy_chunks(connection: psycopg.Connection) -> None:
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
    return time.perf_counter() - started, sum(backend_seconds)


def main() -> None:
    args, token, dsn = ingest_bench_setup(__doc__.splitlines()[0], seconds=25)

    log(f"building {args.batches} request bodies")
    bodies = batches(args.batches)
    with web_server(workers=args.workers) as (url, server):
        log(f"warming up {url}")
        warm_up(url, token, bodies, args.clients)
        # The timed part starts on an empty table, as the raw COPY does.
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute("TRUNCATE samples")
        log(f"posting for up to {args.seconds:.0f} s from {args.clients} clients")
        load_before = os.getloadavg()[0]
        web_before, backends_before = (
            cpu_seconds(psutil.Process(server.pid)),
            backend_cpu_seconds(dsn),
        )
        client_before = time.process_time()
        result = post_all(url, token, bodies, args.clients, args.seconds)
        client_cpu = time.process_time() - client_before
        web_cpu = cpu_seconds(psutil.Process(server.pid)) - web_before
        backends_cpu = sum(
            seconds - backends_before.get(pid, 0.0)
            for pid, seconds in backend_cpu_seconds(dsn).items()
        )
    accepted = result["statuses"].get(202, 0)
    http_rate = accepted * BATCH / result["seconds"]
    latencies = result["latencies"]

    with psycopg.connect(dsn, autocommit=True) as db:
        rows = as_posted(db)
        stored = len(rows)
        db.execute("TRUNCATE samples")
        copier_before = time.process_time()
        batched, copy_backends_cpu = copy_rows(dsn, rows, args.clients, BATCH)
        copier_cpu = time.process_time() - copier_before
        db.execute("TRUNCATE samples")
        single, _ = copy_rows(dsn, rows, 1, len(rows))
        db.execute("TRUNCATE samples")
    load_after = os.getloadavg()[0]
    batched_rate, single_rate = stored / batched, stored / single
    ratio = http_rate / batched_rate
    per_batch = 1000 / accepted if accepted else float("nan")
    per_copy = 1000 * BATCH / stored if stored else float("nan")
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
                "Ingest / raw COPY (the same rows, transactions and concurrency)",
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
            f"(statuses {result['statuses']}) after a warm-up of {WARM_ROUNDS} small batches per "
            f"instance; {stored} rows stored; uvicorn --workers "
            f"{args.workers}, {args.clients} client threads on the same {os.cpu_count()} cores.",
            "The ratio compares like with like: the raw COPY writes the rows the requests "
            "stored, each request's as one transaction, in the order posted, over the same "
            "number of connections. Load average "
            f"{load_before:.1f} before the HTTP phase, {load_after:.1f} after the COPYs "
            f"({os.cpu_count()} cores).",
            "CPU per 1,000 samples: through HTTP, web processes "
            f"{web_cpu * per_batch:.2f} ms, PostgreSQL backends {backends_cpu * per_batch:.2f} "
            f"ms, load generator {client_cpu * per_batch:.2f} ms; raw COPY, PostgreSQL "
            f"backends {copy_backends_cpu * per_copy:.2f} ms, its client "
            f"{copier_cpu * per_copy:.2f} ms (the server's own processes, such as the WAL "
            "writer and autovacuum, not counted on either side).",
        ],
    )


if __name__ == "__main__":
    main()
