"""Token scopes (PRODUCT.md section 8): every API endpoint with a token of each scope, and
none. ``ingest`` pushes for its agent ids, ``read`` reads, ``manage`` changes and deletes; a
host's token (ingest + read) can never delete, silence, acknowledge or hide anything."""

import time
from datetime import timedelta

import cramjam
import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from alerts.models import Alert, Silence
from checks.models import Check
from ingestion.models import TOKEN_CACHE_SECONDS, IngestToken
from ingestion.prompb import WriteRequest
from instances.models import Instance
from tests.test_monitoring import metric_value

pytestmark = pytest.mark.django_db

INGEST, READ, MANAGE = IngestToken.Scope.values
NONE = "no token"
NOW_MS = int(time.time() * 1000)
REMOTE_WRITE_HEADERS = {"Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}


def remote_write_body(agent_id: str = "web-1") -> bytes:
    request = WriteRequest()
    series = request.timeseries.add()
    for name, value in {"__name__": "load1", "instance": agent_id}.items():
        series.labels.add(name=name, value=value)
    series.samples.add(value=0.5, timestamp=NOW_MS)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def batch(agent_id: str = "web-1") -> dict:
    return {"instance": {"agent_id": agent_id}, "samples": [{"name": "cpu", "value": 1}]}


def am_silence() -> dict:
    now = timezone.now()
    return {
        "matchers": [{"name": "alertname", "value": "DiskFull", "isRegex": False}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
        "createdBy": "ops",
        "comment": "disk swap",
    }


class World:
    """An instance with a metric, an alert and a silence, built through the API itself."""

    def __init__(self, client):
        everything = IngestToken.issue("setup", IngestToken.Scope.values)[1]
        auth = {"Authorization": f"Bearer {everything}"}
        metric = client.post(
            "/api/v1/metrics",
            {"instanceId": "web-1", "metricName": "cpu", "metricValue": 1},
            content_type="application/json",
            headers=auth,
        ).json()
        self.instance = Instance.objects.get(agent_id="web-1")
        self.metric_id = metric["id"]
        self.alert = Alert.objects.create(instance=self.instance, alert_type="DiskFull")
        self.silence = Silence.objects.create(
            matchers=[{"label": "alertname", "op": "=", "value": "DiskFull"}],
            starts_at=timezone.now(),
            ends_at=timezone.now() + timedelta(hours=1),
            comment="known",
        )
        self.check = Check(name="Nightly", kind=Check.Kind.HEARTBEAT)
        self.check.save()


# (method, path with {instance} {metric} {alert} {silence}, body, content type, headers,
#  scopes that may, status when allowed, status for a token without the scope)
ENDPOINTS = [
    ("post", "/api/v1/ingest", batch(), None, {}, {INGEST}, 202, 403),
    ("post", "/api/v1/write", remote_write_body(), "application/x-protobuf",
     REMOTE_WRITE_HEADERS, {INGEST}, 204, 403),
    ("post", "/api/v1/instances", {"agentId": "web-1", "name": "Web 1"}, None, {},
     {INGEST, MANAGE}, 200, 403),
    ("get", "/api/v1/instances", None, None, {}, {READ}, 200, 403),
    ("get", "/api/v1/instances/{instance}", None, None, {}, {READ}, 200, 403),
    ("put", "/api/v1/instances/{instance}", {"metadata": {"rack": "4"}}, None, {},
     {INGEST, MANAGE}, 200, 403),
    ("put", "/api/v1/instances/{instance}", {"status": "healthy"}, None, {}, {MANAGE}, 200, 403),
    ("delete", "/api/v1/instances/{instance}", None, None, {}, {MANAGE}, 204, 403),
    ("post", "/api/v1/metrics", {"instanceId": "web-1", "metricName": "cpu", "metricValue": 2},
     None, {}, {INGEST}, 201, 403),
    ("get", "/api/v1/metrics", None, None, {}, {READ}, 200, 403),
    ("get", "/api/v1/metrics/{metric}", None, None, {}, {READ}, 200, 403),
    ("post", "/api/v1/alerts", {"instanceId": "web-1", "alertType": "HighLoad"}, None, {},
     {INGEST, MANAGE}, 201, 403),
    ("get", "/api/v1/alerts", None, None, {}, {READ}, 200, 403),
    ("put", "/api/v1/alerts/{alert}", {"status": "acknowledged"}, None, {}, {MANAGE}, 200, 403),
    ("put", "/api/v1/alerts/{alert}", {"status": "resolved"}, None, {}, {MANAGE}, 200, 403),
    ("delete", "/api/v1/alerts/{alert}", None, None, {}, {MANAGE}, 204, 403),
    ("get", "/api/v1/analytics/dashboard", None, None, {}, {READ}, 200, 403),
    ("get", "/api/v1/analytics", None, None, {}, {READ}, 200, 403),
    ("get", "/prometheus/api/v1/query?query=up", None, None, {}, {READ}, 200, 401),
    ("get", "/prometheus/api/v1/labels", None, None, {}, {READ}, 200, 401),
    ("get", "/federate?match[]=cpu", None, None, {}, {READ}, 200, 401),
    ("get", "/alertmanager/api/v2/alerts", None, None, {}, {READ}, 200, 403),
    ("post", "/alertmanager/api/v2/alerts", [], None, {}, {MANAGE}, 200, 403),
    ("get", "/alertmanager/api/v2/silences", None, None, {}, {READ}, 200, 403),
    ("post", "/alertmanager/api/v2/silences", am_silence(), None, {}, {MANAGE}, 200, 403),
    ("delete", "/alertmanager/api/v2/silence/{silence}", None, None, {}, {MANAGE}, 200, 403),
    ("get", "/alertmanager/api/v2/status", None, None, {}, {READ}, 200, 403),
    ("post", "/api/v1/checks", {"kind": "heartbeat", "name": "Weekly"}, None, {}, {MANAGE}, 201,
     403),
    ("get", "/api/v1/checks", None, None, {}, {READ}, 200, 403),
    ("get", "/api/v1/checks/{check}", None, None, {}, {READ}, 200, 403),
    ("get", "/api/v1/checks/{check}/status", None, None, {}, {READ}, 200, 403),
    ("patch", "/api/v1/checks/{check}", {"paused": True}, None, {}, {MANAGE}, 200, 403),
    ("delete", "/api/v1/checks/{check}", None, None, {}, {MANAGE}, 204, 403),
    ("get", "/api/v1/alerting/config", None, None, {}, {READ}, 200, 403),
    ("get", "/api/v1/alerting/rules", None, None, {}, {READ}, 200, 403),
    ("get", "/api/v1/alerting/routes", None, None, {}, {READ}, 200, 403),
    ("post", "/api/v1/alerting/recording-rules", {"record": "up:sum", "expr": "sum(up)"}, None,
     {}, {MANAGE}, 201, 403),
    ("get", "/api/v1/alerting/silences/{silence}", None, None, {}, {READ}, 200, 403),
    ("patch", "/api/v1/alerting/silences/{silence}", {"comment": "longer"}, None, {}, {MANAGE},
     200, 403),
    ("delete", "/api/v1/alerting/silences/{silence}", None, None, {}, {MANAGE}, 204, 403),
    ("put", "/api/v1/alerting/config", "recording_rules: []\n", "application/yaml", {}, {MANAGE},
     200, 403),
]  # fmt: skip


def cells():
    for method, path, body, content_type, headers, allowed, ok, refused in ENDPOINTS:
        for scope in (INGEST, READ, MANAGE, NONE):
            status = ok if scope in allowed else (401 if scope == NONE else refused)
            label = f"{method.upper()} {path} {str(body)[:30]} as {scope}"
            yield pytest.param(method, path, body, content_type, headers, scope, status, id=label)


@pytest.mark.parametrize("method, path, body, content_type, headers, scope, expected", cells())
def test_each_scope_gets_exactly_the_expected_status(
    client, method, path, body, content_type, headers, scope, expected
):
    world = World(client)
    url = path.format(
        instance=world.instance.pk, metric=world.metric_id, alert=world.alert.pk,
        silence=world.silence.pk, check=world.check.pk,
    )  # fmt: skip
    headers = dict(headers)
    if scope != NONE:
        headers["Authorization"] = f"Bearer {IngestToken.issue(scope, [scope])[1]}"
    kwargs = {"headers": headers}
    if body is not None:
        kwargs.update(data=body, content_type=content_type or "application/json")

    response = getattr(client, method)(url, **kwargs)

    assert response.status_code == expected, response.content[:300]


@pytest.fixture
def web_fleet_token(db) -> str:
    """An agent's token bound to the agent ids web-*."""
    return IngestToken.issue("web fleet", [INGEST, READ], agent_patterns=["web-*"])[1]


PUSHES = [
    ("/api/v1/ingest", lambda agent: batch(agent), None, {}),
    ("/api/v1/write", remote_write_body, "application/x-protobuf", REMOTE_WRITE_HEADERS),
    ("/api/v1/metrics", lambda agent: {"instanceId": agent, "metricName": "cpu", "metricValue": 1},
     None, {}),
    ("/api/v1/alerts", lambda agent: {"instanceId": agent, "alertType": "Down"}, None, {}),
    ("/api/v1/instances", lambda agent: {"agentId": agent}, None, {}),
]  # fmt: skip


@pytest.mark.parametrize("path, body_for, content_type, headers", PUSHES)
def test_a_bound_token_pushes_for_its_agent_ids_and_is_refused_for_others(
    client, web_fleet_token, path, body_for, content_type, headers
):
    def push(agent_id):
        return client.post(
            path,
            body_for(agent_id),
            content_type=content_type or "application/json",
            headers={**headers, "Authorization": f"Bearer {web_fleet_token}"},
        )

    refused = push("db-1")
    accepted = push("web-1")

    assert refused.status_code == 403
    assert "db-1" in refused.json()["error"]
    assert accepted.status_code in (200, 201, 202, 204)
    assert list(Instance.objects.values_list("agent_id", flat=True)) == ["web-1"]


def test_a_bound_token_cannot_update_another_agents_instance(client, web_fleet_token):
    other = Instance.register("db-1")

    response = client.put(
        f"/api/v1/instances/{other.pk}",
        {"metadata": {"owned": True}},
        content_type="application/json",
        headers={"Authorization": f"Bearer {web_fleet_token}"},
    )

    assert response.status_code == 403
    other.refresh_from_db()
    assert other.metadata == {}


def test_a_hosts_token_cannot_hide_its_instance_by_setting_its_status(client, token):
    agent_token = IngestToken.issue("web-1 agent")[1]
    instance = Instance.register("web-1")

    response = client.put(
        f"/api/v1/instances/{instance.pk}",
        {"status": "healthy"},
        content_type="application/json",
        headers={"Authorization": f"Bearer {agent_token}"},
    )

    assert response.status_code == 403
    instance.refresh_from_db()
    assert instance.status == Instance.Status.UNKNOWN


def test_api_deletes_and_state_changes_are_audited_with_the_tokens_name(client):
    world = World(client)
    manager = {"Authorization": f"Bearer {IngestToken.issue('ops console', [MANAGE])[1]}"}

    client.put(
        f"/api/v1/instances/{world.instance.pk}",
        {"status": "warning"},
        content_type="application/json",
        headers=manager,
    )
    client.delete(f"/api/v1/alerts/{world.alert.pk}", headers=manager)
    client.delete(f"/alertmanager/api/v2/silence/{world.silence.pk}", headers=manager)
    client.delete(f"/api/v1/instances/{world.instance.pk}", headers=manager)

    events = AuditEvent.objects.filter(actor_label="ops console").order_by("pk")
    assert [event.action for event in events] == [
        "instance.status", "alert.delete", "silence.end", "instance.delete",
    ]  # fmt: skip


def test_an_expired_or_revoked_token_is_refused(client):
    token, plain = IngestToken.issue("old", [READ])
    auth = {"Authorization": f"Bearer {plain}"}
    assert client.get("/api/v1/instances", headers=auth).status_code == 200

    IngestToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())
    # A web process reads a live token again after TOKEN_CACHE_SECONDS.
    time.sleep(TOKEN_CACHE_SECONDS)
    assert client.get("/api/v1/instances", headers=auth).status_code == 401
    IngestToken.objects.filter(pk=token.pk).update(expires_at=None)
    token.revoke()
    assert client.get("/api/v1/instances", headers=auth).status_code == 401


# Operations an agent's ingest scope reaches; every other one takes the API's default (GET
# needs read, anything else manage), so an endpoint added later is covered without listing it.
INGEST_ONLY = {("post", "/api/v1/ingest"), ("post", "/api/v1/write"), ("post", "/api/v1/metrics")}
INGEST_OR_MANAGE = {
    ("post", "/api/v1/instances"), ("put", "/api/v1/instances/{ref}"), ("post", "/api/v1/alerts"),
}  # fmt: skip


def scopes_for(method: str, path: str) -> set[str]:
    if (method, path) in INGEST_ONLY:
        return {INGEST}
    if (method, path) in INGEST_OR_MANAGE:
        return {INGEST, MANAGE}
    return {READ} if method in ("get", "head") else {MANAGE}


def operations(client) -> list[tuple[str, str, dict]]:
    schema = client.get("/api/v1/openapi.json").json()
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


def concrete(path: str, operation: dict) -> str:
    """The path with each parameter filled in with a value of its type (naming nothing)."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            kind = parameter.get("schema", {}).get("type")
            value = "1" if kind == "integer" else "00000000-0000-4000-8000-000000000000"
            path = path.replace(f"{{{parameter['name']}}}", value)
    return path


def test_every_operation_in_the_schema_needs_exactly_its_scope(client):
    tokens = {scope: IngestToken.issue(scope, [scope])[1] for scope in (INGEST, READ, MANAGE)}
    found = {}
    for method, path, operation in operations(client):
        url = concrete(path, operation)
        for scope in (INGEST, READ, MANAGE, NONE):
            headers = {} if scope == NONE else {"Authorization": f"Bearer {tokens[scope]}"}
            content_type = next(iter(operation.get("requestBody", {}).get("content", {})), None)
            body = {
                "data": b"{}",
                # What the operation takes: a wrong type is refused before authentication.
                "content_type": content_type or "application/json",
            }
            if method == "get":
                body = {}
            response = getattr(client, method)(url, headers=headers, **body)
            found[(method, path, scope)] = response.status_code

    expected = {}
    for (method, path, scope), status in found.items():
        if scope == NONE:
            expected[(method, path, scope)] = 401
        elif scope in scopes_for(method, path):
            # Allowed past authentication: whatever the made-up id or empty body earns.
            expected[(method, path, scope)] = status if status not in (401, 403) else "not 401/403"
        else:
            expected[(method, path, scope)] = 403
    assert found == expected
    assert len({(method, path) for method, path, _ in found}) >= 20


@pytest.mark.parametrize(
    "path", ["/prometheus/api/v1/labels", "/federate?match[]=cpu", "/alertmanager/api/v2/alerts"]
)
def test_a_tokens_rate_limit_holds_outside_the_ninja_api_too(client, settings, path):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 2
    auth = {"Authorization": f"Bearer {IngestToken.issue('reader', [READ])[1]}"}

    statuses = [client.get(path, headers=auth).status_code for _ in range(3)]

    assert statuses[:2] == [200, 200]
    assert statuses[2] == 429
    assert client.get(path, headers=auth)["Retry-After"]


def test_refused_api_calls_count_as_api_errors_and_only_refused_pushes_as_ingest_errors(client):
    def counts():
        return [
            metric_value(client, name, reason=reason)
            for name in ("vigil_api_errors_total", "vigil_ingest_errors_total")
            for reason in ("unauthenticated", "forbidden")
        ]

    reader = {"Authorization": f"Bearer {IngestToken.issue('reader', [READ])[1]}"}
    before = counts()

    client.get("/api/v1/instances")  # no token: a read refused
    client.delete("/api/v1/alerts/00000000-0000-4000-8000-000000000000", headers=reader)
    client.post("/api/v1/ingest", batch(), content_type="application/json", headers=reader)

    api_unauthenticated, api_forbidden, ingest_unauthenticated, ingest_forbidden = (
        after - earlier for after, earlier in zip(counts(), before, strict=True)
    )
    assert (api_unauthenticated, api_forbidden) == (1, 2)
    assert (ingest_unauthenticated, ingest_forbidden) == (0, 1)
