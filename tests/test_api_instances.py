from datetime import UTC, datetime, timedelta

import pytest

from alerts.models import Alert
from instances import store
from instances.models import Instance, Series

# The seed's own example payloads (seeds/003_356d755bdfa6e593.txt), verbatim.
SEED_INSTANCE = {
    "name": "Production Server 1",
    "type": "vultr-server",
    "region": "vultr-nyc1",
    "endpoint": "http://hostname",
    "metadata": {},
}
SEED_HEALTH_UPDATE = {"status": "healthy", "lastHealthCheck": "2026-01-17T20:00:00.000Z"}
INSTANCE_FIELDS = {
    "id",
    "agentId",
    "name",
    "type",
    "region",
    "endpoint",
    "metadata",
    "status",
    "reportedStatus",
    "lastHealthCheck",
}


def register(api, **fields):
    response = api.post("/api/v1/instances", {**SEED_INSTANCE, **fields})
    assert response.status_code in (200, 201), response.content
    return response.json()


def push_samples(api, agent_id, count=3):
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    samples = [{"name": "cpu_usage", "value": i, "ts": now_ms - i * 1000} for i in range(count)]
    body = {"instance": {"agent_id": agent_id}, "samples": samples}
    assert api.post("/api/v1/ingest", body).status_code == 202


@pytest.mark.django_db(transaction=True)
def test_the_seed_registration_answers_201_with_the_instance(api):
    response = api.post("/api/v1/instances", SEED_INSTANCE)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == INSTANCE_FIELDS
    instance = Instance.objects.get()
    assert body == {
        "id": str(instance.pk),
        "agentId": str(instance.pk),
        **SEED_INSTANCE,
        "status": "unknown",
        "reportedStatus": None,
        "lastHealthCheck": None,
    }


@pytest.mark.django_db(transaction=True)
def test_registering_an_agent_id_again_updates_the_instance_and_answers_200(api):
    first = api.post("/api/v1/instances", {**SEED_INSTANCE, "agentId": "vultr-server-123"})
    again = api.post("/api/v1/instances", {"agentId": "vultr-server-123", "name": "Renamed"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["name"] == "Renamed"
    assert again.json()["region"] == "vultr-nyc1"
    assert Instance.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_registrations_without_agent_id_are_separate_instances(api):
    register(api)
    register(api)
    assert Instance.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_an_instance_is_found_by_its_uuid_or_its_agent_id(api):
    created = register(api, agentId="web-1")
    by_uuid = api.get(f"/api/v1/instances/{created['id']}")
    by_agent_id = api.get("/api/v1/instances/web-1")
    assert by_uuid.status_code == by_agent_id.status_code == 200
    assert by_uuid.json() == by_agent_id.json() == created


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("ref", ["nobody", "7b0e4a58-8b3c-4a1e-9d1e-0c2f3a4b5c6d"])
def test_an_unknown_instance_is_404_on_every_instance_route(api, ref):
    for response in (
        api.get(f"/api/v1/instances/{ref}"),
        api.put(f"/api/v1/instances/{ref}", SEED_HEALTH_UPDATE),
        api.delete(f"/api/v1/instances/{ref}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]
        assert response.json()["details"] == []


@pytest.mark.django_db(transaction=True)
def test_the_list_filters_by_status_and_limit(api):
    for agent_id in ("a", "b", "c"):
        register(api, agentId=agent_id)
    for agent_id in ("a", "b"):
        api.put(f"/api/v1/instances/{agent_id}", {"lastHealthCheck": datetime.now(UTC).isoformat()})
    everything = api.get("/api/v1/instances").json()
    healthy = api.get("/api/v1/instances", {"status": "healthy"}).json()
    one = api.get("/api/v1/instances", {"limit": 1}).json()
    assert everything["count"] == len(everything["items"]) == 3
    assert {item["agentId"] for item in healthy["items"]} == {"a", "b"}
    assert healthy["count"] == 2
    assert one["count"] == len(one["items"]) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "params, field",
    [({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"status": "fine"}, "status")],
)
def test_a_bad_list_filter_is_400_naming_it(api, params, field):
    response = api.get("/api/v1/instances", params)
    assert response.status_code == 400
    assert [detail["field"] for detail in response.json()["details"]] == [field]


@pytest.mark.django_db(transaction=True)
def test_the_seed_health_update_records_the_reported_status_and_last_health_check(api):
    created = register(api)
    response = api.put(f"/api/v1/instances/{created['id']}", SEED_HEALTH_UPDATE)
    assert response.status_code == 200
    # Its last contact is months ago: silent, whatever it says of itself.
    assert response.json() == {
        **created,
        "status": "unknown",
        "reportedStatus": "healthy",
        "lastHealthCheck": SEED_HEALTH_UPDATE["lastHealthCheck"],
    }
    instance = Instance.objects.get()
    assert (instance.status, instance.reported_status) == ("unknown", "healthy")
    assert instance.last_seen == datetime(2026, 1, 17, 20, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_a_future_health_check_counts_as_now(api):
    register(api, agentId="web-1")
    future = (datetime.now(UTC) + timedelta(days=365)).isoformat()
    assert api.put("/api/v1/instances/web-1", {"lastHealthCheck": future}).status_code == 200
    assert Instance.objects.get().last_seen <= datetime.now(UTC)


@pytest.mark.django_db(transaction=True)
def test_an_update_can_describe_the_instance(api):
    register(api, agentId="web-1")
    change = {"name": "Web 1", "type": "vm", "region": "fra1", "endpoint": "http://w1"}
    response = api.put("/api/v1/instances/web-1", {**change, "metadata": {"os": "linux"}})
    assert response.status_code == 200
    instance = Instance.objects.get()
    assert (instance.name, instance.type, instance.region, instance.endpoint) == tuple(
        change.values()
    )
    assert instance.metadata == {"os": "linux"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "body, fields",
    [
        ({"status": "great"}, {"status"}),
        ({"lastHealthCheck": "yesterday"}, {"lastHealthCheck"}),
        ({"lastHealthCheck": "2026-01-17T20:00:00"}, {"lastHealthCheck"}),
        ({"lastHealthCheck": "0001-01-01T00:00:00.0Z"}, {"lastHealthCheck"}),
        ({"lastHealthCheck": "1969-12-31T23:59:59Z"}, {"lastHealthCheck"}),
        ({"name": "", "metadata": []}, {"name", "metadata"}),
        ({"region": "x" * 101}, {"region"}),
    ],
)
def test_a_bad_update_is_400_with_details_and_changes_nothing(api, body, fields):
    created = register(api, agentId="web-1")
    response = api.put("/api/v1/instances/web-1", body)
    assert response.status_code == 400
    assert {detail["field"] for detail in response.json()["details"]} == fields
    assert api.get("/api/v1/instances/web-1").json() == created


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "body, fields",
    [
        ({"agentId": ""}, {"agentId"}),
        ({"agentId": " "}, {"agentId"}),
        ({"agentId": 5}, {"agentId"}),
        ({"name": "x" * 201}, {"name"}),
        ({"metadata": "none"}, {"metadata"}),
    ],
)
def test_a_bad_registration_is_400_with_details_and_stores_nothing(api, body, fields):
    response = api.post("/api/v1/instances", body)
    assert response.status_code == 400
    assert {detail["field"] for detail in response.json()["details"]} == fields
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "body",
    [b"{nope", b'{"name": "\xff"}', b"[" * 100_000 + b"]" * 100_000],
    ids=["malformed", "not-utf-8", "nested-100000-deep"],
)
def test_malformed_json_is_400(api, body):
    response = api.post("/api/v1/instances", body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_an_instance_deletes_its_series_samples_and_alerts(api):
    push_samples(api, "doomed")
    push_samples(api, "kept")
    doomed = Instance.objects.get(agent_id="doomed")
    Alert.objects.create(instance=doomed, alert_type="high_cpu_usage")
    doomed_series = list(doomed.series.values_list("id", flat=True))
    response = api.delete(f"/api/v1/instances/{doomed.pk}")
    assert response.status_code == 204
    assert response.content == b""
    assert store.count_samples(doomed_series) == 0
    assert store.count_samples() == 3
    assert not Series.objects.filter(instance_id=doomed.pk).exists()
    assert not Alert.objects.exists()
    assert api.get("/api/v1/instances/doomed").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_deleting_instances_outside_the_api_also_deletes_their_samples(api):
    push_samples(api, "a")
    push_samples(api, "b")
    Instance.objects.all().delete()
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/instances"),
        ("POST", "/api/v1/instances"),
        ("GET", "/api/v1/instances/web-1"),
        ("PUT", "/api/v1/instances/web-1"),
        ("DELETE", "/api/v1/instances/web-1"),
    ],
)
def test_requests_without_a_token_are_401(client, method, path):
    response = client.generic(method, path, "{}", content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_a_read_only_token_reads_but_cannot_write(api, client, read_token):
    register(api, agentId="web-1")
    reader = {"Authorization": f"Bearer {read_token}"}
    json = "application/json"
    assert client.get("/api/v1/instances", headers=reader).status_code == 200
    assert client.get("/api/v1/instances/web-1", headers=reader).status_code == 200
    writes = [
        client.post("/api/v1/instances", SEED_INSTANCE, content_type=json, headers=reader),
        client.put(
            "/api/v1/instances/web-1", SEED_HEALTH_UPDATE, content_type=json, headers=reader
        ),
        client.delete("/api/v1/instances/web-1", headers=reader),
    ]
    assert [response.status_code for response in writes] == [403, 403, 403]
    assert Instance.objects.get().status == "unknown"
