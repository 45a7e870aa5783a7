"""A Grafana dashboard, written here in Grafana's own schema, imported into a live Vigil that
Debian's Prometheus feeds by remote write with what it scrapes from a real node_exporter: each
imported panel draws that data, and what Vigil cannot take is listed. The shipped "Node exporter"
dashboard draws the same data."""

import orjson
import pytest

from dashboard import shipped
from dashboard.models import Dashboard
from tests.prometheus_services import needs_node_exporter, needs_prometheus
from tests.promql_compare import feeding_vigil
from tests.test_dashboard_boards import HTMX, operator  # noqa: F401

pytestmark = [needs_prometheus, needs_node_exporter, pytest.mark.django_db(transaction=True)]

# Enough history for a rate over $__rate_interval and a step of the hour's chart holding data.
GATHER_SECONDS = 35
PROMETHEUS = {"type": "prometheus", "uid": "prom"}
INSTANCE = 'instance=~"$instance"'


def target(expr: str, legend: str = "__auto", ref: str = "A", **extra) -> dict:
    return {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "refId": ref, **extra}


def field_config(unit: str, *steps: tuple[float, str]) -> dict:
    base = [{"color": "green", "value": None}]
    return {
        "defaults": {
            "unit": unit,
            "thresholds": {
                "mode": "absolute",
                "steps": base + [{"color": colour, "value": value} for value, colour in steps],
            },
        },
        "overrides": [],
    }


GRAFANA = {
    "dashboard": {
        "title": "Node exporter full",
        "tags": ["linux"],
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "instance",
                    "type": "query",
                    "datasource": PROMETHEUS,
                    "query": {"query": "label_values(node_uname_info, instance)", "refId": "V"},
                    "multi": True,
                    "includeAll": True,
                },
                {"name": "window", "type": "interval", "query": "1m,5m"},
            ]
        },
        "panels": [
            {"type": "row", "title": "Basics", "collapsed": False, "gridPos": {"x": 0, "y": 0}},
            {
                "type": "timeseries",
                "title": "CPU busy",
                "gridPos": {"x": 0, "y": 1, "w": 12, "h": 8},
                "fieldConfig": field_config("percent", (80, "orange"), (90, "dark-red")),
                "targets": [
                    target(
                        f'100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{{mode="idle", '
                        f"{INSTANCE}}}[$__rate_interval])))",
                        "{{instance}}",
                    ),
                    target("up", ref="B", hide=True),
                ],
            },
            {
                "type": "gauge",
                "title": "Memory used",
                "gridPos": {"x": 12, "y": 1, "w": 6, "h": 8},
                "fieldConfig": field_config("percent", (85, "orange"), (95, "red")),
                "targets": [
                    target(
                        f"100 * (1 - node_memory_MemAvailable_bytes{{{INSTANCE}}} "
                        f"/ node_memory_MemTotal_bytes{{{INSTANCE}}})",
                        "{{instance}}",
                    )
                ],
            },
            {
                "type": "stat",
                "title": "Memory total",
                "gridPos": {"x": 18, "y": 1, "w": 6, "h": 8},
                "fieldConfig": field_config("bytes"),
                "targets": [target(f"node_memory_MemTotal_bytes{{{INSTANCE}}}", "{{instance}}")],
            },
            {
                "type": "row",
                "title": "Details",
                "collapsed": True,
                "gridPos": {"x": 0, "y": 9},
                "panels": [
                    {
                        "type": "bargauge",
                        "title": "Busy by CPU",
                        "gridPos": {"x": 0, "y": 10, "w": 8, "h": 6},
                        "fieldConfig": field_config("percent", (90, "red")),
                        "targets": [
                            target(
                                f'100 * (1 - rate(node_cpu_seconds_total{{mode="idle", '
                                f"{INSTANCE}}}[$__rate_interval]))",
                                "cpu {{cpu}}",
                            )
                        ],
                    },
                    {
                        "type": "table",
                        "title": "Kernel",
                        "gridPos": {"x": 8, "y": 10, "w": 8, "h": 6},
                        "targets": [
                            target(
                                f"node_uname_info{{{INSTANCE}}}", "", instant=True, format="table"
                            )
                        ],
                    },
                    {
                        "type": "graph",
                        "title": "Load",
                        "gridPos": {"x": 16, "y": 10, "w": 8, "h": 6},
                        "yaxes": [{"format": "short"}, {"format": "short"}],
                        "targets": [target('node_load1{instance=~"[[instance]]"}', "load 1m")],
                    },
                    {
                        "type": "text",
                        "title": "About",
                        "gridPos": {"x": 0, "y": 16, "w": 24, "h": 3},
                        "options": {"mode": "markdown", "content": "Hosts run **node_exporter**."},
                    },
                    {
                        "type": "heatmap",
                        "title": "Scrape durations",
                        "gridPos": {"x": 0, "y": 19, "w": 24, "h": 8},
                        "targets": [target("rate(scrape_duration_seconds[$__interval_ms])")],
                    },
                ],
            },
        ],
    }
}


def panels_shown(client, board: Dashboard, selection: dict) -> dict:
    return {
        panel.title: client.get(
            f"/dashboards/{board.pk}/panels/{panel.pk}/", selection, headers=HTMX
        ).context["shown"]
        for panel in board.panels.all()
    }


def test_imported_and_shipped_dashboards_draw_remote_written_node_exporter_data(
    live_server,
    token,
    tmp_path,
    operator,  # noqa: F811
):
    with feeding_vigil(tmp_path, live_server.url, token, GATHER_SECONDS):
        response = operator.post(
            "/dashboards/import/", {"definition": orjson.dumps(GRAFANA).decode()}
        )
        board = Dashboard.objects.get(title="Node exporter full")
        page = operator.get(f"/dashboards/{board.pk}/")
        (hosts,) = [variable.options for variable in page.context["variables"]]
        shown = panels_shown(operator, board, {"var-instance": hosts[0]})
        shipped.provision()
        node_board = Dashboard.objects.get(slug="node-exporter")
        node_shown = panels_shown(operator, node_board, {"var-instance": "$__all"})

    assert response.status_code == 201
    assert response.context["left_out"] == [
        "Variable $window (interval '1m,5m'): only label_values and custom.",
        "The hidden query B of panel 'CPU busy'.",
        "Panel 'Scrape durations': heatmap panels are not drawn by Vigil.",
    ]
    assert len(hosts) == 1
    (host,) = hosts
    assert [(title, content.error, content.is_empty) for title, content in shown.items()] == [
        ("CPU busy", None, False),
        ("Memory used", None, False),
        ("Memory total", None, False),
        ("Busy by CPU", None, False),
        ("Kernel", None, False),
        ("Load", None, False),
        ("About", None, False),
    ]
    cpu = orjson.loads(shown["CPU busy"].figure)
    assert [trace["name"] for trace in cpu["data"]] == [host]
    assert any(0 <= value <= 100 for value in cpu["data"][0]["y"] if value is not None)
    assert cpu["layout"]["yaxis"]["ticksuffix"].strip() == "%"
    assert [value.text.endswith("B") for value in shown["Memory total"].values] == [True]
    assert "instance" in shown["Kernel"].columns and shown["Kernel"].rows[0]
    assert orjson.loads(shown["Load"].figure)["data"][0]["name"] == "load 1m"
    memory = orjson.loads(shown["Memory used"].figure)["data"][0]
    assert memory["gauge"]["threshold"]["value"] == 95
    assert [
        (title, content.error) for title, content in node_shown.items() if content.is_empty
    ] == []
