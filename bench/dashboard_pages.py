"""Benchmark: the dashboard's pages over 500 instances with a day of 30 s samples (issue 4).

Runs in the database DATABASE_URL names, which should be a scratch one (it is migrated and
filled here, and reused by later runs when it already holds the fleet):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vigil_bench \\
        .venv/bin/python bench/dashboard_pages.py [--instances 500] [--runs 15] [--reload]

Each instance gets ``cpu_usage`` and ``memory_usage`` every 30 s over the last 24 hours (2,880
samples per series, 2.9 million rows for 500 instances), written with binary COPY through
instances/store.py. Each page is fetched through the Django test client as a logged-in user:
one cold request, then ``--runs`` warm ones. Prints a table (median, p95, queries) and merges
its figures into bench/results.json under "dashboard_pages".
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

RESULTS = Path(__file__).with_name("results.json")
METRICS = ("cpu_usage", "memory_usage")
STEP = timedelta(seconds=30)
SPAN = timedelta(hours=24)
AGENT_PREFIX = "bench-dash-"
# Rows per COPY, so memory stays small.
COPY_ROWS = 200_000


def populate(instances: int) -> None:
    """The fleet: instances, their two series, a day of samples each, and a few alerts."""
    from alerts.models import Alert
    from instances import store
    from instances.models import Instance

    rng = random.Random(4)
    now = timezone.now()
    steps = int(SPAN / STEP)
    store.ensure_partitions({(now - SPAN).date(), now.date(), (now + timedelta(days=1)).date()})
    statuses = ["healthy"] * 8 + ["warning", "unhealthy"]
    created = Instance.objects.bulk_create(
        Instance(
            agent_id=f"{AGENT_PREFIX}{n:04d}",
            name=f"bench-{n:04d}.example.net",
            type=("web", "db", "cache", "worker")[n % 4],
            region=("fra1", "nyc1", "sgp1")[n % 3],
            status=statuses[n % len(statuses)],
            last_seen=now,
        )
        for n in range(instances)
    )
    levels = {}
    for instance in created:
        keys = [store.SeriesKey(name, {}, "percent") for name in METRICS]
        for series_id in store.resolve_series(instance.pk, keys).values():
            levels[series_id] = rng.uniform(10, 80)
    # In time order, as agents deliver them: the samples table's BRIN index on ts relies on it.
    rows = []
    for step in range(steps):
        ts = now - STEP * (steps - step)
        for series_id, level in levels.items():
            levels[series_id] = level = min(100.0, max(0.0, level + rng.gauss(0, 2)))
            rows.append((series_id, ts, level))
        if len(rows) >= COPY_ROWS or step + 1 == steps:
            store.write_samples(rows)
            rows = []
    print(f"  {len(levels) * steps} samples stored", flush=True)
    Alert.objects.bulk_create(
        Alert(
            instance=instance,
            alert_type="HighCpu",
            fingerprint=f"bench-{instance.pk}",
            severity=("warning", "critical")[n % 2],
            message="cpu_usage above threshold",
        )
        for n, instance in enumerate(created[::25])
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def time_page(client: Client, url: str, runs: int) -> dict:
    """One cold request, then ``runs`` warm ones: milliseconds and query count."""
    cold_started = time.perf_counter()
    response = client.get(url)
    cold = (time.perf_counter() - cold_started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    timings = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return {
        "cold_ms": round(cold, 1),
        "median_ms": round(statistics.median(timings), 1),
        "p95_ms": round(statistics.quantiles(timings, n=20, method="inclusive")[18], 1),
        "queries": len(queries.captured_queries),
        "bytes": len(response.content),
        "runs": runs,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--reload", action="store_true", help="drop the fleet and store it again")
    args = parser.parse_args()

    from django.contrib.auth import get_user_model

    from instances.models import Instance

    setup_test_environment()  # lets the test client's "testserver" host in
    # The pages' {% static %} must not need collectstatic's manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    print(f"database {connection.settings_dict['NAME']}")
    call_command("migrate", verbosity=0)
    fleet = Instance.objects.filter(agent_id__startswith=AGENT_PREFIX)
    if args.reload or fleet.count() != args.instances:
        Instance.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE samples")
        started = time.perf_counter()
        print(f"storing {args.instances} instances x {len(METRICS)} series x one day at 30 s")
        populate(args.instances)
        print(f"stored in {time.perf_counter() - started:.1f} s")

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"is_superuser": True, "is_staff": True}
    )
    client = Client()
    client.force_login(user)
    one = fleet.order_by("name").first()
    pages = {
        "overview": "/",
        "instance 1h": f"/instances/{one.pk}/",
        "instance 24h": f"/instances/{one.pk}/?range=24h",
        "alerts": "/alerts/",
    }
    results = {name: time_page(client, url, args.runs) for name, url in pages.items()}

    print(f"\n{'page':<14}{'cold ms':>10}{'median ms':>11}{'p95 ms':>9}{'queries':>9}{'KiB':>8}")
    for name, row in results.items():
        print(
            f"{name:<14}{row['cold_ms']:>10.1f}{row['median_ms']:>11.1f}{row['p95_ms']:>9.1f}"
            f"{row['queries']:>9}{row['bytes'] / 1024:>8.0f}"
        )
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    merged["dashboard_pages"] = {
        "instances": args.instances,
        "samples_per_series": int(SPAN / STEP),
        "series": args.instances * len(METRICS),
        "client": "django.test.Client, logged in",
        "pages": results,
    }
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
