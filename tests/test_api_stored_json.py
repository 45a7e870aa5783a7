"""What the API stores as free-form JSON (instance metadata, metric tags, labels) and as text
(alert fields) is checked at the edge, and a stored value the API cannot write never takes a
list down (issue 22)."""

import importlib
import json
import logging

import pytest

from alerts.models import Alert
from instances.json_values import writable_json
from instances.models import Instance

BEYOND_64_BITS = -8712842758059829000000000000000  # from the fuzzer's registration


def nested(depth: int) -> dict:
    value = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def depth(value) -> int:
    """Levels of objects and arrays in ``value``; a JSON text counts as a leaf."""
    if isinstance(value, dict | list):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((depth(item) for item in items), default=0)
    return 0


def post_raw(api, path: str, text: str):
    """POST a JSON text as written (json.dumps cannot write NaN or numbers beyond 64 bits)."""
    return api.post(path, text)


def fields_of(response) -> set[str]:
    return {detail["field"] for detail in response.json()["details"]}


@pytest.fixture
def lists_answer(api):
    """Assert afterwards that every list endpoint still answers 200."""

    def check():
        for path in ("/api/v1/instances", "/api/v1/analytics/dashboard", "/api/v1/alerts"):
            assert api.get(path).status_code == 200, path

    return check


UNSTORABLE_METADATA = [
    pytest.param(f'{{"": {BEYOND_64_BITS}}}', id="integer-beyond-64-bits"),
    pytest.param('{"x": 9223372036854775808}', id="integer-just-beyond-int64"),
    pytest.param('{"x": [1e400]}', id="beyond-float64"),
    pytest.param('{"x": NaN}', id="nan"),
    pytest.param(json.dumps(nested(40)), id="nested-40-deep"),
    pytest.param(json.dumps({"x": "a" * 70_000}), id="70-kb"),
    pytest.param('{"a\\u0000b": 1}', id="nul-in-a-key"),
    pytest.param('{"a": ["\\u0000"]}', id="nul-in-a-string"),
    pytest.param('{"a\\ud800": 1}', id="lone-surrogate-in-a-key"),
    pytest.param('{"a": "\\udfff"}', id="lone-surrogate-in-a-string"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("metadata", UNSTORABLE_METADATA)
def test_registering_unstorable_metadata_is_400_naming_the_field(api, lists_answer, metadata):
    response = post_raw(api, "/api/v1/instances", f'{{"agentId": "web-1", "metadata": {metadata}}}')
    assert response.status_code == 400, response.content
    assert fields_of(response) == {"metadata"}
    assert not Instance.objects.exists()
    lists_answer()


@pytest.mark.django_db(transaction=True)
def test_updating_an_instance_with_an_integer_beyond_64_bits_is_400_and_changes_nothing(
    api, lists_answer
):
    Instance.register("web-1", metadata={"rack": 4})
    body = f'{{"metadata": {{"rack": {BEYOND_64_BITS}}}}}'
    response = api.put("/api/v1/instances/web-1", body)
    assert response.status_code == 400
    assert fields_of(response) == {"metadata"}
    assert Instance.objects.get().metadata == {"rack": 4}
    lists_answer()


@pytest.mark.django_db(transaction=True)
def test_metadata_within_the_limits_is_stored_as_sent(api, lists_answer):
    metadata = {
        "cpu_count": 9223372036854775807,
        "load": -1.5e300,
        "disks": [{"mount": "/", "labels": {"tier": "ssd 😀"}}],
        "deep": nested(15),  # the 16th level
    }
    response = api.post("/api/v1/instances", {"agentId": "web-1", "metadata": metadata})
    assert response.status_code == 201
    assert response.json()["metadata"] == metadata
    # Read back from jsonb, which gives -1.5e300 back as its 301 digits.
    assert api.get("/api/v1/instances/web-1").json()["metadata"] == metadata
    lists_answer()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(json.dumps(nested(300)), id="nested-300-deep"),
        pytest.param('{"x": 18446744073709551615}', id="integer-beyond-int64"),
        pytest.param('{"a\\u0000": 1}', id="nul-in-a-key"),
    ],
)
def test_an_ingest_batch_with_unstorable_metadata_is_400_naming_the_field(
    api, lists_answer, metadata
):
    body = f'{{"instance": {{"agent_id": "web-1", "metadata": {metadata}}}, "samples": []}}'
    response = post_raw(api, "/api/v1/ingest", body)
    assert response.status_code == 400, response.content
    assert fields_of(response) == {"instance.metadata"}
    assert not Instance.objects.exists()
    lists_answer()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path, body, field",
    [
        (
            "/api/v1/metrics",
            {"instanceId": "web-1", "metricName": "up", "metricValue": 1, "tags": {"a": "x\0"}},
            "tags",
        ),
        (
            "/api/v1/metrics",
            {"instanceId": "web\0", "metricName": "up", "metricValue": 1},
            "instanceId",
        ),
        (
            "/api/v1/ingest",
            {
                "instance": {"agent_id": "web-1"},
                "samples": [{"name": "up", "value": 1, "unit": "\0"}],
            },
            "unit",
        ),
        (
            "/api/v1/ingest",
            {"instance": {"agent_id": "web-1", "region": "a\0"}, "samples": []},
            "instance.region",
        ),
        ("/api/v1/instances", {"agentId": "web-1", "name": "a\0"}, "name"),
        ("/api/v1/instances", {"agentId": "web\0"}, "agentId"),
        ("/api/v1/alerts", {"instanceId": "web-1", "alertType": "cpu\0"}, "alertType"),
        ("/api/v1/alerts", {"instanceId": "web-1", "alertType": "cpu", "message": "\0"}, "message"),
    ],
)
def test_a_nul_character_in_stored_text_is_400_naming_the_field(api, path, body, field):
    response = api.post(path, body)
    assert response.status_code == 400, response.content
    assert field in fields_of(response)
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_nul_character_in_an_alert_note_is_400_and_changes_nothing(api):
    alert = api.post("/api/v1/alerts", {"instanceId": "web-1", "alertType": "cpu"}).json()
    response = api.put(f"/api/v1/alerts/{alert['id']}", {"status": "resolved", "note": "a\0"})
    assert response.status_code == 400
    assert fields_of(response) == {"note"}
    assert Alert.objects.get().status == Alert.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_a_200_character_agent_id_with_surrogate_pairs_and_a_large_float_registers(
    api, lists_answer
):
    # The fuzzer's registration, less its integer beyond 64 bits: characters beyond the BMP
    # travel as surrogate pairs in JSON, and jsonb gives 1.5e300 back as its 301 digits.
    agent_id = "\U0001d413" * 199 + "x"
    metadata = {"\U0001f600": "\U0001d413", "load": 1.5e300}
    response = post_raw(
        api, "/api/v1/instances", json.dumps({"agentId": agent_id, "metadata": metadata})
    )
    assert response.status_code == 201, response.content
    assert Instance.objects.get().agent_id == agent_id
    assert api.get(f"/api/v1/instances/{agent_id}").json()["metadata"] == metadata
    lists_answer()


@pytest.mark.django_db(transaction=True)
def test_a_201_character_agent_id_is_400(api):
    response = api.post("/api/v1/instances", {"agentId": "\U0001d413" * 201})
    assert response.status_code == 400
    assert fields_of(response) == {"agentId"}


@pytest.mark.django_db(transaction=True)
def test_an_integer_beyond_64_bits_stored_earlier_is_read_as_a_float(api, lists_answer):
    # Stored before the checks existed; jsonb also gives large floats back as digits like these.
    Instance.objects.create(agent_id="old", name="old", metadata={"big": [BEYOND_64_BITS, 2]})
    response = api.get("/api/v1/instances/old")
    assert response.status_code == 200
    assert response.json()["metadata"] == {"big": [float(BEYOND_64_BITS), 2]}
    lists_answer()


@pytest.mark.django_db(transaction=True)
def test_a_stored_value_the_api_cannot_write_is_written_as_a_string_and_logged(
    api, lists_answer, caplog
):
    Instance.objects.create(agent_id="deep", name="deep", metadata=nested(300))
    Instance.objects.create(agent_id="fine", name="fine", metadata={"cpu_count": 8})
    with caplog.at_level(logging.ERROR, logger="api.api"):
        response = api.get("/api/v1/instances")
    assert response.status_code == 200
    by_agent = {item["agentId"]: item["metadata"] for item in response.json()["items"]}
    assert 100 < depth(by_agent["deep"]) < 255
    assert by_agent["fine"] == {"cpu_count": 8}
    assert "GET /api/v1/instances: wrote 1 value(s) as strings" in caplog.text
    assert "/items/0/metadata/a/a/" in caplog.text
    lists_answer()


def test_what_the_json_writer_cannot_write_becomes_a_string_at_its_path():
    value = {"n": [1, 2**70], "s": "\ud800", "fine": 1.5}
    assert writable_json(value) == (
        {"n": [1, str(2**70)], "s": "\\ud800", "fine": 1.5},
        ["/n/1", "/s"],
    )
    assert writable_json({"fine": [1]}) == ({"fine": [1]}, [])


@pytest.mark.django_db(transaction=True)
def test_the_repair_migration_writes_unwritable_metadata_as_strings(caplog):
    from django.apps import apps

    migration = importlib.import_module("instances.migrations.0006_repair_unwritable_metadata")
    Instance.objects.create(agent_id="deep", name="deep", metadata=nested(300))
    Instance.objects.create(agent_id="old", name="old", metadata={"big": [BEYOND_64_BITS, 2]})
    with caplog.at_level(logging.WARNING):
        migration.repair_unwritable_metadata(apps, None)
    assert 100 < depth(Instance.objects.get(agent_id="deep").metadata) < 255
    # Read as a float, which the writer can write: left as it is.
    assert Instance.objects.get(agent_id="old").metadata == {"big": [float(BEYOND_64_BITS), 2]}
    repaired = [record.args[0] for record in caplog.records if "written as strings" in record.msg]
    assert repaired == ["deep"]
