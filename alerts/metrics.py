"""Alerting's own metrics on /metrics: evaluation time and failed deliveries.

Evaluation and delivery run in Celery workers, while /metrics is answered by web processes, so
these are shared figures in Redis (``instances/worker_metrics.py``), read back at scrape time by
a collector registered when the app loads.
"""

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from instances.worker_metrics import SharedFigures

FIGURES = SharedFigures("vigil:metrics:alerts")
EVALUATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def observe_evaluation(seconds: float) -> None:
    buckets = {f"evaluation_le_{bound}": 1 for bound in EVALUATION_BUCKETS if seconds <= bound}
    FIGURES.add({"evaluation_sum": seconds, "evaluation_count": 1, **buckets})


def count_notification_failure(kind: str) -> None:
    FIGURES.add({f"failures_{kind}": 1})


class AlertingCollector:
    def describe(self):
        # Nothing at registration time: collect() needs Redis, which may not be up yet.
        return []

    def collect(self):
        stored = FIGURES.read()
        if stored is None:
            return
        count = stored.get("evaluation_count", 0)
        buckets = [(str(b), stored.get(f"evaluation_le_{b}", 0)) for b in EVALUATION_BUCKETS]
        yield HistogramMetricFamily(
            "vigil_alert_evaluation_seconds",
            "Time to evaluate every alert rule once",
            buckets=[*buckets, ("+Inf", count)],
            sum_value=stored.get("evaluation_sum", 0),
        )
        failures = CounterMetricFamily(
            "vigil_notification_failures",
            "Failed notification delivery attempts",
            labels=["kind"],
        )
        for key, value in sorted(stored.items()):
            if key.startswith("failures_"):
                failures.add_metric([key.removeprefix("failures_")], value)
        yield failures
