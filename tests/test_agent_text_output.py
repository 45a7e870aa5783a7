"""Names and labels come from agents, so from anyone holding an ingest token: what Vigil shows
and exports of them is text, never a formula in a spreadsheet or a link on a chart."""

import csv
import io

import orjson
import pytest

from accounts.permissions import Role
from instances.models import Instance
from tests.test_dashboard_pages import add_samples

pytestmark = pytest.mark.django_db(transaction=True)

LINK = '<a href="https://evil.example/login">Session expired, log in again</a>'
FORMULAS = ['=HYPERLINK("https://evil.example","open")', "+1+1", "-2+3", "@SUM(1)"]


@pytest.fixture
def viewer(client, user_with_role):
    client.force_login(user_with_role(Role.VIEWER, "viewer"))
    return client


def test_label_values_a_spreadsheet_would_run_are_exported_as_text(viewer):
    edge = Instance.objects.create(agent_id="edge-1", name="Edge")
    for value in FORMULAS:
        add_samples(edge, "disk_free", [-1.5, -2.5], "bytes", {"mount": value})

    response = viewer.get("/explore/data.csv", {"promql": "disk_free", "range": "15m"})

    assert response["Content-Disposition"] == 'attachment; filename="vigil-explore-15m.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    mount = rows[0].index("mount")
    assert {row[mount] for row in rows[1:]} == {f"'{value}" for value in FORMULAS}
    assert {row[-1] for row in rows[1:]} <= {"-1.5", "-2.5"}  # numbers stay numbers


def test_an_agent_supplied_link_is_shown_as_text_on_charts(viewer):
    edge = Instance.objects.create(agent_id="edge-1", name="Edge")
    add_samples(edge, "disk_usage", [40.0, 41.0], labels={"mount": LINK})
    add_samples(edge, "disk_usage", [50.0, 51.0], labels={"mount": "/"})

    instance_page = viewer.get(f"/instances/{edge.pk}/")
    explore_page = viewer.get("/explore/", {"promql": "disk_usage", "range": "15m"})

    disk = next(c for c in instance_page.context["charts"] if c.name == "disk_usage")
    names = [trace["name"] for trace in orjson.loads(disk.figure)["data"]]
    names += [
        trace["name"] for trace in orjson.loads(explore_page.context["result"].figure)["data"]
    ]
    linked = [name for name in names if "evil.example" in name]
    assert len(linked) == 2
    assert all("<a" not in name and "&lt;a href=" in name for name in linked)
