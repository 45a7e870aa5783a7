import os
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from config.celery import heartbeat
from ingestion.models import ScrapeTarget
from ingestion.tasks import scrape_targets
from instances.models import Instance
from tests.servers import CeleryWorker, PrivateRedis

pytestmark = pytest.mark.django_db


@pytest.fixture
def throwaway_redis():
    """A redis-server of our own, so a test can take it away."""
    server = PrivateRedis()
    yield server
    server.stop()


def use_cache_at(settings, url, **options):
    default = {**settings.CACHES["default"], "LOCATION": url, **options}
    settings.CACHES = {**settings.CACHES, "default": default}


def metric_value(client, name, **labels) -> float:
    response = client.get("/metrics")
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_healthz_answers_without_login(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_postgres_redis_and_a_worker_answer(client):
    heartbeat.delay()

    response = client.get("/readyz", HTTP_HOST="127.0.0.1:8000")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "status": "ok",
        "checks": {"postgresql": "ok", "redis": "ok", "celery": "ok"},
    }


def test_readyz_names_celery_without_a_heartbeat(client):
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["celery"]


def test_a_worker_that_just_started_counts_before_beats_first_heartbeat(
    client, settings, throwaway_redis
):
    # The worker is a process of its own: it writes with config/settings.py's key prefix.
    use_cache_at(settings, throwaway_redis.url, KEY_PREFIX="vigil")
    assert client.get("/readyz").json()["failing"] == ["celery"]

    worker = CeleryWorker({**os.environ, "REDIS_URL": throwaway_redis.url}, "fresh")
    try:
        response = client.get("/readyz")
    finally:
        worker.stop()

    assert response.status_code == 200, response.content


def test_readyz_names_celery_when_the_heartbeat_is_stale(client, settings):
    heartbeat.delay()
    settings.CELERY_HEARTBEAT_MAX_AGE_SECONDS = 0
    time.sleep(0.01)

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["failing"] == ["celery"]


def test_readyz_names_redis_when_redis_goes_away(client, settings, throwaway_redis):
    use_cache_at(settings, throwaway_redis.url)
    heartbeat.delay()
    assert client.get("/readyz").status_code == 200

    throwaway_redis.stop()
    response = client.get("/readyz")

    assert response.status_code == 503
    assert "redis" in response.json()["failing"]
    assert response.json()["checks"]["postgresql"] == "ok"


def test_metrics_answer_prometheus_text_without_login(client):
    client.get("/healthz")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "vigil_http_requests_total" in text
    assert "vigil_ingest_samples_total" in text
    assert metric_value(client, "vigil_http_requests_total", method="GET", status="200") >= 1


@pytest.mark.django_db(transaction=True)
def test_metrics_count_ingested_samples_and_refused_batches(client, api):
    samples_before = metric_value(client, "vigil_ingest_samples_total")
    invalid_before = metric_value(client, "vigil_ingest_errors_total", reason="invalid")
    now_ms = int(time.time() * 1000)
    batch = {
        "instance": {"agent_id": "web-1"},
        "samples": [{"name": "cpu_usage", "value": 1, "ts": now_ms - i} for i in range(3)],
    }

    assert api.post("/api/v1/ingest", batch).status_code == 202
    assert api.post("/api/v1/ingest", {"samples": []}).status_code == 400

    assert metric_value(client, "vigil_ingest_samples_total") == samples_before + 3
    assert metric_value(client, "vigil_ingest_errors_total", reason="invalid") == invalid_before + 1


def test_scrapes_run_by_workers_are_counted_on_metrics(client):
    """A scrape stores its samples in a worker, whose own counters /metrics never shows."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    ScrapeTarget.objects.create(
        instance=Instance.register("host-1"), url=f"http://127.0.0.1:{closed_port}/metrics"
    )
    samples_before = metric_value(client, "vigil_scraped_samples_total")
    down_before = metric_value(client, "vigil_scrapes_total", result="down")

    scrape_targets.delay()

    # A dead target's scrape stores its up 0 and its duration.
    assert metric_value(client, "vigil_scraped_samples_total") == samples_before + 2
    assert metric_value(client, "vigil_scrapes_total", result="down") == down_before + 1
