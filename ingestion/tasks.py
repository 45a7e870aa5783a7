from celery import shared_task

from ingestion import scrape


@shared_task(name="ingestion.scrape_targets", ignore_result=True)
def scrape_targets() -> None:
    """Scrape the due scrape targets once (each claimed by one worker only)."""
    scrape.scrape_due_targets()


@shared_task(name="ingestion.scrape_own_metrics", ignore_result=True)
def scrape_own_metrics() -> None:
    """Store Vigil's own /metrics as the instance "vigil" (unless SCRAPE_OWN_METRICS is off)."""
    scrape.scrape_own_metrics()
