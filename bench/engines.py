"""Benchmark: ingest samples/s and bytes per stored sample on each samples engine, in one run.

For each engine (``postgres``, then ``victoriametrics`` when the ``victoria-metrics`` binary is
installed) the same shape of load as ``bench.ingest``: uvicorn with production settings, client
threads posting batches of 1,000 samples for ``--seconds`` after the same warm-up. Bytes per
sample: on PostgreSQL the samples partitions with their indexes, on VictoriaMetrics its data
directory (indexes included) after a flush, each over the samples acknowledged.
"""

import shutil
import subprocess
import tempfile
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.common import (
    Figure,
    emit,
    free_port,
    ingest_bench_setup,
    log,
    production_env,
    stop,
    wait_until_answering,
    web_server,
)
from bench.ingest import BATCH, WARM_ROUNDS, batches, post_all, warm_up

VICTORIA_METRICS = shutil.which("victoria-metrics") or shutil.which("victoria-metrics-prod")


@contextmanager
def victoriametrics(data: Path):
    """A VictoriaMetrics single-node set up as the README says; yields its URL."""
    address = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [
            VICTORIA_METRICS,
            f"-httpListenAddr={address}",
            f"-storageDataPath={data}",
            "-retentionPeriod=1y",
            "-dedup.minScrapeInterval=1ms",
            "-search.latencyOffset=0s",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://{address}"
    try:
        wait_until_answering(f"{url}/health", process, "VictoriaMetrics")
        yield url
    finally:
        stop(process)


def directory_bytes(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def postgres_sample_bytes(dsn: str) -> tuple[int, int]:
    """(bytes of the samples partitions with their indexes, samples stored)."""
    with psycopg.connect(dsn) as db:
        size = db.execute(
            "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
            "WHERE i.inhparent = 'samples'::regclass"
        ).fetchone()[0]
        count = db.execute("SELECT count(*) FROM samples").fetchone()[0]
    return int(size), count


def measure(env: dict, token: str, args) -> tuple[float, int]:
    """Ingest samples/s over the timed part, and samples acknowledged in all."""
    bodies = batches(args.batches)
    with web_server(workers=args.workers, env=env) as (url, _):
        warmed = warm_up(url, token, bodies, args.clients)
        timed = post_all(url, token, bodies, args.clients, args.seconds)
    accepted = timed["statuses"].get(202, 0)
    acknowledged = accepted * BATCH + warmed
    return accepted * BATCH / timed["seconds"], acknowledged


def main() -> None:
    args, token, dsn = ingest_bench_setup(__doc__.splitlines()[0], seconds=20)

    log("postgres: posting")
    postgres_rate, _ = measure(production_env(METRICS_ENGINE="postgres"), token, args)
    postgres_bytes, postgres_samples = postgres_sample_bytes(dsn)
    figures = [
        Figure(
            "engines.postgres_samples_per_s", "postgres engine: ingest", postgres_rate, "samples/s"
        ),
        Figure(
            "engines.postgres_bytes_per_sample",
            "postgres engine: bytes per sample (partitions and indexes)",
            postgres_bytes / max(postgres_samples, 1),
            "B",
        ),
    ]
    notes = [f"postgres: {postgres_samples} samples in {postgres_bytes:,} bytes."]
    if VICTORIA_METRICS is None:
        notes.append("victoriametrics: not measured, the victoria-metrics binary is missing.")
    else:
        with tempfile.TemporaryDirectory() as scratch, victoriametrics(Path(scratch)) as vm_url:
            log("victoriametrics: posting")
            env = production_env(
                METRICS_ENGINE="victoriametrics", VM_WRITE_URL=vm_url, VM_QUERY_URL=vm_url
            )
            vm_rate, vm_samples = measure(env, token, args)
            urllib.request.urlopen(f"{vm_url}/internal/force_flush", timeout=60).read()
            vm_bytes = directory_bytes(Path(scratch))
        figures += [
            Figure(
                "engines.vm_samples_per_s", "victoriametrics engine: ingest", vm_rate, "samples/s"
            ),
            Figure(
                "engines.vm_bytes_per_sample",
                "victoriametrics engine: bytes per sample (data directory, after a flush)",
                vm_bytes / max(vm_samples, 1),
                "B",
            ),
        ]
        notes.append(
            f"victoriametrics: {vm_samples} samples acknowledged, {vm_bytes:,} bytes on disk "
            "before its background merges (which compress further)."
        )
    notes.append(
        f"Same load on each: batches of {BATCH} from {args.clients} clients, uvicorn --workers "
        f"{args.workers}, {args.seconds:.0f} s after a warm-up of {WARM_ROUNDS} small batches per "
        "instance."
    )
    emit(figures, notes)


if __name__ == "__main__":
    main()
