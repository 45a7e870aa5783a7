"""Checks' own metrics on /metrics: how late probes start after they are due, and how many run.

Probes run in Celery workers while /metrics is answered by web processes, so these are shared
figures in Redis (``instances/worker_metrics.py``), written once per batch of probes and read
back at scrape time by a collector registered when the app loads.
"""

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

from instances.worker_metrics import SharedFigures

FIGURES = SharedFigures("vigil:metrics:checks")
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


def observe_batch(lags: list[float], successes: int, failures: int) -> None:
    """Record a batch of probes: each one's lag between due and started, and their outcomes."""
    figures = {
        "lag_sum": sum(lags),
        "lag_count": len(lags),
        "probes_success": successes,
        "probes_failure": failures,
    }
    for bound in LAG_BUCKETS:
        figures[f"lag_le_{bound}"] = sum(1 for lag in lags if lag <= bound)
    FIGURES.add(figures)


class ChecksCollector:
    def describe(self):
        # Nothing at registration time: collect() needs Redis, which may not be up yet.
        return []

    def collect(self):
        stored = FIGURES.read()
        if stored is None:
            return
        buckets = [(str(b), stored.get(f"lag_le_{b}", 0)) for b in LAG_BUCKETS]
        yield HistogramMetricFamily(
            "vigil_check_schedule_lag_seconds",
            "Time from when a probe was due to when it started",
            buckets=[*buckets, ("+Inf", stored.get("lag_count", 0))],
            sum_value=stored.get("lag_sum", 0),
        )
        probes = CounterMetricFamily(
            "vigil_check_probes", "Probes run, by whether they succeeded", labels=["result"]
        )
        for result in ("success", "failure"):
            probes.add_metric([result], stored.get(f"probes_{result}", 0))
        yield probes
