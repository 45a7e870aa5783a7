import math
import secrets
import struct
import time

import cramjam
import pytest
from prometheus_client import REGISTRY

from ingestion.models import IngestToken
from ingestion.prompb import WriteRequest
from instances import store
from instances.models import Instance, Series
from tests.conftest import ApiClient
from tests.prometheus_services import (
    needs_node_exporter,
    needs_prometheus,
    node_exporter,
    prometheus,
    wait_until,
)

NOW_MS = int(time.time() * 1000)
HEADERS = {"Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}
# Prometheus's staleness marker: a NaN with this bit pattern.
STALE_NAN = struct.unpack(">d", bytes.fromhex("7ff0000000000002"))[0]


def write_request(*series) -> WriteRequest:
    """``series``: (labels dict, [(value, ts_ms), ...]) pairs."""
    request = WriteRequest()
    for labels, samples in series:
        item = request.timeseries.add()
        for name, value in labels.items():
            item.labels.add(name=name, value=value)
        for value, ts in samples:
            item.samples.add(value=value, timestamp=ts)
    return request


def snappy(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def post_write(api, body: bytes, headers=None):
    return api.post(
        "/api/v1/write",
        body,
        headers={**HEADERS, **(headers or {})},
        content_type="application/x-protobuf",
    )


def post_request(api, request: WriteRequest, headers=None):
    return post_write(api, snappy(request.SerializeToString()), headers)


def samples_of(agent_id: str, name: str) -> int:
    ids = Series.objects.filter(instance__agent_id=agent_id, name=name).values_list("id", flat=True)
    return store.count_samples(list(ids))


def load1(instance="web-1", value=0.5, ts=NOW_MS, **labels):
    return (
        {"__name__": "node_load1", "instance": instance, "job": "node", **labels},
        [(value, ts)],
    )


@pytest.mark.django_db(transaction=True)
def test_write_request_stores_each_instances_samples_and_answers_204(api):
    request = write_request(
        load1("web-1"),
        load1("web-2", 1.5),
        ({"__name__": "up", "job": "batch-jobs"}, [(1, NOW_MS - 1000), (1, NOW_MS)]),
    )
    response = post_request(api, request)
    assert response.status_code == 204, response.content
    assert response.content == b""
    assert samples_of("web-1", "node_load1") == samples_of("web-2", "node_load1") == 1
    assert samples_of("batch-jobs", "up") == 2
    series = Series.objects.get(instance__agent_id="web-1", name="node_load1")
    assert series.labels == {"job": "node"}


@pytest.mark.django_db(transaction=True)
def test_nan_is_skipped_and_a_staleness_marker_kept_beside_the_samples(api):
    request = write_request(
        (
            {"__name__": "node_load5", "instance": "web-1"},
            [(1.0, NOW_MS - 2000), (STALE_NAN, NOW_MS - 1000), (math.nan, NOW_MS)],
        ),
        # A marker for a series never stored ends nothing, and makes no series.
        ({"__name__": "never_seen", "instance": "web-1"}, [(STALE_NAN, NOW_MS)]),
    )
    assert post_request(api, request).status_code == 204
    assert samples_of("web-1", "node_load5") == 1
    series = Series.objects.get(instance__agent_id="web-1", name="node_load5")
    arrays = store.sample_arrays([series.pk], NOW_MS - 5000, NOW_MS, limit=10)
    assert arrays.ts_ms.tolist() == [NOW_MS - 2000, NOW_MS - 1000]
    assert arrays.value[0] == 1.0 and math.isnan(arrays.value[1])
    assert not Series.objects.filter(name="never_seen").exists()


@pytest.mark.django_db(transaction=True)
def test_a_replayed_write_is_stored_once(api):
    request = write_request(load1("web-1", ts=NOW_MS - 1000), load1("web-1", ts=NOW_MS))
    for _ in range(2):
        assert post_request(api, request).status_code == 204
    assert samples_of("web-1", "node_load1") == 2


@pytest.mark.django_db(transaction=True)
def test_a_write_replaying_one_instances_samples_stores_the_rest_and_counts_each_batch_once(api):
    assert post_request(api, write_request(load1("db-1", ts=NOW_MS - 1000))).status_code == 204
    batches_before = REGISTRY.get_sample_value("vigil_ingest_batches_total")
    samples_before = REGISTRY.get_sample_value("vigil_ingest_samples_total")
    # web-1 first: its batch is written before db-1's replayed sample is met.
    request = write_request(
        load1("web-1", ts=NOW_MS),
        ({**load1("db-1")[0]}, [(0.5, NOW_MS - 1000), (0.7, NOW_MS)]),
    )

    assert post_request(api, request).status_code == 204

    assert (samples_of("web-1", "node_load1"), samples_of("db-1", "node_load1")) == (1, 2)
    assert REGISTRY.get_sample_value("vigil_ingest_batches_total") == batches_before + 2
    # Each sample's host metric (node_load1 gives the load) is written, and counted, beside it.
    assert REGISTRY.get_sample_value("vigil_ingest_samples_total") == samples_before + 2 * 3


@pytest.mark.django_db(transaction=True)
def test_malformed_snappy_is_400(api):
    response = post_write(api, b"\x05not snappy at all")
    assert response.status_code == 400
    assert "snappy" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_malformed_protobuf_is_400(api):
    response = post_write(api, snappy(b"\xff\xff\xff\xff not protobuf"))
    assert response.status_code == 400
    assert "protobuf" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_oversized_body_is_413(api, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    body = snappy(
        write_request(*[load1(secrets.token_hex(16)) for _ in range(100)]).SerializeToString()
    )
    assert len(body) > 1000
    assert post_write(api, body).status_code == 413
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_small_body_decompressing_to_a_huge_one_is_413(api, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    body = snappy(b"\x00" * 20_000)
    assert len(body) < 1000
    assert post_write(api, body).status_code == 413


@pytest.mark.django_db(transaction=True)
def test_too_many_samples_is_413(api, settings):
    settings.INGEST_MAX_SAMPLES = 3
    request = write_request(
        ({"__name__": "x", "instance": "a"}, [(1, NOW_MS - i) for i in range(4, 0, -1)])
    )
    assert post_request(api, request).status_code == 413


@pytest.mark.django_db(transaction=True)
def test_out_of_order_samples_are_400_and_nothing_of_the_request_is_stored(api):
    request = write_request(
        load1("web-1"),
        ({"__name__": "node_load5", "instance": "web-2"}, [(1, NOW_MS), (2, NOW_MS - 1000)]),
    )
    response = post_request(api, request)
    assert response.status_code == 400
    assert response.json()["details"] == [
        {
            "index": 1,
            "field": "samples[1].timestamp",
            "message": "is out of order: timestamps must increase within a series",
        }
    ]
    assert not Instance.objects.exists()
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
def test_too_old_and_future_samples_are_400(api):
    old = NOW_MS - 400 * 86_400_000
    future = NOW_MS + 86_400_000
    response = post_request(
        api, write_request(load1("web-1"), load1("web-2", ts=old), load1("web-3", ts=future))
    )
    assert response.status_code == 400
    details = response.json()["details"]
    assert [(d["index"], d["field"]) for d in details] == [
        (1, "samples[0].timestamp"),
        (2, "samples[0].timestamp"),
    ]
    assert "retention" in details[0]["message"] and "future" in details[1]["message"]
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
def test_invalid_names_and_labels_are_400_listing_every_problem(api):
    request = write_request(
        ({"__name__": "bad-name", "instance": "web-1"}, [(1, NOW_MS)]),
        (
            {"__name__": "ok", "instance": "web-1", **{f"l{i}": "v" for i in range(40)}},
            [(1, NOW_MS)],
        ),
        ({"__name__": "too_long", "instance": "x" * 201}, [(1, NOW_MS)]),
        load1("web-1"),
    )
    response = post_request(api, request)
    assert response.status_code == 400
    fields = [(d["index"], d["field"]) for d in response.json()["details"]]
    assert fields == [(0, "labels.__name__"), (1, "labels"), (2, "labels.instance")]
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
def test_a_series_without_instance_or_job_belongs_to_the_instance_named_after_the_token(client):
    plain = IngestToken.issue("prometheus-eu")[1]
    request = write_request(
        ({"__name__": "cluster:cpu_usage:avg", "cluster": "eu"}, [(42.0, NOW_MS)]),
        ({"__name__": "cluster:up:sum", "instance": "", "job": ""}, [(3, NOW_MS)]),
        load1("web-1"),
    )

    response = post_request(ApiClient(client, plain), request)

    assert response.status_code == 204, response.content
    assert samples_of("prometheus-eu", "cluster:cpu_usage:avg") == 1
    assert samples_of("prometheus-eu", "cluster:up:sum") == 1
    assert samples_of("web-1", "node_load1") == 1
    rollup = Series.objects.get(instance__agent_id="prometheus-eu", name="cluster:cpu_usage:avg")
    assert rollup.labels == {"cluster": "eu"}
    assert Series.objects.get(name="cluster:up:sum").labels == {}


@pytest.mark.django_db(transaction=True)
def test_a_token_kept_to_some_agent_ids_must_allow_its_own_name_for_such_series(client):
    plain = IngestToken.issue("prometheus-eu", agent_patterns=["web-*"])[1]
    request = write_request(({"__name__": "cluster:up:sum"}, [(3, NOW_MS)]), load1("web-1"))

    response = post_request(ApiClient(client, plain), request)

    assert response.status_code == 403
    assert "'prometheus-eu'" in response.content.decode()
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
def test_wrong_encoding_content_type_or_version_is_415(api):
    body = snappy(write_request(load1()).SerializeToString())
    assert post_write(api, body, {"Content-Encoding": "gzip"}).status_code == 415
    assert post_write(api, body, {"X-Prometheus-Remote-Write-Version": "2.0.0"}).status_code == 415
    response = api.post("/api/v1/write", body, headers=HEADERS, content_type="application/json")
    assert response.status_code == 415


@pytest.mark.django_db(transaction=True)
def test_write_needs_a_write_token(client, read_token):
    body = snappy(write_request(load1()).SerializeToString())
    anonymous = client.post(
        "/api/v1/write", body, content_type="application/x-protobuf", headers=HEADERS
    )
    assert anonymous.status_code == 401
    read_only = client.post(
        "/api/v1/write",
        body,
        content_type="application/x-protobuf",
        headers={**HEADERS, "Authorization": f"Bearer {read_token}"},
    )
    assert read_only.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_node_exporter_metrics_give_vigils_host_metrics(api):
    t0, t1 = NOW_MS - 10_000, NOW_MS

    def node(name, value, ts, **labels):
        return ({"__name__": name, "instance": "host-1", "job": "node", **labels}, [(value, ts)])

    root = {"mountpoint": "/", "fstype": "ext4", "device": "/dev/sda1"}
    first = write_request(
        node("node_cpu_seconds_total", 100.0, t0, cpu="0", mode="idle"),
        node("node_cpu_seconds_total", 200.0, t0, cpu="1", mode="idle"),
        node("node_memory_MemTotal_bytes", 1000.0, t0),
    )
    # The second scrape's samples come in two requests, as Prometheus's shards send them.
    second = write_request(
        node("node_cpu_seconds_total", 109.0, t1, cpu="0", mode="idle"),  # 90 % idle
        node("node_cpu_seconds_total", 207.0, t1, cpu="1", mode="idle"),  # 70 % idle
        node("node_memory_MemAvailable_bytes", 250.0, t1),
        node("node_filesystem_size_bytes", 200.0, t1, **root),
        node("node_filesystem_avail_bytes", 50.0, t1, **root),
        node("node_filesystem_size_bytes", 10.0, t1, mountpoint="/run", fstype="tmpfs"),
        node("node_filesystem_avail_bytes", 0.0, t1, mountpoint="/run", fstype="tmpfs"),
        node("node_load1", 0.5, t1),
        node("node_load15", 0.25, t1),
    )
    for request in (first, second):
        assert post_request(api, request).status_code == 204
    latest = {(v.name, tuple(sorted(v.labels.items()))): v.value for v in store.latest_values()}
    assert latest[("cpu_usage", ())] == pytest.approx(20.0)
    assert latest[("memory_usage", ())] == pytest.approx(75.0)
    assert latest[("disk_usage", (("mount", "/"),))] == pytest.approx(75.0)
    assert ("disk_usage", (("mount", "/run"),)) not in latest
    assert latest[("load_average", (("period", "1m"),))] == 0.5
    assert latest[("load_average", (("period", "15m"),))] == 0.25


@needs_prometheus
@needs_node_exporter
@pytest.mark.django_db(transaction=True)
def test_prometheus_remote_writes_node_exporter_metrics_to_vigil(live_server, token, tmp_path):
    with node_exporter(tmp_path) as exporter:
        config = f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['{exporter}']
remote_write:
  - url: {live_server.url}/api/v1/write
    authorization:
      credentials: {token}
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"""
        with prometheus(tmp_path, config):
            wait_until(
                lambda: (
                    samples_of(exporter, "node_load1") > 0
                    and samples_of(exporter, "memory_usage") > 0
                    and samples_of(exporter, "cpu_usage") > 0
                ),
                timeout=60,
                what="node_load1, memory_usage and cpu_usage from Prometheus",
            )
    instance = Instance.objects.get(agent_id=exporter)
    names = set(instance.series.values_list("name", flat=True))
    assert {"node_load1", "node_memory_MemTotal_bytes", "up", "load_average"} <= names
    up = Series.objects.get(instance=instance, name="up")
    assert up.labels == {"job": "node"}
