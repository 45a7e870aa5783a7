"""The dashboards Vigil ships: "Host", for the metrics its own agent sends (cpu_usage,
memory_usage, disk_usage, load_average, network_bytes_total).

``provision`` creates a shipped dashboard that is missing and leaves one that exists alone (it may
have been edited); the data migration runs it with historical models.
"""

from django.apps import apps as django_apps

PERCENT_THRESHOLDS = [{"value": 80, "color": "orange"}, {"value": 90, "color": "red"}]
HOST = {
    "title": "Host",
    "slug": "host",
    "tags": ["vigil", "agent"],
    "time_range": "1h",
    "refresh": "1m",
    "variables": [
        {
            "name": "host",
            "kind": "query",
            "query": "label_values(cpu_usage, instance)",
            "multi": True,
            "include_all": True,
        }
    ],
    "panels": [
        {
            "type": "timeseries",
            "title": "CPU",
            "queries": [{"expr": 'cpu_usage{instance=~"$host"}', "legend": "{{instance}}"}],
            "unit": "percent",
            "x": 0,
            "y": 0,
            "width": 8,
            "height": 4,
        },
        {
            "type": "gauge",
            "title": "CPU now",
            "queries": [{"expr": 'cpu_usage{instance=~"$host"}', "legend": "{{instance}}"}],
            "unit": "percent",
            "thresholds": PERCENT_THRESHOLDS,
            "x": 8,
            "y": 0,
            "width": 4,
            "height": 4,
        },
        {
            "type": "timeseries",
            "title": "Memory",
            "queries": [{"expr": 'memory_usage{instance=~"$host"}', "legend": "{{instance}}"}],
            "unit": "percent",
            "x": 0,
            "y": 4,
            "width": 6,
            "height": 4,
        },
        {
            "type": "bargauge",
            "title": "Disk used",
            "queries": [
                {"expr": 'disk_usage{instance=~"$host"}', "legend": "{{instance}} {{mount}}"}
            ],
            "unit": "percent",
            "thresholds": PERCENT_THRESHOLDS,
            "x": 6,
            "y": 4,
            "width": 6,
            "height": 4,
        },
        {
            "type": "timeseries",
            "title": "Load average",
            "queries": [
                {
                    "expr": 'load_average{instance=~"$host", period="1m"}',
                    "legend": "{{instance}}",
                }
            ],
            "x": 0,
            "y": 8,
            "width": 6,
            "height": 4,
        },
        {
            "type": "timeseries",
            "title": "Network",
            "queries": [
                {
                    "expr": "sum by (instance, direction) "
                    '(rate(network_bytes_total{instance=~"$host"}[$__rate_interval]))',
                    "legend": "{{instance}} {{direction}}",
                }
            ],
            "unit": "bytes/s",
            "x": 6,
            "y": 8,
            "width": 6,
            "height": 4,
        },
    ],
}
SHIPPED = [HOST]


def provision(apps=django_apps) -> None:
    """Create each shipped dashboard not there yet (found by its slug); idempotent."""
    dashboard_model = apps.get_model("dashboard", "Dashboard")
    panel_model = apps.get_model("dashboard", "Panel")
    for definition in SHIPPED:
        if dashboard_model.objects.filter(slug=definition["slug"]).exists():
            continue
        fields = {key: value for key, value in definition.items() if key != "panels"}
        board = dashboard_model.objects.create(**fields)
        panel_model.objects.bulk_create(
            panel_model(dashboard=board, **panel) for panel in definition["panels"]
        )
