"""Benchmark: one alert evaluation run over 1,000 rules and 100 instances (PRODUCT.md 10),
and an evaluation storm over the same pairs.

Each instance has 10 metrics sampled every 15 s over the last 10 minutes; rules spread over
those metrics and the aggregations, with thresholds that make about one (rule, instance) in ten
breach. The first run opens the pending breaches, later ones move them on; the figure is the
median of ``--runs``.

The storm: every rule breaches on every instance, so all 100,000 pairs turn pending in one run;
one rule in ten has a ``for`` of one minute, so a run a minute later fires 10,000 alerts at once
while 90,000 pairs stay pending. Each storm run is timed and its SQL statements counted.
"""

import argparse
import random
import time
from datetime import timedelta

from bench.common import Figure, emit, log, setup_django

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


def evaluate(runs: int, now) -> tuple[list[float], str]:
    from alerts.evaluation import evaluate_rules

    seconds = []
    for run in range(runs):
        summary = evaluate_rules(now=now + timedelta(seconds=15 * run))
        seconds.append(summary.seconds)
        state = f"pending={summary.pending} fired={summary.fired} resolved={summary.resolved}"
        log(f"run {run + 1}: {summary.seconds:.3f} s {state}")
    return seconds, state


def storm(now, instances: int) -> list[tuple[str, float, float, int, object]]:
    """``(what, seconds, seconds of this process's CPU, SQL statements, summary)`` of each
    storm run from ``now``."""
    from django.db import connection

    from alerts.evaluation import evaluate_rules
    from alerts.models import AlertRule, PendingBreach
    from instances.models import Instance

    PendingBreach.objects.all().delete()
    # Every aggregation of these samples is at least 0: every pair breaches.
    AlertRule.objects.update(warning_threshold=-1, for_duration=timedelta(hours=1))
    rules = list(AlertRule.objects.order_by("pk").values_list("pk", flat=True))
    AlertRule.objects.filter(pk__in=rules[::10]).update(for_duration=timedelta(minutes=1))
    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    runs = []
    for what, at in [
        (f"{len(rules) * instances:,} pairs turn pending", now),
        (f"{len(rules) * instances:,} pairs stay pending", now + timedelta(seconds=15)),
        ("storm", now + timedelta(minutes=1)),
    ]:
        # The agents are reporting: no instance is down at any of these times.
        Instance.objects.update(last_seen=at)
        statements = 0
        started, cpu = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(count):
            summary = evaluate_rules(now=at)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        log(
            f"storm, {what}: {seconds:.3f} s ({cpu:.2f} s CPU here), {statements} statements, "
            f"pending={summary.pending} fired={summary.fired} resolved={summary.resolved}"
        )
        runs.append((what, seconds, cpu, statements, summary))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    setup_django()
    from django.db.models import F
    from django.utils import timezone

    from alerts.models import AlertRule

    now = timezone.now()
    # Thresholds a thousand times too high: every rule is read and compared, nothing breaches.
    populate(args.instances, args.rules, now, 1000.0)
    quiet, _ = evaluate(args.runs, now)
    # Then the thresholds that make about one (rule, instance) in seven breach: all pending,
    # the runs stay inside the rules' `for`.
    AlertRule.objects.update(warning_threshold=F("warning_threshold") / 1000)
    breaching, state = evaluate(args.runs, now + timedelta(seconds=15 * args.runs))
    quiet_median, breaching_median = (
        sorted(quiet)[args.runs // 2],
        sorted(breaching)[args.runs // 2],
    )
    label = f"{args.rules} rules × {args.instances} instances"
    storm_runs = storm(now + timedelta(seconds=30 * args.runs), args.instances)
    (_, pending_s, _, _, _), (_, steady_s, _, _, _), (_, storm_s, _, storm_sql, fired) = storm_runs
    emit(
        [
            Figure(
                "alerts.evaluation_s",
                f"Rule evaluation, {label}",
                quiet_median,
                "s",
                "< 1 s",
                quiet_median < 1,
            ),
            Figure(
                "alerts.evaluation_breaching_s",
                f"Rule evaluation, {label}, one pair in seven pending",
                breaching_median,
                "s",
            ),
            Figure(
                "alerts.storm_pending_s",
                f"Storm: {args.rules * args.instances:,} pairs turn pending in one run",
                pending_s,
                "s",
            ),
            Figure(
                "alerts.storm_steady_s",
                f"Storm: a run with {args.rules * args.instances:,} pairs pending",
                steady_s,
                "s",
            ),
            Figure(
                "alerts.storm_firing_s",
                f"Storm: {fired.fired:,} alerts fire in one run, the other pairs pending",
                storm_s,
                "s",
                "< 2 s",
                storm_s < 2,
            ),
            Figure(
                "alerts.storm_firing_statements",
                "Storm: SQL statements of that run",
                storm_sql,
                "count",
            ),
        ],
        [
            f"medians of {args.runs} runs; quiet runs {', '.join(f'{x:.2f}' for x in quiet)} s, "
            f"breaching runs {', '.join(f'{x:.2f}' for x in breaching)} s ({state}).",
            "storm: every pair breaching, one rule in ten with a 1-minute `for`: "
            + "; ".join(
                f"{what} {seconds:.2f} s ({cpu:.2f} s of Python CPU), {sql} statements"
                for what, seconds, cpu, sql, _ in storm_runs
            )
            + f" (the firing run: pending={fired.pending} fired={fired.fired}).",
        ],
    )


if __name__ == "__main__":
    main()
