"""The shipped "Host" dashboard: provisioned once (by the data migration, idempotently), and every
panel draws the metrics Vigil's agent sends."""

import pytest

from dashboard import shipped
from dashboard.models import Dashboard
from instances.models import Instance
from tests.test_dashboard_boards import HTMX, STEP
from tests.test_dashboard_pages import add_samples

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_host(db):
    """web-1's agent: ten minutes of every metric the Host dashboard draws."""
    web = Instance.objects.create(agent_id="web-1", name="Web 1")
    add_samples(web, "cpu_usage", [50.0] * 41, step=STEP)
    add_samples(web, "memory_usage", [60.0] * 41, step=STEP)
    add_samples(web, "disk_usage", [85.0] * 41, labels={"mount": "/"}, step=STEP)
    add_samples(web, "load_average", [0.5] * 41, "", {"period": "1m"}, STEP)
    for direction in ("rx", "tx"):
        counter = [float(i * 15_000) for i in range(41)]
        labels = {"interface": "eth0", "direction": direction}
        add_samples(web, "network_bytes_total", counter, "bytes", labels, STEP)
    return web


def test_provisioning_twice_leaves_one_host_dashboard_as_edited():
    shipped.provision()
    host = Dashboard.objects.get(slug="host")
    host.replace_with({"title": "Host"}, user=None, note="edited")

    shipped.provision()

    assert Dashboard.objects.filter(slug="host").count() == 1
    assert Dashboard.objects.get(slug="host").version == 2


def test_every_host_panel_draws_the_agent_s_metrics(admin_client, agent_host):
    shipped.provision()
    host = Dashboard.objects.get(slug="host")

    page = admin_client.get(f"/dashboards/{host.pk}/")
    shown = [
        admin_client.get(f"/dashboards/{host.pk}/panels/{panel.pk}/", headers=HTMX).context["shown"]
        for panel in host.panels.all()
    ]

    assert page.status_code == 200
    assert [variable.options for variable in page.context["variables"]] == [["web-1"]]
    assert [(content.panel.title, content.error) for content in shown] == [
        ("CPU", None),
        ("CPU now", None),
        ("Memory", None),
        ("Disk used", None),
        ("Load average", None),
        ("Network", None),
    ]
    assert all(content.figure for content in shown)
    network = shown[-1].figure
    assert "web-1 rx" in network and "web-1 tx" in network


def counter(per_step: float) -> list[float]:
    """Ten minutes of a counter growing by ``per_step`` each 15 s."""
    return [per_step * i for i in range(41)]


# Each "Vigil" panel's title, error and emptiness when it draws its data.
VIGIL_PANELS_DRAWN = [
    ("Requests answered", None, False),
    ("Request latency", None, False),
    ("Samples ingested", None, False),
    ("Ingest requests refused", None, False),
    ("Rule evaluation, average", None, False),
    ("Rollups behind", None, False),
    ("Notifications failed, last hour", None, False),
]


def panels_shown(client, board: Dashboard) -> list:
    return [
        client.get(f"/dashboards/{board.pk}/panels/{panel.pk}/", headers=HTMX).context["shown"]
        for panel in board.panels.all()
    ]


def test_provisioning_ships_four_dashboards_each_once():
    shipped.provision()
    shipped.provision()

    assert sorted(Dashboard.objects.values_list("slug", flat=True)) == [
        "api-performance",
        "host",
        "node-exporter",
        "vigil",
    ]


def test_every_api_performance_panel_draws_a_service_s_requests(admin_client):
    service = Instance.objects.create(agent_id="api-1", name="API 1")
    for status, per_step in (("success", 150.0), ("error", 3.0)):
        labels = {"api_type": "search", "status": status}
        add_samples(service, "api_requests_total", counter(per_step), "", labels, STEP)
    for bound, per_step in (("0.1", 90.0), ("0.5", 140.0), ("+Inf", 153.0)):
        labels = {"api_type": "search", "le": bound}
        add_samples(
            service, "api_response_time_seconds_bucket", counter(per_step), "", labels, STEP
        )
    add_samples(
        service, "api_response_time_seconds_sum", counter(20.0), "", {"api_type": "search"}, STEP
    )
    add_samples(
        service, "api_response_time_seconds_count", counter(153.0), "", {"api_type": "search"}, STEP
    )
    shipped.provision()
    board = Dashboard.objects.get(slug="api-performance")

    shown = panels_shown(admin_client, board)

    assert [(content.panel.title, content.error, content.is_empty) for content in shown] == [
        ("Request rate by type", None, False),
        ("Success rate", None, False),
        ("p95 latency", None, False),
        ("p99 latency", None, False),
        ("Error ratio", None, False),
        ("Average response time", None, False),
    ]
    success = shown[1]
    assert success.figure and "98.0" in success.figure  # 150 of 153 requests a step


def test_every_vigil_panel_draws_vigil_s_own_metrics(admin_client):
    own = Instance.objects.create(agent_id="vigil", name="Vigil")
    add_samples(own, "vigil_http_requests_total", counter(30.0), "", {"status": "200"}, STEP)
    for bound, per_step in (("0.05", 20.0), ("0.25", 29.0), ("+Inf", 30.0)):
        add_samples(
            own,
            "vigil_http_request_duration_seconds_bucket",
            counter(per_step),
            "",
            {"le": bound},
            STEP,
        )
    add_samples(own, "vigil_ingest_samples_total", counter(1500.0), "", None, STEP)
    add_samples(own, "vigil_ingest_errors_total", counter(1.0), "", {"reason": "bad_json"}, STEP)
    add_samples(own, "vigil_alert_evaluation_seconds_sum", counter(0.4), "", None, STEP)
    add_samples(own, "vigil_alert_evaluation_seconds_count", counter(1.0), "", None, STEP)
    add_samples(own, "vigil_rollup_lag_seconds", [42.0] * 41, "", None, STEP)
    add_samples(own, "vigil_notification_failures_total", counter(1.0), "", {"kind": "email"}, STEP)
    shipped.provision()
    board = Dashboard.objects.get(slug="vigil")

    shown = panels_shown(admin_client, board)

    assert [
        (content.panel.title, content.error, content.is_empty) for content in shown
    ] == VIGIL_PANELS_DRAWN
    assert [value.text for value in shown[5].values] == ["42 s"]
