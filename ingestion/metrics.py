"""Ingest's own metrics on /metrics.

Samples pushed to the API are counted in the web process that answers /metrics. Scrapes run in
Celery workers, so what they store is kept in shared figures in Redis
(``instances/worker_metrics.py``), read back at scrape time by a collector registered when the
app loads.
"""

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily

from instances.worker_metrics import SharedFigures

INGEST_SAMPLES = Counter("vigil_ingest_samples_total", "Samples accepted by the ingest API")
INGEST_BATCHES = Counter("vigil_ingest_batches_total", "Batches accepted by the ingest API")
INGEST_ERRORS = Counter(
    "vigil_ingest_errors_total", "Ingest requests refused, by reason", ["reason"]
)
SCRAPE_FIGURES = SharedFigures("vigil:metrics:scrapes")


def count_scrape(samples: int, up: bool) -> None:
    """Record one scrape: the samples it stored (``up`` and the duration too) and its outcome."""
    SCRAPE_FIGURES.add({"samples": samples, "scrapes_up" if up else "scrapes_down": 1})


class ScrapesCollector:
    def describe(self):
        # Nothing at registration time: collect() needs Redis, which may not be up yet.
        return []

    def collect(self):
        stored = SCRAPE_FIGURES.read()
        if stored is None:
            return
        yield CounterMetricFamily(
            "vigil_scraped_samples",
            "Samples stored by Vigil's scrapes (its scrape targets and its own /metrics)",
            value=stored.get("samples", 0),
        )
        scrapes = CounterMetricFamily(
            "vigil_scrapes", "Scrapes by Vigil, by whether the target answered", labels=["result"]
        )
        scrapes.add_metric(["up"], stored.get("scrapes_up", 0))
        scrapes.add_metric(["down"], stored.get("scrapes_down", 0))
        yield scrapes
