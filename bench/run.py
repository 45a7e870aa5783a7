"""`make bench`: run every benchmark module in its own scratch database, print one table and
write bench/results.json.

Modules run one after another as ``python -m bench.<name>`` (see bench/common.py for their
contract) against the PostgreSQL and Redis of ``DATABASE_URL`` / ``REDIS_URL``, or the embedded
servers when those are not set, as ``make run`` does.
"""

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg

from bench.common import database_dsn, database_url

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "ingest",
    "engines",
    "queries",
    "compaction",
    "alert_evaluation",
    "fanout",
    "soak",
    "promql",
    "checks",
    "dashboards",
    "dashboard_pages",
]


def server_urls() -> tuple[str, str]:
    """The PostgreSQL and Redis to measure on: the configured ones, else the embedded ones."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.conf import settings

    django.setup()

    return database_dsn(), settings.REDIS_URL


def machine(dsn: str) -> dict:
    with psycopg.connect(dsn) as db:
        postgres = db.execute("SHOW server_version").fetchone()[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "postgresql": postgres,
        "python": platform.python_version(),
        "commit": commit,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run_module(name: str, dsn: str, redis_url: str) -> dict:
    scratch = f"vigil_bench_{name}"
    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {scratch}")
    env = {**os.environ, "DATABASE_URL": database_url(dsn, scratch), "REDIS_URL": redis_url}
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        lines = done.stdout.strip().splitlines()
        result = json.loads(lines[-1]) if done.returncode == 0 and lines else None
        error = None if result else done.stderr[-2000:]
    except subprocess.TimeoutExpired as timeout:
        result, error = None, f"timed out after {timeout.timeout} s"
    finally:
        with psycopg.connect(dsn, autocommit=True) as db:
            db.execute(f"DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")
    seconds = time.monotonic() - started
    print(f"  {name}: {'done' if result else 'FAILED'} in {seconds:.0f} s", flush=True)
    return {"module": name, "seconds": round(seconds, 1), "error": error, **(result or {})}


def number(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"


def main() -> int:
    dsn, redis_url = server_urls()
    only = sys.argv[1:] or MODULES
    print(f"benchmarks: {', '.join(only)}", flush=True)
    results = [run_module(name, dsn, redis_url) for name in only]
    rows = [("figure", "value", "unit", "target", "met")]
    for result in results:
        if result["error"]:
            rows.append((f"{result['module']}: FAILED", "", "", "", ""))
        for figure in result.get("figures", []):
            met = {True: "yes", False: "NO", None: ""}[figure["met"]]
            rows.append(
                (
                    figure["label"],
                    number(figure["value"]),
                    figure["unit"],
                    figure["target"] or "",
                    met,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if n == 0:
            print("  ".join("-" * width for width in widths))
    for result in results:
        for note in result.get("notes", []):
            print(f"- {result['module']}: {note}")
        if result["error"]:
            print(f"- {result['module']} failed:\n{result['error']}")
    report = {"machine": machine(dsn), "modules": results}
    (ROOT / "bench" / "results.json").write_text(json.dumps(report, indent=2))
    print(f"total {sum(r['seconds'] for r in results):.0f} s; wrote bench/results.json")
    return 1 if any(result["error"] for result in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
