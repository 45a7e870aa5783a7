"""Benchmark: the dashboard's pages at fleet scale (issue 20): the overview over 5,000 instances,
the alerts page with 10,000 open alerts and the instance page of an instance with 2,000 series.

Runs as ``python -m bench.dashboard_pages`` in the scratch database ``DATABASE_URL`` names (see
bench/common.py). Each of the fleet's instances gets ``cpu_usage`` and ``memory_usage`` every
30 s over the overview's sparkline hour; one more instance has 2,000 series (100 names × 20
label sets) over the instance page's default hour. Each page is fetched through the Django test
client as a Viewer: two warm-ups, then the median of ``RUNS`` requests, taken in turn.
"""

import os
import random
import time
from datetime import timedelta

from bench.common import Figure, alternating_medians_ms, emit, log, setup_django

INSTANCES = 5000
OPEN_ALERTS = 10_000
WIDE_NAMES, WIDE_LABEL_SETS = 100, 20
METRICS = ("cpu_usage", "memory_usage")
STEP = timedelta(seconds=30)
SPAN = timedelta(minutes=70)
RUNS = 9
# Rows per COPY, so memory stays small.
COPY_ROWS = 200_000
TARGETS_MS = {"overview": 300, "alerts": 300, "instance": 500}


def store_samples(levels: dict[int, float], rng: random.Random) -> int:
    """``SPAN`` of samples every ``STEP`` for each series of ``levels``, in time order as agents
    deliver them (the samples table's BRIN index on ts relies on it)."""
    from django.db import transaction
    from django.utils import timezone

    from instances import store

    now = timezone.now()
    steps = int(SPAN / STEP)
    rows = []
    for step in range(steps):
        ts = now - STEP * (steps - step)
        for series_id, level in levels.items():
            levels[series_id] = level = min(100.0, max(0.0, level + rng.gauss(0, 2)))
            rows.append((series_id, ts, level))
        if len(rows) >= COPY_ROWS or step + 1 == steps:
            with transaction.atomic():
                store.write_samples(rows)
            rows = []
    return len(levels) * steps


def populate() -> tuple[str, int]:
    """The fleet, its samples, the open alerts and the wide instance; returns the wide
    instance's id and the samples stored."""
    from django.db import connection
    from django.utils import timezone

    from alerts.models import Alert
    from instances import store
    from instances.models import Instance

    rng = random.Random(4)
    now = timezone.now()
    store.ensure_partitions({(now - SPAN).date(), now.date(), (now + timedelta(days=1)).date()})
    statuses = ["healthy"] * 8 + ["warning", "unhealthy"]
    fleet = Instance.objects.bulk_create(
        Instance(
            agent_id=f"bench-{n:05d}",
            name=f"bench-{n:05d}.example.net",
            type=("web", "db", "cache", "worker")[n % 4],
            region=("fra1", "nyc1", "sgp1")[n % 3],
            status=statuses[n % len(statuses)],
            last_seen=now,
        )
        for n in range(INSTANCES)
    )
    levels = {}
    for instance in fleet:
        keys = [store.SeriesKey(name, {}, "percent") for name in METRICS]
        for series_id in store.resolve_series(instance.pk, keys).values():
            levels[series_id] = rng.uniform(10, 80)
    wide = Instance.objects.create(agent_id="bench-wide", name="wide.example.net", last_seen=now)
    keys = [
        store.SeriesKey(f"app_metric_{name:03d}", {"shard": str(shard)}, "percent")
        for name in range(WIDE_NAMES)
        for shard in range(WIDE_LABEL_SETS)
    ]
    for series_id in store.resolve_series(wide.pk, keys).values():
        levels[series_id] = rng.uniform(10, 80)
    samples = store_samples(levels, rng)
    Alert.objects.bulk_create(
        Alert(
            instance=fleet[n % INSTANCES],
            alert_type=f"HighCpu{n // INSTANCES}",
            fingerprint=f"bench-{n}",
            severity=("warning", "critical")[n % 2],
            message="cpu_usage above threshold",
            created_at=now - timedelta(seconds=n),
        )
        for n in range(OPEN_ALERTS)
    )
    # What autovacuum does after a load: statistics, and the BRIN summaries of the new block
    # ranges (unsummarized ranges are read whole: the ingest rate's count would read the table).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    return str(wide.pk), samples


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from accounts.permissions import Role, set_role

    setup_test_environment()  # lets the test client's "testserver" host in
    # The pages' {% static %} must not need collectstatic's manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    started = time.perf_counter()
    wide, samples = populate()
    log(f"stored {samples} samples in {time.perf_counter() - started:.1f} s")
    user = get_user_model().objects.create_user("bench-viewer")
    set_role(user, Role.VIEWER)
    client = Client()
    client.force_login(user)
    pages = {
        "overview": ("/", f"Overview, {INSTANCES:,} instances"),
        "alerts": ("/alerts/", f"Alerts page, {OPEN_ALERTS:,} open alerts"),
        "instance": (
            f"/instances/{wide}/",
            f"Instance page, {WIDE_NAMES * WIDE_LABEL_SETS:,} series ({WIDE_NAMES} names)",
        ),
    }
    sizes, queries = {}, {}

    def fetch(key: str, url: str):
        def call() -> None:
            with CaptureQueriesContext(connection) as captured:
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            sizes[key], queries[key] = len(response.content), len(captured.captured_queries)

        return call

    load_before = os.getloadavg()[0]
    medians = alternating_medians_ms(
        [fetch(key, url) for key, (url, _) in pages.items()], runs=RUNS, warm=2
    )
    load_after = os.getloadavg()[0]
    figures = [
        Figure(
            f"page_{key}_ms",
            label,
            round(median, 1),
            "ms",
            f"< {TARGETS_MS[key]} ms",
            median < TARGETS_MS[key],
        )
        for (key, (_, label)), median in zip(pages.items(), medians, strict=True)
    ]
    emit(
        figures,
        [
            f"{INSTANCES:,} instances × {len(METRICS)} series and one instance with "
            f"{WIDE_NAMES * WIDE_LABEL_SETS:,} series, {SPAN.total_seconds() / 60:.0f} min at "
            f"30 s ({samples:,} samples), {OPEN_ALERTS:,} open alerts; each page through the "
            f"Django test client as a Viewer, median of {RUNS} after two warm-ups, taken in turn. "
            + "; ".join(
                f"{key}: {queries[key]} queries, {sizes[key] / 1024:.0f} KiB" for key in pages
            )
            + f". Load average {load_before:.1f} before the timings, {load_after:.1f} after "
            f"({os.cpu_count()} cores)."
        ],
    )


if __name__ == "__main__":
    main()
