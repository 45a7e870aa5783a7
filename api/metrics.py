"""What the API refuses, counted: every refusal as an API error; only refused pushes of
samples (the ingest endpoints) as ingest errors, so a client's bad read or a wrong token on a
management call does not look like agents failing to deliver."""

from prometheus_client import Counter

from ingestion.metrics import INGEST_ERRORS

API_ERRORS = Counter("vigil_api_errors_total", "API requests refused, by reason", ["reason"])
INGEST_PATHS = {"/api/v1/ingest", "/api/v1/write", "/api/v1/metrics"}


def count_refusal(method: str, path: str, reason: str) -> None:
    API_ERRORS.labels(reason).inc()
    if method == "POST" and path.rstrip("/") in INGEST_PATHS:
        INGEST_ERRORS.labels(reason).inc()
