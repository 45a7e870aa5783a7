"""Scraping Prometheus exposition endpoints (ScrapeTarget), run by Celery beat every few seconds,
and Vigil's own /metrics every 15 s.

Each run claims the due targets (ScrapeTarget.claim_due), fetches their pages concurrently in a
bounded thread pool (HTTP only, with a timeout), then parses and stores each page through the one
ingest path, with ``up`` and ``scrape_duration_seconds`` per target, as Prometheus records them.

A target's address is vetted first (instances/outbound.py: never link-local, loopback and
private ones only with SCRAPE_ALLOW_PRIVATE), and redirects are not followed: a redirect is a
failed scrape, so a target cannot send the scraper on to an address it would have refused.
"""

import logging
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.db import DataError, InterfaceError, OperationalError, connection

from ingestion.errors import ApiError
from ingestion.exposition import TextExposition
from ingestion.metrics import count_scrape
from ingestion.models import ScrapeTarget
from ingestion.parsers import ParsedSample, TimeWindow
from ingestion.storage import store_batch
from instances.models import VIGIL_AGENT_ID, Instance
from instances.outbound import TargetBlocked, resolve_allowed

logger = logging.getLogger(__name__)

# At most this many targets are fetched at once by one worker.
MAX_CONCURRENT_SCRAPES = 16
# A scrape gives up after this long, or after its target's interval if that is shorter.
SCRAPE_TIMEOUT_SECONDS = 10.0
# Pages larger than this fail the scrape.
MAX_PAGE_BYTES = 32 * 1024 * 1024
ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises the 3xx as an HTTPError


_OPENER = urllib.request.build_opener(_RefuseRedirects)


@dataclass(frozen=True)
class Page:
    text: str | None
    seconds: float
    error: str = ""


def scrape_due_targets(now=None) -> int:
    """Scrape every due target once; returns how many scrapes were stored."""
    targets = ScrapeTarget.claim_due(now)
    if not targets:
        return 0
    with ThreadPoolExecutor(max_workers=min(len(targets), MAX_CONCURRENT_SCRAPES)) as pool:
        pages = list(pool.map(fetch, targets))
    unstored = []
    for target, page in zip(targets, pages, strict=True):
        try:
            store_scrape(target, page)
        except (OperationalError, InterfaceError) as error:
            # The storage failed, not the target: as agents get a 503 to retry, the scrape is
            # not held against the target and is tried again at the next tick.
            logger.warning("scrape of %s not stored, storage unavailable: %s", target.url, error)
            connection.close_if_unusable_or_obsolete()
            unstored.append(target)
    if unstored:
        # Still down, this raises: the targets then come round again after their interval.
        ScrapeTarget.make_due_again(unstored)
    return len(targets) - len(unstored)


def scrape_own_metrics(now: datetime | None = None) -> bool:
    """Scrape Vigil's own /metrics (OWN_METRICS_URL) into the instance that stands for Vigil,
    which the shipped "Vigil" dashboard draws; False when SCRAPE_OWN_METRICS is off.

    Over HTTP, not from this worker's registry: request and ingest counters live in the web
    process that answered them, and only its /metrics has them.
    """
    if not settings.SCRAPE_OWN_METRICS:
        return False
    page = fetch_page(settings.OWN_METRICS_URL, SCRAPE_TIMEOUT_SECONDS)
    Instance.vigil()
    store_page(VIGIL_AGENT_ID, settings.OWN_METRICS_URL, page, TimeWindow(now))
    return True


def fetch(target: ScrapeTarget) -> Page:
    """GET the target's page (no database work here: it runs in a pool thread)."""
    started = time.perf_counter()
    parts = urlsplit(target.url)
    try:
        resolve_allowed(
            parts.hostname or "",
            parts.port or (443 if parts.scheme == "https" else 80),
            allow_private=settings.SCRAPE_ALLOW_PRIVATE,
            private_setting="SCRAPE_ALLOW_PRIVATE",
        )
    except TargetBlocked as error:
        return Page(None, time.perf_counter() - started, f"target refused: {error}")
    return fetch_page(target.url, min(SCRAPE_TIMEOUT_SECONDS, target.interval_seconds))


def fetch_page(url: str, timeout: float) -> Page:
    """GET an exposition page whose address has been vetted (or is Vigil's own)."""
    started = time.perf_counter()
    request = urllib.request.Request(url, headers={"Accept": ACCEPT, "User-Agent": "Vigil-scraper"})
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            body = response.read(MAX_PAGE_BYTES + 1)
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code}"
        if 300 <= error.code < 400:
            reason += f", a redirect to {error.headers.get('Location')} (not followed)"
        return Page(None, time.perf_counter() - started, f"fetch failed: {reason}")
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or error
        return Page(None, time.perf_counter() - started, f"fetch failed: {reason}")
    seconds = time.perf_counter() - started
    if len(body) > MAX_PAGE_BYTES:
        return Page(None, seconds, f"page larger than {MAX_PAGE_BYTES} bytes")
    return Page(body.decode("utf-8", errors="replace"), seconds)


def store_scrape(target: ScrapeTarget, page: Page) -> None:
    """Store the page's samples on the target's instance and record the outcome."""
    error = store_page(
        target.instance.agent_id, target.url, page, TimeWindow(target.last_scrape_at)
    )
    target.record(not error, page.seconds, error)


def store_page(agent_id: str, url: str, page: Page, window: TimeWindow) -> str:
    """Store the page's samples with ``up`` and ``scrape_duration_seconds`` (labelled with the
    page's ``url``) on the instance ``agent_id``; returns why the scrape failed, or "".

    A page that cannot be parsed or stored counts as a failed scrape (``up`` 0), as in
    Prometheus; only the two scrape samples are stored then.
    """
    error, samples = page.error, []
    if page.text is not None:
        try:
            samples, skipped = TextExposition.parse(page.text, window)
        except ValueError as parse_error:
            error = f"not Prometheus text format: {parse_error}"
        else:
            if skipped:
                logger.info("scrape of %s: %d samples could not be stored", url, skipped)
    instance = {"agent_id": agent_id}
    if not error:
        try:
            stored = store_batch(
                instance, samples + scrape_samples(url, window, True, page.seconds)
            )
        except (ApiError, DataError) as store_error:
            error = f"samples not stored: {store_error}"
    if error:
        stored = store_batch(instance, scrape_samples(url, window, False, page.seconds))
        logger.warning("scrape of %s failed: %s", url, error)
    count_scrape(stored.accepted, not error)
    return error


def scrape_samples(url: str, window: TimeWindow, up: bool, seconds: float) -> list[ParsedSample]:
    labels = {"target": url}
    return [
        ParsedSample("up", 1.0 if up else 0.0, window.now, labels, ""),
        ParsedSample("scrape_duration_seconds", seconds, window.now, labels, "seconds"),
    ]
