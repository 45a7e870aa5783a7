"""Benchmark: one alert evaluation run over 1,000 rules and 100 instances (PRODUCT.md 10).

Runs in a scratch database (Django's test database for the configured DATABASE_URL, created
and dropped here), never in the real one:

    .venv/bin/python bench/alert_evaluation.py [--rules 1000] [--instances 100] [--runs 5]

Each instance has 10 metrics sampled every 15 s over the last 10 minutes; rules spread over
those metrics and the aggregations, with thresholds that make about one in ten breach. Prints
the time of each run (the first opens the pending breaches, later ones move them on) and
writes bench/alert_evaluation.json.
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

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

METRICS = [f"bench_metric_{n}" for n in range(10)]
AGGREGATIONS = ["last", "avg", "min", "max", "sum", "count", "rate", "p95"]


# Samples are uniform on [0, 100): these thresholds make about one (rule, instance) in ten breach.
WARNING = {
    "last": 90, "avg": 56.5, "min": 1.5, "max": 99.9, "sum": 2260, "count": 1e9,
    "rate": 0.19, "p95": 99.3,
}  # fmt: skip


def populate(instances: int, rules: int, now, threshold_scale: float) -> None:
    from alerts.models import AlertRule
    from instances import store
    from instances.models import Instance

    rng = random.Random(5)
    rows = []
    for n in range(instances):
        instance = Instance.register(f"bench-{n}", region=f"r{n % 4}", type="vm")
        Instance.objects.filter(pk=instance.pk).update(last_seen=now)
        keys = [store.SeriesKey(name, {"host": f"bench-{n}"}) for name in METRICS]
        ids = store.resolve_series(instance.pk, keys)
        for key in keys:
            series_id = ids[(key.name, key.labels_key)]
            for step in range(40):
                rows.append((series_id, now - timedelta(seconds=15 * step), rng.uniform(0, 100)))
    store.write_samples(rows)
    AlertRule.objects.all().delete()
    AlertRule.objects.bulk_create(
        AlertRule(
            name=f"bench rule {n}",
            metric=METRICS[n % len(METRICS)],
            aggregation=AGGREGATIONS[n % len(AGGREGATIONS)],
            window=timedelta(minutes=5),
            comparator=">",
            warning_threshold=WARNING[AGGREGATIONS[n % len(AGGREGATIONS)]] * threshold_scale,
            critical_threshold=None,
            for_duration=timedelta(minutes=1),
        )
        for n in range(rules)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--threshold-scale", type=float, default=1.0, help="1000 makes nothing breach"
    )
    args = parser.parse_args()

    from alerts.evaluation import evaluate_rules

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        now = timezone.now()
        started = time.perf_counter()
        populate(args.instances, args.rules, now, args.threshold_scale)
        print(f"populated in {time.perf_counter() - started:.1f} s")
        seconds = []
        for run in range(args.runs):
            summary = evaluate_rules(now=now + timedelta(seconds=15 * run))
            seconds.append(summary.seconds)
            print(
                f"run {run + 1}: {summary.seconds:.3f} s  rules={summary.rules} "
                f"pending={summary.pending} fired={summary.fired} resolved={summary.resolved}"
            )
        result = {
            "rules": args.rules,
            "instances": args.instances,
            "series_per_rule": args.instances,
            "runs_seconds": seconds,
            "median_seconds": statistics.median(seconds),
        }
        print(f"median {result['median_seconds']:.3f} s for {args.rules} rules x "
              f"{args.instances} instances")
        Path(__file__).with_name("alert_evaluation.json").write_text(json.dumps(result, indent=2))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
