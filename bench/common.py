"""What the benchmark modules share: Django set-up on the scratch database the runner gives,
the result line, timing, and a real ASGI server to measure against.

Each module runs as ``python -m bench.<name>`` with ``DATABASE_URL`` naming a scratch database
(the runner creates and drops it), logs to stderr and prints one JSON line last on stdout:
``{"figures": [...], "notes": [...]}``.
"""

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil
import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def setup_django() -> None:
    """Django on the scratch database, migrated."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds (user and system) of ``process`` and its children so far."""
    tree = [process, *process.children(recursive=True)]
    total = 0.0
    for one in tree:
        try:
            times = one.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def backend_cpu_seconds(dsn: str) -> dict[int, float]:
    """CPU seconds so far of each client backend connected to ``dsn``'s database (the server's
    own processes, such as the WAL writer and autovacuum, are not counted), by process id; empty
    when the server does not run on this machine."""
    with psycopg.connect(dsn, autocommit=True) as db:
        pids = [
            pid
            for (pid,) in db.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        ]
    seconds = {pid: backend_cpu(pid) for pid in pids}
    return {pid: cpu for pid, cpu in seconds.items() if cpu is not None}


def backend_cpu(pid: int) -> float | None:
    """CPU seconds so far of PostgreSQL backend ``pid``; None when no PostgreSQL process of this
    machine has that id (the server runs elsewhere, or the backend has gone)."""
    try:
        process = psutil.Process(pid)
        if not process.name().startswith("postgres"):
            return None
        times = process.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


def ingest_bench_setup(description: str, seconds: float) -> tuple[argparse.Namespace, str, str]:
    """For a module posting ingest batches: its arguments (``--seconds``, ``--clients``,
    ``--workers``, ``--batches``), Django on the scratch database, an ingest token and the
    database's dsn. Django's own connection is closed: the web server's processes write."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--seconds", type=float, default=seconds)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=8000)
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    from ingestion.models import IngestToken

    token = IngestToken.issue("bench")[1]
    dsn = database_dsn()
    connection.close()
    return args, token, dsn


def database_dsn() -> str:
    """A psycopg connection string for Django's database (to measure below Django)."""
    from django.db import connection

    settings = connection.settings_dict
    options = settings.get("OPTIONS", {})
    parts = {
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        # A unix-socket server (the embedded one) comes as ?host=&port= in DATABASE_URL.
        "host": settings["HOST"] or options.get("host", ""),
        "port": str(settings["PORT"] or options.get("port", "")),
    }
    return psycopg.conninfo.make_conninfo(**{key: value for key, value in parts.items() if value})


def database_url(dsn: str, name: str) -> str:
    """``DATABASE_URL`` for database ``name`` on the server of ``dsn``."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user, password = info.get("user", ""), info.get("password", "")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = info.get("host", "")
    if host.startswith("/"):
        return f"postgres://{credentials}/{name}?host={host}&port={info.get('port', 5432)}"
    return f"postgres://{credentials}{host or '127.0.0.1'}:{info.get('port', 5432)}/{name}"


@dataclass
class Figure:
    key: str
    label: str
    value: float
    unit: str
    target: str | None = None
    met: bool | None = None


def emit(figures: list[Figure], notes: list[str]) -> None:
    print(json.dumps({"figures": [asdict(f) for f in figures], "notes": notes}), flush=True)


def median_ms(call: Callable[[], object], runs: int = 9, warm: int = 2) -> float:
    """Median wall time of ``call`` in milliseconds, after ``warm`` unmeasured runs."""
    return alternating_medians_ms([call], runs, warm)[0]


def alternating_medians_ms(
    calls: list[Callable[[], object]], runs: int = 9, warm: int = 2
) -> list[float]:
    """``median_ms`` of each of ``calls``, run in turn, so that a burst of load on the shared
    cores falls on all of them alike rather than on whichever was being timed."""
    for _ in range(warm):
        for call in calls:
            call()
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for call, spent in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            spent.append(time.perf_counter() - started)
    return [statistics.median(spent) * 1000 for spent in times]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def production_env(**extra: str) -> dict[str, str]:
    """The web process's environment: production settings on the scratch database."""
    return {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "INGEST_RATE_LIMIT_PER_MINUTE": "100000000",
        **extra,
    }


def wait_until_answering(url: str, process: subprocess.Popen, name: str) -> None:
    """Return once ``url`` answers; RuntimeError if ``process`` exits or 60 s pass first."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    """Terminate ``process``, killing it if it has not exited after 15 s."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def web_server(workers: int = 2, env: dict[str, str] | None = None):
    """uvicorn serving Vigil on a free loopback port; yields (base url, process)."""
    port = free_port()
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env or production_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/healthz", process, "the web server")
        yield url, process
    finally:
        stop(process)
