import time
from datetime import UTC, datetime

import pytest

from instances import store
from instances.models import Instance

# The seed's own example payload (seeds/003_356d755bdfa6e593.txt), verbatim.
SEED_METRIC = {
    "instanceId": "vultr-server-123",
    "metricName": "cpu_usage",
    "metricValue": 45.5,
    "unit": "percent",
    "timestamp": 1705523400000,
    "tags": {},
}
METRIC_FIELDS = {"id", "instanceId", "metricName", "metricValue", "unit", "timestamp", "tags"}
NOW_MS = int(time.time() * 1000)


def metric(value=45.5, ts=NOW_MS, **fields):
    return {**SEED_METRIC, "metricValue": value, "timestamp": ts, **fields}


def post_metrics(api, body):
    response = api.post("/api/v1/metrics", body)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_the_seed_metric_is_stored_for_a_new_instance_and_answered_201(api, settings):
    settings.RETENTION_RAW_DAYS = 10_000  # the seed's example is from January 2024
    response = api.post("/api/v1/metrics", SEED_METRIC)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == METRIC_FIELDS
    instance = Instance.objects.get(agent_id="vultr-server-123")
    assert {key: value for key, value in body.items() if key != "id"} == {
        **SEED_METRIC,
        "instanceId": str(instance.pk),
    }
    assert store.count_samples() == 1
    assert api.get(f"/api/v1/metrics/{body['id']}").json() == body


@pytest.mark.django_db(transaction=True)
def test_a_metric_older_than_retention_is_400_and_stores_nothing(api):
    response = api.post("/api/v1/metrics", SEED_METRIC)
    assert response.status_code == 400
    assert [(d["index"], d["field"]) for d in response.json()["details"]] == [(None, "timestamp")]
    assert store.count_samples() == 0
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_metric_may_name_its_instance_by_uuid(api):
    instance = Instance.register("vultr-server-123")
    body = post_metrics(api, metric(instanceId=str(instance.pk)))
    assert body["instanceId"] == str(instance.pk)
    assert Instance.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_metric_without_timestamp_is_stamped_now(api):
    body = post_metrics(
        api, {"instanceId": "web-1", "metricName": "uptime_seconds", "metricValue": 5}
    )
    assert abs(body["timestamp"] - int(time.time() * 1000)) < 60_000
    assert (body["unit"], body["tags"]) == ("", {})


@pytest.mark.django_db(transaction=True)
def test_an_array_of_metrics_for_several_instances_is_stored_at_once(api):
    batch = [
        metric(1, NOW_MS - 2000, tags={"core": "0"}),
        metric(2, NOW_MS - 1000, tags={"core": "1"}),
        metric(3, NOW_MS, instanceId="db-1", metricName="memory_usage"),
    ]
    body = post_metrics(api, batch)
    assert body["count"] == 3
    assert [item["metricValue"] for item in body["items"]] == [1, 2, 3]
    assert body["items"][1]["tags"] == {"core": "1"}
    assert set(Instance.objects.values_list("agent_id", flat=True)) == {"vultr-server-123", "db-1"}
    assert store.count_samples() == 3
    for item in body["items"]:
        assert api.get(f"/api/v1/metrics/{item['id']}").json() == item


@pytest.mark.django_db(transaction=True)
def test_one_bad_metric_rejects_the_array_listing_every_problem(api):
    batch = [
        metric(1),
        metric("high"),
        metric(1, metricName="bad name!"),
        metric(1, instanceId=""),
        metric(1, tags={"a": {"b": 1}}),
        metric(1, NOW_MS + 86_400_000),
        "not a metric",
    ]
    response = api.post("/api/v1/metrics", batch)
    assert response.status_code == 400
    assert {(d["index"], d["field"]) for d in response.json()["details"]} == {
        (1, "metricValue"),
        (2, "metricName"),
        (3, "instanceId"),
        (4, "tags"),
        (5, "timestamp"),
        (6, ""),
    }
    assert store.count_samples() == 0
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'"text"',
        b"null",
        b'{"instanceId": "a", "metricName": "x", "metricValue": NaN}',
        b'{"instanceId": "a", "metricName": "x", "metricValue": 1e999}',
        b'{"instanceId": "a", "metricName": "x", "metricValue": true}',
        b'{"instanceId": "a", "metricName": "x", "metricValue": 1, "timestamp": 1e30}',
        b'{"instanceId": "a", "metricName": "x", "metricValue": 1, "timestamp": "yesterday"}',
        b'{"instanceId": "a", "metricName": "x", "metricValue": 1, "unit": 5}',
        b'{"metricName": "x", "metricValue": 1}',
    ],
)
def test_bad_input_gets_a_clear_400_and_stores_nothing(api, raw):
    response = api.post("/api/v1/metrics", raw)
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert store.count_samples() == 0
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_more_metrics_than_a_batch_may_hold_is_413(api, settings):
    settings.INGEST_MAX_SAMPLES = 2
    response = api.post("/api/v1/metrics", [metric(i, NOW_MS - i) for i in range(3)])
    assert response.status_code == 413
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
def test_the_list_is_newest_first_and_filters_by_instance_name_and_limit(api):
    post_metrics(
        api,
        [
            metric(1, NOW_MS - 3000),
            metric(2, NOW_MS - 2000, metricName="memory_usage"),
            metric(3, NOW_MS - 1000, instanceId="db-1"),
        ],
    )
    db = Instance.objects.get(agent_id="db-1")

    def values(**params):
        body = api.get("/api/v1/metrics", params).json()
        assert body["count"] == len(body["items"])
        return [item["metricValue"] for item in body["items"]]

    assert values() == [3, 2, 1]
    assert values(instanceId="vultr-server-123") == [2, 1]
    assert values(instanceId=str(db.pk)) == [3]
    assert values(metricName="cpu_usage") == [3, 1]
    assert values(instanceId="vultr-server-123", metricName="cpu_usage") == [1]
    assert values(limit=2) == [3, 2]
    assert values(instanceId="nobody") == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("limit", [0, 1001, "many"])
def test_a_bad_limit_is_400(api, limit):
    response = api.get("/api/v1/metrics", {"limit": limit})
    assert response.status_code == 400
    assert response.json()["details"][0]["field"] == "limit"


@pytest.mark.django_db(transaction=True)
def test_a_sample_with_microseconds_keeps_an_exact_id(api):
    stamped = datetime.now(UTC).replace(microsecond=123456).isoformat()
    body = post_metrics(api, metric(7, stamped))
    assert body["id"].endswith(".456")
    assert api.get(f"/api/v1/metrics/{body['id']}").json() == body


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "metric_id", ["abc", "1-", "-1705523400000", "1-2-3", "99999999-1705523400000", "1-1e9"]
)
def test_an_unknown_or_malformed_metric_id_is_404(api, metric_id):
    response = api.get(f"/api/v1/metrics/{metric_id}")
    assert response.status_code == 404
    assert response.json()["error"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "method, path",
    [("GET", "/api/v1/metrics"), ("POST", "/api/v1/metrics"), ("GET", "/api/v1/metrics/1-2")],
)
def test_requests_without_a_token_are_401(client, method, path):
    response = client.generic(method, path, "{}", content_type="application/json")
    assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_read_only_token_reads_metrics_but_cannot_post_them(client, read_token):
    reader = {"Authorization": f"Bearer {read_token}"}
    assert client.get("/api/v1/metrics", headers=reader).status_code == 200
    response = client.post(
        "/api/v1/metrics", metric(), content_type="application/json", headers=reader
    )
    assert response.status_code == 403
    assert store.count_samples() == 0
