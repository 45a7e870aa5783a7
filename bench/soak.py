"""Benchmark: a bounded soak, 200 simulated agents reporting every 30 s, compressed in time.

Each agent sends one batch of 30 metrics (the local agent's shape: cpu, memory, disk, load,
network and per-device labels) every ``--period`` seconds (30 s compressed), staggered, to the
real ASGI server on loopback for ``--seconds``. Reports requests, errors by status, latency and
the web processes' memory: at the end, its growth after the first round, and its growth per
10,000 requests over the second half (the slope of memory against requests answered, sampled
every second), when per-process caches have filled and only a leak would still grow it.
"""

import argparse
import http.client
import statistics
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import orjson
import psutil

from bench.common import Figure, emit, log, percentile, setup_django, web_server

METRICS = 30


def body(agent: int, sequence: int) -> bytes:
    ts = int(datetime.now(UTC).timestamp() * 1000)
    samples = [
        {
            "name": f"agent_metric_{m % 10}",
            "value": float((agent * 7 + sequence * 3 + m) % 100),
            "ts": ts,
            "labels": {"device": f"d{m // 10}"},
        }
        for m in range(METRICS)
    ]
    return orjson.dumps(
        {"instance": {"agent_id": f"soak-{agent}", "type": "vm"}, "samples": samples}
    )


def memory(process: psutil.Process) -> int:
    """Resident memory of the web server and its worker processes."""
    tree = [process, *process.children(recursive=True)]
    return sum(one.memory_info().rss for one in tree if one.is_running())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--period", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    from ingestion.models import IngestToken

    token = IngestToken.issue("soak")[1]
    connection.close()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    with web_server(workers=2) as (url, process):
        host, port = url.removeprefix("http://").split(":")
        server = psutil.Process(process.pid)
        statuses, latencies, lock = Counter(), [], threading.Lock()
        started = time.monotonic()
        deadline = started + args.seconds
        # Agent n reports at started + n * period / agents + k * period.
        due = [(started + n * args.period / args.agents, n, 0) for n in range(args.agents)]
        # (requests answered, web processes' memory), once a second after the first round.
        rss_samples = []
        done = threading.Event()

        def sample_memory() -> None:
            while not done.wait(1.0):
                if time.monotonic() > started + args.period:
                    with lock:
                        answered = len(latencies)
                    rss_samples.append((answered, memory(server)))

        def worker(slot: int) -> None:
            client = http.client.HTTPConnection(host, int(port), timeout=30)
            mine = due[slot :: args.threads]
            while mine:
                mine.sort()
                at, agent, sequence = mine.pop(0)
                if at >= deadline:
                    break
                time.sleep(max(0.0, at - time.monotonic()))
                sent = time.perf_counter()
                try:
                    client.request("POST", "/api/v1/ingest", body(agent, sequence), headers)
                    response = client.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    client.close()
                    client = http.client.HTTPConnection(host, int(port), timeout=30)
                    status = "connection error"
                with lock:
                    statuses[status] += 1
                    latencies.append(time.perf_counter() - sent)
                mine.append((at + args.period, agent, sequence + 1))

        log(f"{args.agents} agents every {args.period} s for {args.seconds:.0f} s")
        sampler = threading.Thread(target=sample_memory)
        sampler.start()
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        rss_end = memory(server)

    requests = sum(statuses.values())
    errors = requests - statuses[202]
    growth = (rss_end - rss_samples[0][1]) / 2**20
    second_half = rss_samples[len(rss_samples) // 2 :]
    slope = statistics.linear_regression(*zip(*second_half, strict=True)).slope
    growth_per_10k = slope * 10_000 / 2**20
    emit(
        [
            Figure("soak.requests_per_s", "Soak: requests/s achieved", requests / elapsed, "req/s"),
            Figure(
                "soak.errors", "Soak: requests not answered 202", errors, "count", "0", errors == 0
            ),
            Figure("soak.p50_ms", "Soak: request p50", statistics.median(latencies) * 1000, "ms"),
            Figure("soak.p95_ms", "Soak: request p95", percentile(latencies, 0.95) * 1000, "ms"),
            Figure(
                "soak.rss_end_mib", "Soak: web processes' memory at the end", rss_end / 2**20, "MiB"
            ),
            Figure(
                "soak.rss_growth_mib", "Soak: memory growth after the first round", growth, "MiB"
            ),
            Figure(
                "soak.rss_growth_per_10k_mib",
                "Soak: memory growth per 10,000 requests, second half",
                growth_per_10k,
                "MiB",
            ),
        ],
        [
            f"{requests} requests in {elapsed:.0f} s ({dict(statuses)}); {args.agents} agents × "
            f"{METRICS} samples every {args.period} s (30 s compressed "
            f"{30 / args.period:.0f}×), uvicorn --workers 2; memory "
            f"{rss_samples[0][1] / 2**20:.0f} MiB after the first round, "
            f"{second_half[0][1] / 2**20:.0f} MiB at {second_half[0][0]} requests, sampled "
            f"{len(rss_samples)} times."
        ],
    )


if __name__ == "__main__":
    main()
