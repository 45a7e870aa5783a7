"""Benchmark: 1,000 HTTP checks every 20 s against a local server, run by one Celery worker.

The checks' due times are spread over their first interval; a real worker (``--concurrency``
processes) and beat run them for ``--seconds`` after one warm-up interval. Reports the
scheduling lag (from due to the probe starting, p50 and p95 from the workers'
vigil_check_schedule_lag_seconds histogram, interpolated within its buckets as
histogram_quantile does), probes run against probes due, and the worker's CPU.
"""

import argparse
import os
import random
import subprocess
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil

from bench.common import (
    PYTHON,
    ROOT,
    Figure,
    cpu_seconds,
    emit,
    log,
    production_env,
    setup_django,
    stop,
)

LAG_TARGET_P95_SECONDS = 2.0


class Healthy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format, *args) -> None:
        pass


class Target(ThreadingHTTPServer):
    """The checked server. A batch opens its 50 connections at once: a deep listen backlog
    keeps them from waiting a second for a retransmitted SYN (the default backlog is 5)."""

    request_queue_size = 1024
    daemon_threads = True


def quantile(fraction: float, buckets: list[tuple[float, float]]) -> float:
    """``fraction``'s quantile of a cumulative histogram [(upper bound, count)], linear within
    the bucket it falls in (as PromQL's histogram_quantile)."""
    total = buckets[-1][1]
    rank, lower, below = fraction * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def lag_histogram() -> tuple[list[tuple[float, float]], float]:
    """(cumulative buckets, probes) of the lag histogram as the workers have recorded it."""
    from checks.metrics import FIGURES, LAG_BUCKETS

    stored = FIGURES.read() or {}
    count = stored.get("lag_count", 0.0)
    buckets = [(bound, stored.get(f"lag_le_{bound}", 0.0)) for bound in LAG_BUCKETS]
    return [*buckets, (float("inf"), count)], count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=1000)
    parser.add_argument("--interval", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=100)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()

    os.environ["CHECKS_ALLOW_PRIVATE"] = "1"
    setup_django()
    from django.utils import timezone

    from checks.models import Check

    target = Target(("127.0.0.1", 0), Healthy)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{target.server_address[1]}/health"

    log(f"creating {args.checks} checks on {url}")
    for number in range(args.checks):
        Check(
            name=f"bench-{number}",
            kind=Check.Kind.HTTP,
            url=url,
            interval_seconds=args.interval,
            jitter_seconds=1,
            timeout_seconds=5,
        ).save()
    now = timezone.now()
    for check in Check.objects.only("pk"):
        Check.objects.filter(pk=check.pk).update(
            next_run_at=now + timedelta(seconds=random.uniform(0, args.interval))
        )

    env = production_env(CHECKS_ALLOW_PRIVATE="1", LOG_LEVEL="WARNING")
    celery = [PYTHON, "-m", "celery", "-A", "config"]
    worker = subprocess.Popen(
        [*celery, "worker", "--concurrency", str(args.concurrency), "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
    )
    beat = subprocess.Popen(
        [
            *celery,
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            f"/tmp/vigil-bench-beat-{os.getpid()}",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        log(f"warming up for one interval ({args.interval} s)")
        time.sleep(args.interval)
        buckets_before, probes_before = lag_histogram()
        cpu_before, started = cpu_seconds(psutil.Process(worker.pid)), time.monotonic()
        log(f"measuring for {args.seconds:.0f} s")
        time.sleep(args.seconds)
        buckets_after, probes_after = lag_histogram()
        cpu = cpu_seconds(psutil.Process(worker.pid)) - cpu_before
        elapsed = time.monotonic() - started
    finally:
        stop(beat)
        stop(worker)
        target.shutdown()

    window = [
        (bound, after - before)
        for (bound, after), (_, before) in zip(buckets_after, buckets_before, strict=True)
    ]
    probes = probes_after - probes_before
    due = args.checks * elapsed / args.interval
    p50, p95 = quantile(0.5, window), quantile(0.95, window)
    worker_cpu = 100 * cpu / elapsed
    emit(
        [
            Figure("checks_lag_p50", "Check scheduling lag p50", round(p50, 3), "s"),
            Figure(
                "checks_lag_p95",
                "Check scheduling lag p95",
                round(p95, 3),
                "s",
                f"< {LAG_TARGET_P95_SECONDS:g} s",
                p95 < LAG_TARGET_P95_SECONDS,
            ),
            Figure("checks_probes_per_s", "Check probes run", round(probes / elapsed, 1), "/s"),
            Figure("checks_worker_cpu", "Check worker CPU", round(worker_cpu), "% of a core"),
        ],
        [
            f"{args.checks} HTTP checks every {args.interval} s against a local server, "
            f"one worker of {args.concurrency} processes (CHECKS_CONCURRENCY threads each) and "
            f"beat, measured over {elapsed:.0f} s after a {args.interval} s warm-up: "
            f"{probes:.0f} probes of {due:.0f} due; lag quantiles interpolated within the "
            "histogram's buckets (0.1, 0.25, 0.5, 1, 2, 5 s ...)",
        ],
    )


if __name__ == "__main__":
    main()
