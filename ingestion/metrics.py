from prometheus_client import Counter

INGEST_SAMPLES = Counter("vigil_ingest_samples_total", "Samples accepted by the ingest API")
INGEST_BATCHES = Counter("vigil_ingest_batches_total", "Batches accepted by the ingest API")
INGEST_ERRORS = Counter(
    "vigil_ingest_errors_total", "Ingest requests refused, by reason", ["reason"]
)
