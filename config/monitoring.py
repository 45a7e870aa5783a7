"""Vigil's own health: /healthz, /readyz and /metrics (PRODUCT.md section 11)."""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, Counter, Histogram, generate_latest

from alerts.links import base_url_mismatch
from config.celery import HEARTBEAT_KEY
from instances.samples import POSTGRES, samples_engine

HTTP_REQUESTS = Counter("vigil_http_requests_total", "HTTP requests answered", ["method", "status"])
HTTP_LATENCY = Histogram(
    "vigil_http_request_duration_seconds",
    "Time to answer an HTTP request",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        HTTP_LATENCY.observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(request.method, str(response.status_code)).inc()
        return response


@require_GET
def healthz(request):
    """The process is alive and answering."""
    return JsonResponse({"status": "ok"})


def _check_postgres() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as error:
        return f"postgresql: {error.__class__.__name__}"
    return None


def _check_redis_and_celery() -> list[str]:
    try:
        beat = cache.get(HEARTBEAT_KEY)
    except Exception as error:
        return [f"redis: {error.__class__.__name__}", "celery: unknown (redis unreachable)"]
    if beat is None:
        return ["celery: no worker heartbeat yet"]
    age = time.time() - float(beat)
    if age > settings.CELERY_HEARTBEAT_MAX_AGE_SECONDS:
        return [f"celery: last worker heartbeat {age:.0f}s ago"]
    return []


def readiness_failures() -> list[str]:
    """What keeps Vigil from serving, as ``"<check>: <why>"``; empty when it is ready."""
    stores = [_check_postgres(), samples_engine().unavailable()]
    return [failure for failure in stores if failure] + _check_redis_and_celery()


@require_GET
def readyz(request):
    """Ready to serve: PostgreSQL answers (and VictoriaMetrics, when it keeps the samples),
    Redis answers, a Celery worker beat recently.

    ``warnings`` lists what works but needs a person's attention (it never fails the check)."""
    failures = readiness_failures()
    checks = {name: "ok" for name in ("postgresql", "redis", "celery")}
    if samples_engine().name != POSTGRES:
        checks[samples_engine().name] = "ok"
    for failure in failures:
        checks[failure.split(":")[0]] = failure.split(": ", 1)[1]
    answer = {"status": "ok", "checks": checks}
    if failures:
        answer = {
            "status": "unavailable",
            "failing": [f.split(":")[0] for f in failures],
            "checks": checks,
        }
    warnings = [warning for warning in [base_url_mismatch(request)] if warning]
    if warnings := warnings + samples_engine().warnings():
        answer["warnings"] = warnings
    return JsonResponse(answer, status=503 if failures else 200)


@require_GET
def metrics(request):
    """Prometheus text exposition of this process's counters."""
    # generate_latest() writes text format 0.0.4; CONTENT_TYPE_LATEST would label it 1.0.0.
    return HttpResponse(generate_latest(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
