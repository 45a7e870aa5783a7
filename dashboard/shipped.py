"""The dashboards Vigil ships: "Host", for the metrics its own agent sends (cpu_usage,
memory_usage, disk_usage, load_average, network_bytes_total); "Node exporter", for hosts whose
node_exporter is remote-written or scraped; "Vigil", for Vigil's own /metrics; and "API
performance", for services that count their requests in ``api_requests_total{api_type, status}``
and time them in the ``api_response_time_seconds{api_type}`` histogram.

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


def _panel(kind: str, title: str, queries: list[tuple[str, str]], place: tuple, **shown) -> dict:
    """A panel of ``kind`` at ``place`` (x, y, width, height) drawing ``queries`` (PromQL,
    legend format)."""
    x, y, width, height = place
    return {
        "type": kind,
        "title": title,
        "queries": [{"expr": expr, "legend": legend} for expr, legend in queries],
        "x": x,
        "y": y,
        "width": width,
        "height": height,
        **shown,
    }


NODE = '{instance=~"$instance"}'
NODE_FILESYSTEMS = 'instance=~"$instance", fstype!~"tmpfs|overlay|squashfs|nsfs|ramfs"'
NODE_EXPORTER = {
    "title": "Node exporter",
    "slug": "node-exporter",
    "tags": ["node_exporter", "hosts"],
    "time_range": "1h",
    "refresh": "1m",
    "variables": [
        {
            "name": "instance",
            "kind": "query",
            "query": "label_values(node_uname_info, instance)",
            "multi": True,
            "include_all": True,
        }
    ],
    "panels": [
        _panel(
            "timeseries",
            "CPU busy",
            [
                (
                    "100 * (1 - avg by (instance) "
                    '(rate(node_cpu_seconds_total{mode="idle", instance=~"$instance"}'
                    "[$__rate_interval])))",
                    "{{instance}}",
                )
            ],
            (0, 0, 8, 4),
            unit="percent",
            min=0,
            max=100,
        ),
        _panel(
            "gauge",
            "Memory used",
            [
                (
                    f"100 * (1 - node_memory_MemAvailable_bytes{NODE} "
                    f"/ node_memory_MemTotal_bytes{NODE})",
                    "{{instance}}",
                )
            ],
            (8, 0, 4, 4),
            unit="percent",
            thresholds=PERCENT_THRESHOLDS,
        ),
        _panel(
            "timeseries",
            "Load",
            [
                (f"node_load1{NODE}", "{{instance}} 1m"),
                (f"node_load5{NODE}", "{{instance}} 5m"),
                (f"node_load15{NODE}", "{{instance}} 15m"),
            ],
            (0, 4, 6, 4),
        ),
        _panel(
            "bargauge",
            "File systems used",
            [
                (
                    f"100 * (1 - node_filesystem_avail_bytes{{{NODE_FILESYSTEMS}}} "
                    f"/ node_filesystem_size_bytes{{{NODE_FILESYSTEMS}}})",
                    "{{instance}} {{mountpoint}}",
                )
            ],
            (6, 4, 6, 4),
            unit="percent",
            thresholds=PERCENT_THRESHOLDS,
        ),
        _panel(
            "timeseries",
            "Network",
            [
                (
                    "sum by (instance) (rate(node_network_receive_bytes_total"
                    '{instance=~"$instance", device!="lo"}[$__rate_interval]))',
                    "{{instance}} in",
                ),
                (
                    "sum by (instance) (rate(node_network_transmit_bytes_total"
                    '{instance=~"$instance", device!="lo"}[$__rate_interval]))',
                    "{{instance}} out",
                ),
            ],
            (0, 8, 6, 4),
            unit="bytes/s",
        ),
        _panel(
            "timeseries",
            "Disk I/O",
            [
                (
                    f"sum by (instance) (rate(node_disk_read_bytes_total{NODE}[$__rate_interval]))",
                    "{{instance}} read",
                ),
                (
                    "sum by (instance) "
                    f"(rate(node_disk_written_bytes_total{NODE}[$__rate_interval]))",
                    "{{instance}} written",
                ),
            ],
            (6, 8, 6, 4),
            unit="bytes/s",
        ),
        _panel(
            "stat",
            "Up for",
            [(f"time() - node_boot_time_seconds{NODE}", "{{instance}}")],
            (0, 12, 4, 3),
            unit="s",
        ),
        _panel(
            "table",
            "Hosts",
            [(f"node_uname_info{NODE}", "")],
            (4, 12, 8, 3),
        ),
    ],
}

VIGIL = {
    "title": "Vigil",
    "slug": "vigil",
    "tags": ["vigil"],
    "time_range": "1h",
    "refresh": "1m",
    "variables": [],
    "panels": [
        _panel(
            "timeseries",
            "Requests answered",
            [
                (
                    "sum by (status) (rate(vigil_http_requests_total[$__rate_interval]))",
                    "{{status}}",
                )
            ],
            (0, 0, 6, 4),
            unit="req/s",
        ),
        _panel(
            "timeseries",
            "Request latency",
            [
                (
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(vigil_http_request_duration_seconds_bucket[$__rate_interval])))",
                    "p50",
                ),
                (
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(vigil_http_request_duration_seconds_bucket[$__rate_interval])))",
                    "p95",
                ),
            ],
            (6, 0, 6, 4),
            unit="s",
        ),
        _panel(
            "timeseries",
            "Samples ingested",
            [
                ("sum(rate(vigil_ingest_samples_total[$__rate_interval]))", "pushed"),
                ("sum(rate(vigil_scraped_samples_total[$__rate_interval]))", "scraped"),
            ],
            (0, 4, 6, 4),
            unit="/s",
        ),
        _panel(
            "timeseries",
            "Ingest requests refused",
            [
                (
                    "sum by (reason) (rate(vigil_ingest_errors_total[$__rate_interval]))",
                    "{{reason}}",
                )
            ],
            (6, 4, 6, 4),
            unit="req/s",
        ),
        _panel(
            "stat",
            "Rule evaluation, average",
            [
                (
                    "rate(vigil_alert_evaluation_seconds_sum[$__rate_interval]) "
                    "/ rate(vigil_alert_evaluation_seconds_count[$__rate_interval])",
                    "",
                )
            ],
            (0, 8, 4, 3),
            unit="s",
        ),
        _panel(
            "stat",
            "Rollups behind",
            [("max(vigil_rollup_lag_seconds)", "")],
            (4, 8, 4, 3),
            unit="s",
            thresholds=[{"value": 300, "color": "orange"}, {"value": 900, "color": "red"}],
        ),
        _panel(
            "stat",
            "Notifications failed, last hour",
            # None failed is a 0, not "no data": the counter has no series before a failure.
            [("sum(increase(vigil_notification_failures_total[1h])) or vector(0)", "")],
            (8, 8, 4, 3),
            decimals=0,
            thresholds=[{"value": 1, "color": "red"}],
        ),
    ],
}

API_TYPES = 'api_type=~"$api_type"'
API_PERFORMANCE = {
    "title": "API performance",
    "slug": "api-performance",
    "tags": ["api", "services"],
    "time_range": "1h",
    "refresh": "1m",
    "variables": [
        {
            "name": "api_type",
            "kind": "query",
            "query": "label_values(api_requests_total, api_type)",
            "multi": True,
            "include_all": True,
        }
    ],
    "panels": [
        _panel(
            "timeseries",
            "Request rate by type",
            [
                (
                    f"sum by (api_type) (rate(api_requests_total{{{API_TYPES}}}"
                    "[$__rate_interval]))",
                    "{{api_type}}",
                )
            ],
            (0, 0, 8, 4),
            unit="req/s",
        ),
        _panel(
            "gauge",
            "Success rate",
            [
                (
                    f'sum(rate(api_requests_total{{{API_TYPES}, status="success"}}[5m])) '
                    f"/ sum(rate(api_requests_total{{{API_TYPES}}}[5m])) * 100",
                    "",
                )
            ],
            (8, 0, 4, 4),
            unit="percent",
            min=0,
            max=100,
            thresholds=[
                {"value": 0, "color": "red"},
                {"value": 95, "color": "orange"},
                {"value": 99, "color": "green"},
            ],
        ),
        _panel(
            "timeseries",
            "p95 latency",
            [
                (
                    "histogram_quantile(0.95, sum by (le, api_type) "
                    f"(rate(api_response_time_seconds_bucket{{{API_TYPES}}}[$__rate_interval])))",
                    "{{api_type}}",
                )
            ],
            (0, 4, 6, 4),
            unit="s",
        ),
        _panel(
            "timeseries",
            "p99 latency",
            [
                (
                    "histogram_quantile(0.99, sum by (le, api_type) "
                    f"(rate(api_response_time_seconds_bucket{{{API_TYPES}}}[$__rate_interval])))",
                    "{{api_type}}",
                )
            ],
            (6, 4, 6, 4),
            unit="s",
        ),
        _panel(
            "timeseries",
            "Error ratio",
            [
                (
                    f'sum by (api_type) (rate(api_requests_total{{{API_TYPES}, status!="success"}}'
                    "[$__rate_interval])) / sum by (api_type) "
                    f"(rate(api_requests_total{{{API_TYPES}}}[$__rate_interval])) * 100",
                    "{{api_type}}",
                )
            ],
            (0, 8, 8, 4),
            unit="percent",
            min=0,
        ),
        _panel(
            "bargauge",
            "Average response time",
            [
                (
                    f"sum by (api_type) (rate(api_response_time_seconds_sum{{{API_TYPES}}}[5m])) "
                    f"/ sum by (api_type) (rate(api_response_time_seconds_count{{{API_TYPES}}}"
                    "[5m]))",
                    "{{api_type}}",
                )
            ],
            (8, 8, 4, 4),
            unit="s",
            min=0,
            max=1,
            thresholds=[{"value": 0.5, "color": "orange"}, {"value": 1, "color": "red"}],
        ),
    ],
}
SHIPPED = [HOST, NODE_EXPORTER, VIGIL, API_PERFORMANCE]


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
