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
