"""Comparing the answers of two Prometheus query APIs (Vigil's and a real Prometheus's), and
the real Prometheus that feeds Vigil for it."""

import math
import time
import urllib.error
import urllib.request
from contextlib import contextmanager

import orjson

from instances.models import Series
from tests.prometheus_services import node_exporter, prometheus, wait_until

SCRAPE_SECONDS = 2

RELATIVE_TOLERANCE = 1e-9

# VictoriaMetrics' documented departures from Prometheus (its "MetricsQL" differences), by name;
# the README lists them. Tests name the queries that may differ on that engine, and why.
NO_EXTRAPOLATION = (
    "rate, increase, delta: no extrapolation to the window's edges, and the sample just before "
    "the window counts"
)
SAMPLE_BEFORE_WINDOW = "changes, resets: the sample just before the window counts"
KEEPS_METRIC_NAME = (
    "*_over_time (but sum, count, stddev, stdvar), predict_linear, round, ceil, floor and clamp* "
    "keep the metric name"
)
NAN_LEFT_OUT = "series whose value is NaN (histogram_quantile over empty buckets) are left out"
ATAN2_DROPS_NAME = "atan2 drops the metric name, as the other arithmetic operators do"
WINDOW_START_INCLUDED = "a sample exactly at a range window's start is inside the window"
TIMESTAMP_PAST_MARKER = (
    "timestamp() reads the newest sample in the lookback even past a staleness marker"
)


def unix(ms: int) -> str:
    return f"{ms / 1000:.3f}"


def get_json(url: str, headers: dict | None = None) -> dict:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return orjson.loads(error.read())


def results(body: dict):
    """A comparable form of a query answer: {labels: [(t, value), ...]} or an error."""
    if body.get("status") != "success":
        return ("error", body.get("errorType"))
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return {(): [tuple(data["result"])]}
    out = {}
    for item in data["result"]:
        points = item.get("values") or [item["value"]]
        out[tuple(sorted(item["metric"].items()))] = [(t, v) for t, v in points]
    return out


def same_value(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return math.isclose(x, y, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-12)


def differences(ours, theirs) -> str | None:
    if isinstance(ours, tuple) or isinstance(theirs, tuple):
        return None if ours == theirs else f"vigil {ours!r} prometheus {theirs!r}"
    if set(ours) != set(theirs):
        only_ours = sorted(set(ours) - set(theirs))[:2]
        only_theirs = sorted(set(theirs) - set(ours))[:2]
        return f"label sets differ: only vigil {only_ours}, only prometheus {only_theirs}"
    for labels, points in theirs.items():
        mine = ours[labels]
        if [t for t, _ in mine] != [t for t, _ in points]:
            return f"{dict(labels)}: steps differ: vigil {mine[:3]} prometheus {points[:3]}"
        for (t, a), (_, b) in zip(mine, points, strict=True):
            if not same_value(a, b):
                return f"{dict(labels)} at {t}: vigil {a} prometheus {b}"
    return None


@contextmanager
def feeding_vigil(tmp_path, vigil_url: str, token: str, gather_seconds: int, extra_config=""):
    """Prometheus scraping node_exporter and itself every 2 s and remote-writing to Vigil
    (``extra_config`` is added to its configuration); yields (Prometheus's URL, the end time
    of a window both hold in full) after ``gather_seconds`` of history.

    Series Prometheus makes itself (its rules' ALERTS) may lack a job label, which remote write
    to Vigil needs: the external label ``job: prometheus-rules`` gives them one (external
    labels never replace a series' own)."""
    with node_exporter(tmp_path) as exporter:
        config = f"""
global:
  scrape_interval: {SCRAPE_SECONDS}s
  evaluation_interval: {SCRAPE_SECONDS}s
  external_labels:
    job: prometheus-rules
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['{exporter}']
  - job_name: prometheus
    static_configs:
      - targets: ['PROMETHEUS_ADDRESS']
remote_write:
  - url: {vigil_url}/api/v1/write
    authorization:
      credentials: {token}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
{extra_config}
"""
        with prometheus(tmp_path, config, self_target="PROMETHEUS_ADDRESS") as url:
            started_ms = int(time.time() * 1000)
            wait_until(
                lambda: time.time() * 1000 > started_ms + gather_seconds * 1000,
                gather_seconds + 5,
                interval=1,
                what="history to gather",
            )
            yield url, settled_end_ms()


def settled_end_ms() -> int:
    """A time 10 s ago up to which Vigil holds every sample Prometheus has (once both targets'
    ``up`` has passed it)."""
    end_ms = int(time.time() * 1000) - 10_000
    wait_until(
        lambda: (
            Series.objects.filter(name="up", last_ts__isnull=False).count() == 2
            and all(
                stamp.timestamp() * 1000 > end_ms + 3000
                for stamp in Series.objects.filter(name="up").values_list("last_ts", flat=True)
            )
        ),
        30,
        what="remote write to catch up",
    )
    return end_ms
