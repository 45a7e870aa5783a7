"""Staleness against real Prometheus: the same remote write requests, with Prometheus's
staleness markers, go to Vigil and to a Prometheus receiving remote write; queries around the
ends of series must then answer alike (a series stops at its marker, not 5 minutes later)."""

import time
import urllib.parse
import urllib.request

import pytest

from tests.prometheus_services import needs_prometheus, prometheus
from tests.promql_compare import (
    KEEPS_METRIC_NAME,
    NO_EXTRAPOLATION,
    TIMESTAMP_PAST_MARKER,
    WINDOW_START_INCLUDED,
    differences,
    get_json,
    results,
    unix,
)
from tests.test_remote_write import STALE_NAN, post_request, snappy, write_request

pytestmark = [needs_prometheus, pytest.mark.django_db(transaction=True)]

STEP_MS = 15_000
QUERIES = [
    "job_queue_depth",
    "count(job_queue_depth)",
    "job_queue_depth offset 1m",
    "last_over_time(job_queue_depth[2m])",
    "count_over_time(job_queue_depth[2m])",
    "rate(jobs_done_total[1m])",
    "max_over_time(job_queue_depth[1m:15s])",
    "timestamp(job_queue_depth)",
    "absent(job_queue_depth)",
]
# A query here may differ on VictoriaMetrics, for the named reason only.
VICTORIAMETRICS_DIFFERENCES = {
    "count_over_time(job_queue_depth[2m])": WINDOW_START_INCLUDED,
    "rate(jobs_done_total[1m])": NO_EXTRAPOLATION,
    "max_over_time(job_queue_depth[1m:15s])": KEEPS_METRIC_NAME,
    "timestamp(job_queue_depth)": TIMESTAMP_PAST_MARKER,
}


def ended_series(start_ms: int):
    """Two workers' series, 15 s apart for 5 minutes; worker-a's end (a staleness marker) at
    2 minutes and come back at 3, worker-b's go on."""
    series = []
    for worker in ("worker-a", "worker-b"):
        depth, done = [], []
        for step in range(21):
            ts = start_ms + step * STEP_MS
            if worker == "worker-a" and step == 8:
                depth.append((STALE_NAN, ts))
                done.append((STALE_NAN, ts))
                continue
            if worker == "worker-a" and 8 < step < 12:
                continue
            depth.append((float(step % 7), ts))
            done.append((float(step * 3), ts))
        labels = {"instance": worker, "job": "jobs"}
        series.append(({"__name__": "job_queue_depth", **labels}, depth))
        series.append(({"__name__": "jobs_done_total", **labels}, done))
    return write_request(*series)


def post_to_prometheus(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        f"{url}/api/v1/write",
        data=body,
        headers={
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_series_end_at_their_staleness_markers_as_in_prometheus(
    each_samples_engine, api, live_server, tmp_path
):
    engine, victoria = each_samples_engine
    start_ms = (int(time.time()) - 600) * 1000
    request = ended_series(start_ms)
    config = "global:\n  scrape_interval: 1h\n"
    with prometheus(tmp_path, config, extra_args=("--web.enable-remote-write-receiver",)) as url:
        assert post_to_prometheus(url, snappy(request.SerializeToString())) == 204
        assert post_request(api, request).status_code == 204
        if victoria is not None:
            victoria.flush()

        headers = {"Authorization": f"Bearer {api.token}"}
        problems = []
        for query in QUERIES:
            if engine == "victoriametrics" and query in VICTORIAMETRICS_DIFFERENCES:
                continue
            for at_step in (6, 8, 9, 10, 13, 20):
                params = urllib.parse.urlencode(
                    {"query": query, "time": unix(start_ms + at_step * STEP_MS + 5000)}
                )
                theirs = results(get_json(f"{url}/api/v1/query?{params}"))
                ours = results(
                    get_json(f"{live_server.url}/prometheus/api/v1/query?{params}", headers)
                )
                difference = differences(ours, theirs)
                if difference:
                    problems.append(f"{query} at step {at_step}: {difference}")
            ranged = urllib.parse.urlencode({
                "query": query,
                "start": unix(start_ms),
                "end": unix(start_ms + 20 * STEP_MS),
                "step": "10",
            })  # fmt: skip
            theirs = results(get_json(f"{url}/api/v1/query_range?{ranged}"))
            ours = results(
                get_json(f"{live_server.url}/prometheus/api/v1/query_range?{ranged}", headers)
            )
            difference = differences(ours, theirs)
            if difference:
                problems.append(f"{query} over the range: {difference}")
    assert not problems, "\n".join(problems)
