"""Alerting's own metrics on /metrics: evaluation time and failed deliveries.

Evaluation and delivery run in Celery workers, while /metrics is answered by web processes,
so a process-local prometheus_client metric would never show. These are kept in one Redis
hash instead and read back at scrape time by a collector registered when the app loads.
Recording is best effort: a Redis outage never fails an evaluation or a delivery.
"""

import functools
import logging

import redis
from django.conf import settings
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

logger = logging.getLogger(__name__)

KEY = "vigil:metrics:alerts"
EVALUATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def observe_evaluation(seconds: float) -> None:
    try:
        pipe = _redis().pipeline()
        pipe.hincrbyfloat(KEY, "evaluation_sum", seconds)
        pipe.hincrby(KEY, "evaluation_count", 1)
        for bound in EVALUATION_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(KEY, f"evaluation_le_{bound}", 1)
        pipe.execute()
    except redis.RedisError as error:
        logger.warning("could not record the evaluation time: %s", error)


def count_notification_failure(kind: str) -> None:
    try:
        _redis().hincrby(KEY, f"failures_{kind}", 1)
    except redis.RedisError as error:
        logger.warning("could not count a notification failure: %s", error)


class AlertingCollector:
    def describe(self):
        # Nothing at registration time: collect() needs Redis, which may not be up yet.
        return []

    def collect(self):
        try:
            stored = {key.decode(): float(value) for key, value in _redis().hgetall(KEY).items()}
        except redis.RedisError:
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
