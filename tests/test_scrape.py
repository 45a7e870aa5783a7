import importlib
import threading
from datetime import timedelta

import psycopg
import pytest
from django.apps import apps
from django.db import connection, transaction
from django.utils import timezone

from alerts.evaluation import evaluate_rules
from alerts.models import Alert
from bench.common import database_dsn
from ingestion.models import ScrapeTarget
from ingestion.tasks import scrape_targets
from instances import store
from instances.models import Instance
from tests.prometheus_services import free_port, needs_node_exporter, node_exporter


def latest(agent_id: str) -> dict:
    instance = Instance.objects.get(agent_id=agent_id)
    return {
        (v.name, tuple(sorted(v.labels.items()))): v.value
        for v in store.latest_values(instance_ids=[instance.pk])
    }


def target_for(url: str, agent_id: str = "host-1", **fields) -> ScrapeTarget:
    return ScrapeTarget.objects.create(
        instance=Instance.register(agent_id), url=url, interval_seconds=15, **fields
    )


@needs_node_exporter
@pytest.mark.django_db(transaction=True)
def test_scraping_a_node_exporter_stores_its_samples_and_up_1(tmp_path):
    with node_exporter(tmp_path) as exporter:
        url = f"http://{exporter}/metrics"
        target = target_for(url)
        scrape_targets.delay()
    values = latest("host-1")
    assert ("node_load1", ()) in values
    assert ("node_memory_MemTotal_bytes", ()) in values
    assert values[("up", (("target", url),))] == 1.0
    assert values[("scrape_duration_seconds", (("target", url),))] > 0
    assert ("memory_usage", ()) in values  # derived from node_exporter's metrics
    target.refresh_from_db()
    assert (target.last_up, target.last_error) == (True, "")
    assert target.last_scrape_at is not None and target.last_duration > 0


@pytest.fixture
def target_down_rule():
    """The rule the data migration ships (a transactional test's flush removes it)."""
    importlib.import_module("alerts.migrations.0004_target_down_rule").add_rule(apps, None)


@pytest.mark.django_db(transaction=True)
def test_a_dead_target_records_up_0_and_its_instance_becomes_unhealthy(target_down_rule):
    url = f"http://127.0.0.1:{free_port()}/metrics"
    target = target_for(url)
    scrape_targets.delay()
    target.refresh_from_db()
    assert target.last_up is False
    assert "fetch failed" in target.last_error
    assert latest("host-1")[("up", (("target", url),))] == 0.0

    now = timezone.now()
    evaluate_rules(now)  # pending: TargetDown waits a minute before firing
    evaluate_rules(now + timedelta(seconds=61))
    alert = Alert.objects.get(instance=target.instance, alert_type="TargetDown")
    assert alert.severity == Alert.Severity.CRITICAL
    assert Instance.objects.get(pk=target.instance.pk).status == Instance.Status.UNHEALTHY


@pytest.mark.django_db(transaction=True)
def test_a_page_that_is_not_the_text_format_is_a_failed_scrape(live_server):
    target = target_for(f"{live_server.url}/healthz")
    scrape_targets.delay()
    target.refresh_from_db()
    assert target.last_up is False
    assert "not Prometheus text format" in target.last_error


@pytest.mark.django_db(transaction=True)
def test_only_due_enabled_targets_are_claimed_and_each_once():
    now = timezone.now()
    due = target_for("http://127.0.0.1:1/a")
    target_for("http://127.0.0.1:1/b", enabled=False)
    soon = target_for("http://127.0.0.1:1/c", last_scrape_at=now - timedelta(seconds=5))
    old = target_for("http://127.0.0.1:1/d", last_scrape_at=now - timedelta(seconds=20))
    assert {t.pk for t in ScrapeTarget.claim_due(now)} == {due.pk, old.pk}
    assert ScrapeTarget.claim_due(now) == []
    later = {t.pk for t in ScrapeTarget.claim_due(now + timedelta(seconds=15))}
    assert later == {due.pk, old.pk, soon.pk}


@pytest.mark.django_db(transaction=True)
def test_a_target_another_worker_holds_is_skipped_not_waited_for():
    held, other = target_for("http://127.0.0.1:1/a"), target_for("http://127.0.0.1:1/b")
    locked, release = threading.Event(), threading.Event()

    def other_worker():
        with transaction.atomic():
            ScrapeTarget.objects.select_for_update().get(pk=held.pk)
            locked.set()
            release.wait(10)
        connection.close()

    worker = threading.Thread(target=other_worker)
    worker.start()
    try:
        assert locked.wait(10)
        assert [t.pk for t in ScrapeTarget.claim_due()] == [other.pk]
    finally:
        release.set()
        worker.join()


@pytest.mark.django_db(transaction=True)
def test_a_scrape_the_storage_cannot_take_is_tried_again_not_held_against_the_target(
    live_server,
):
    url = f"{live_server.url}/metrics"
    target = target_for(url)
    # The storage fails mid-write: another session holds the samples table past our timeout.
    with psycopg.connect(database_dsn()) as other_session, connection.cursor() as cursor:
        other_session.execute("LOCK TABLE samples IN ACCESS EXCLUSIVE MODE")
        cursor.execute("SET lock_timeout = '200ms'")
        try:
            scrape_targets.delay()
        finally:
            cursor.execute("RESET lock_timeout")

    target.refresh_from_db()
    assert (target.last_up, target.last_error) == (None, "")
    assert ("up", (("target", url),)) not in latest("host-1")

    scrape_targets.delay()

    target.refresh_from_db()
    assert (target.last_up, target.last_error) == (True, "")
    assert latest("host-1")[("up", (("target", url),))] == 1.0


@pytest.mark.django_db(transaction=True)
def test_a_redirect_is_not_followed_to_where_it_points():
    """A target answering with a redirect (to a metadata service, an internal page) is a failed
    scrape: the scraper never asks the address it was sent to."""
    elsewhere = PageServer(200, body=b"secret_metric 1\n")
    redirecting = PageServer(302, location=f"http://127.0.0.1:{elsewhere.port}/internal")
    try:
        target = target_for(f"http://127.0.0.1:{redirecting.port}/metrics")
        scrape_targets.delay()
    finally:
        redirecting.close()
        elsewhere.close()

    target.refresh_from_db()
    assert target.last_up is False
    assert "redirect" in target.last_error and "not followed" in target.last_error
    assert redirecting.paths == ["/metrics"]
    assert elsewhere.paths == []


@pytest.mark.django_db(transaction=True)
def test_a_link_local_target_is_never_scraped():
    target = target_for("http://169.254.169.254/latest/meta-data/")

    scrape_targets.delay()

    target.refresh_from_db()
    assert target.last_up is False
    assert "169.254.169.254 is link-local" in target.last_error


class PageServer:
    """An HTTP server on 127.0.0.1 answering every GET with ``status`` (and a Location when
    given); it records the paths asked for."""

    def __init__(self, status: int, body: bytes = b"", location: str = ""):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.paths: list[str] = []
        paths = self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
