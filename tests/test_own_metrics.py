"""Vigil scrapes its own /metrics into the instance "vigil" (SCRAPE_OWN_METRICS), and the shipped
"Vigil" dashboard draws what that scrape stored: every panel has data, and every metric its
queries name is one Vigil exports."""

import re
from datetime import timedelta

import orjson
import pytest
import requests
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from alerts.evaluation import evaluate_rules
from dashboard import shipped
from dashboard.models import Dashboard
from ingestion.scrape import scrape_own_metrics
from instances import store
from instances.models import VIGIL_AGENT_ID, Instance
from instances.tasks import refresh_rollups
from tests.test_dashboard_shipped import VIGIL_PANELS_DRAWN, panels_shown

OWN_METRIC_NAME = re.compile(r"\bvigil_[a-z_]+")


def own_metric_names() -> set[str]:
    instance = Instance.objects.get(agent_id=VIGIL_AGENT_ID)
    return {value.name for value in store.latest_values(instance_ids=[instance.pk])}


def metric_family(name: str) -> str:
    """The metric family a sample name belongs to (a counter's _total, a histogram's _bucket,
    _sum and _count)."""
    return re.sub(r"_(total|bucket|sum|count)$", "", name)


@pytest.mark.django_db(transaction=True)
def test_vigil_dashboard_draws_what_the_scrape_of_its_own_metrics_stored(
    live_server, settings, admin_client, client
):
    settings.OWN_METRICS_URL = f"{live_server.url}/metrics"
    shipped.provision()
    board = Dashboard.objects.get(slug="vigil")
    # What each panel counts happens once before each scrape: requests answered, an ingest
    # refused, a rules run, a rollup refresh. Two scrapes, as beat runs them 15 s apart (a rate
    # needs two samples), stamped 50 and 20 s ago so the chart's last step has both.
    for seconds_ago in (50, 20):
        assert client.get(f"{live_server.url}/healthz").status_code == 200
        refused = client.post("/api/v1/ingest", {}, content_type="application/json")
        assert refused.status_code == 401
        evaluate_rules()
        refresh_rollups()
        assert scrape_own_metrics(now=timezone.now() - timedelta(seconds=seconds_ago))

    stored = own_metric_names()
    queried = {
        name
        for panel in board.panels.all()
        for query in panel.queries
        for name in OWN_METRIC_NAME.findall(query["expr"])
    }
    shown = panels_shown(admin_client, board)
    page = requests.get(settings.OWN_METRICS_URL, timeout=5)

    assert Instance.objects.get(agent_id=VIGIL_AGENT_ID).name == "Vigil"
    assert "up" in stored and "vigil_http_requests_total" in stored
    # Every family /metrics describes, those without a sample yet (no failure so far) too.
    exported = {family.name for family in text_string_to_metric_families(page.text)}
    assert {metric_family(name) for name in queried} <= exported
    assert [
        (content.panel.title, content.error, content.is_empty) for content in shown
    ] == VIGIL_PANELS_DRAWN
    assert [value.text for value in shown[6].values] == ["0"]
    # Scrapes store samples in workers, not in the web process: counted through Redis.
    ingested = orjson.loads(shown[2].figure)["data"]
    assert [trace["name"] for trace in ingested] == ["pushed", "scraped"]
    assert max(value or 0 for value in ingested[1]["y"]) > 0


@pytest.mark.django_db
def test_scraping_its_own_metrics_can_be_turned_off(settings):
    settings.SCRAPE_OWN_METRICS = False

    assert scrape_own_metrics() is False
    assert not Instance.objects.filter(agent_id=VIGIL_AGENT_ID).exists()
