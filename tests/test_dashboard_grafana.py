"""Importing a Grafana dashboard's JSON (written here in Grafana's own schema): rows flattened,
every supported panel type drawn from the stored samples, a label_values variable,
$__rate_interval, units and thresholds taken; what Vigil cannot take listed on the import page."""

import orjson
import pytest

from dashboard.models import Dashboard
from instances.models import Instance
from tests.test_dashboard_boards import HTMX, STEP, operator  # noqa: F401
from tests.test_dashboard_pages import add_samples

pytestmark = pytest.mark.django_db

PROMETHEUS = {"type": "prometheus", "uid": "prom"}


def target(expr, legend="__auto", ref="A", **extra) -> dict:
    return {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def field_config(unit, steps=()) -> dict:
    base = [{"color": "green", "value": None}]
    return {
        "defaults": {
            "unit": unit,
            "thresholds": {"mode": "absolute", "steps": base + list(steps)},
        },
        "overrides": [],
    }


CPU_BY_HOST = 'node_cpu_busy_percent{instance=~"$instance"}'
RED_AT_90 = [{"color": "dark-red", "value": 90}]
GRAFANA = {
    "title": "Node exporter (imported)",
    "tags": ["linux"],
    "schemaVersion": 39,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "1m",
    "templating": {
        "list": [
            {
                "name": "instance",
                "type": "query",
                "datasource": PROMETHEUS,
                "query": {"query": "label_values(node_cpu_busy_percent, instance)", "refId": "V"},
                "multi": True,
                "includeAll": True,
            },
            {"name": "resolution", "type": "interval", "query": "1m,5m"},
        ]
    },
    "panels": [
        {"type": "row", "title": "Overview", "collapsed": False, "gridPos": {"x": 0, "y": 0}},
        {
            "type": "timeseries",
            "title": "Network received",
            "gridPos": {"x": 0, "y": 1, "w": 12, "h": 8},
            "fieldConfig": field_config("Bps"),
            "targets": [
                target(
                    'rate(node_network_receive_bytes_total{instance=~"$instance"}[$__rate_interval])',
                    "{{instance}} {{device}}",
                ),
                target("up", ref="B", hide=True),
            ],
        },
        {
            "type": "stat",
            "title": "CPU busy",
            "gridPos": {"x": 12, "y": 1, "w": 6, "h": 8},
            "fieldConfig": field_config("percent", RED_AT_90),
            "targets": [target(CPU_BY_HOST, "{{instance}}")],
        },
        {
            "type": "gauge",
            "title": "CPU gauge",
            "gridPos": {"x": 18, "y": 1, "w": 6, "h": 8},
            "fieldConfig": field_config("percent", RED_AT_90),
            "targets": [target(CPU_BY_HOST, "{{instance}}")],
        },
        {
            "type": "row",
            "title": "Details",
            "collapsed": True,
            "gridPos": {"x": 0, "y": 9},
            "panels": [
                {
                    "type": "bargauge",
                    "title": "CPU bars",
                    "gridPos": {"x": 0, "y": 10, "w": 8, "h": 6},
                    "fieldConfig": field_config("percent"),
                    "targets": [target(CPU_BY_HOST, "{{instance}}")],
                },
                {
                    "type": "table",
                    "title": "CPU table",
                    "gridPos": {"x": 8, "y": 10, "w": 8, "h": 6},
                    "targets": [target(CPU_BY_HOST, "", instant=True, format="table")],
                },
                {
                    "type": "graph",
                    "title": "Old graph",
                    "gridPos": {"x": 16, "y": 10, "w": 8, "h": 6},
                    "yaxes": [{"format": "percent"}, {"format": "short"}],
                    # The old [[variable]] syntax.
                    "targets": [
                        target('avg(node_cpu_busy_percent{instance=~"[[instance]]"})', "average")
                    ],
                },
                {
                    "type": "text",
                    "title": "Read me",
                    "gridPos": {"x": 0, "y": 16, "w": 24, "h": 3},
                    "options": {"mode": "markdown", "content": "**Host** metrics"},
                },
                {
                    "type": "heatmap",
                    "title": "Latency heatmap",
                    "gridPos": {"x": 0, "y": 19, "w": 24, "h": 8},
                    "targets": [target("rate(x_bucket[$__interval_ms])")],
                },
            ],
        },
    ],
}


@pytest.fixture
def node_exporter_hosts(db):
    """Two node_exporter hosts: CPU busy at 30 % and 95 %, eth0 receiving 1000 bytes a second."""
    for name, busy in (("node-1:9100", 30.0), ("node-2:9100", 95.0)):
        host = Instance.objects.create(agent_id=name, name=name)
        add_samples(host, "node_cpu_busy_percent", [busy] * 41, step=STEP)
        counter = [float(i * 15_000) for i in range(41)]
        labels = {"device": "eth0"}
        add_samples(host, "node_network_receive_bytes_total", counter, "bytes", labels, STEP)


def test_a_grafana_dashboard_imports_with_what_was_left_out_listed(operator, node_exporter_hosts):  # noqa: F811
    response = operator.post("/dashboards/import/", {"definition": orjson.dumps(GRAFANA).decode()})

    assert response.status_code == 201
    assert response.context["left_out"] == [
        "Variable $resolution (interval '1m,5m'): only label_values and custom.",
        "The hidden query B of panel 'Network received'.",
        "Panel 'Latency heatmap': heatmap panels are not drawn by Vigil.",
    ]
    assert "Latency heatmap" in response.text
    board = Dashboard.objects.get(title="Node exporter (imported)")
    assert (board.tags, board.time_range, board.refresh) == (["linux"], "6h", "1m")
    assert board.variables == [
        {
            "name": "instance",
            "multi": True,
            "include_all": True,
            "kind": "query",
            "query": "label_values(node_cpu_busy_percent, instance)",
        }
    ]
    panels = list(board.panels.all())
    assert [(p.type, p.title, p.x, p.width) for p in panels] == [
        ("timeseries", "Network received", 0, 6),
        ("stat", "CPU busy", 6, 3),
        ("gauge", "CPU gauge", 9, 3),
        ("bargauge", "CPU bars", 0, 4),
        ("table", "CPU table", 4, 4),
        ("timeseries", "Old graph", 8, 4),
        ("text", "Read me", 0, 12),
    ]
    assert panels[0].unit == "bytes/s" and panels[5].unit == "percent"
    assert panels[1].thresholds == [{"value": 90.0, "color": "red"}]


def test_every_imported_panel_draws_the_stored_samples(operator, node_exporter_hosts):  # noqa: F811
    operator.post("/dashboards/import/", {"definition": orjson.dumps(GRAFANA).decode()})
    board = Dashboard.objects.get(title="Node exporter (imported)")

    shown = {
        panel.title: operator.get(
            f"/dashboards/{board.pk}/panels/{panel.pk}/", {"var-instance": "$__all"}, headers=HTMX
        ).context["shown"]
        for panel in board.panels.all()
    }

    assert all(content.error is None for content in shown.values())
    network = orjson.loads(shown["Network received"].figure)
    assert [trace["name"] for trace in network["data"]] == ["node-1:9100 eth0", "node-2:9100 eth0"]
    assert network["data"][0]["y"][-1] == pytest.approx(1000)
    assert [value.colour for value in shown["CPU busy"].values] == ["", "red"]
    assert orjson.loads(shown["CPU gauge"].figure)["data"][1]["value"] == 95
    assert orjson.loads(shown["CPU bars"].figure)["data"][0]["x"] == [30, 95]
    assert shown["CPU table"].rows == [
        ["node_cpu_busy_percent", "node-1:9100", "30"],
        ["node_cpu_busy_percent", "node-2:9100", "95"],
    ]
    assert orjson.loads(shown["Old graph"].figure)["data"][0]["name"] == "average"
    assert "<strong>Host</strong>" in shown["Read me"].html
