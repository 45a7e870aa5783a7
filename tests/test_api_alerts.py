import uuid

import pytest
from django.core import mail

from alerts import lifecycle
from alerts.evaluation import evaluate_rules
from alerts.models import Alert, NotificationChannel
from instances.models import Instance

# The seed's own example payloads (seeds/003_356d755bdfa6e593.txt), verbatim.
SEED_ALERT = {
    "instanceId": "vultr-server-123",
    "alertType": "high_cpu_usage",
    "severity": "high",
    "message": "CPU usage is at 85%",
}
SEED_ACKNOWLEDGE = {"status": "acknowledged"}
ALERT_FIELDS = {
    "id",
    "instanceId",
    "alertType",
    "severity",
    "message",
    "status",
    "createdAt",
    "acknowledgedAt",
    "resolvedAt",
    "note",
    "occurrences",
    "lastSeenAt",
}


def raise_alert(api, **fields):
    response = api.post("/api/v1/alerts", {**SEED_ALERT, **fields})
    assert response.status_code == 201, response.content
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_the_seed_alert_registers_its_instance_and_answers_201(api):
    response = api.post("/api/v1/alerts", SEED_ALERT)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == ALERT_FIELDS
    instance = Instance.objects.get(agent_id="vultr-server-123")
    alert = Alert.objects.get()
    assert body == {
        "id": str(alert.pk),
        "instanceId": str(instance.pk),
        "alertType": "high_cpu_usage",
        "severity": "error",
        "message": "CPU usage is at 85%",
        "status": "active",
        "createdAt": body["createdAt"],
        "acknowledgedAt": None,
        "resolvedAt": None,
        "note": "",
        "occurrences": 1,
        "lastSeenAt": body["createdAt"],
    }
    assert body["createdAt"].endswith("Z")
    assert alert.source == Alert.Source.API


@pytest.mark.django_db(transaction=True)
def test_an_alert_may_name_its_instance_by_uuid(api):
    instance = Instance.register("web-1")
    assert raise_alert(api, instanceId=str(instance.pk))["instanceId"] == str(instance.pk)
    assert Instance.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "given, stored",
    [
        ("low", "info"),
        ("medium", "warning"),
        ("high", "error"),
        ("HIGH", "error"),
        ("info", "info"),
        ("warning", "warning"),
        ("error", "error"),
        ("critical", "critical"),
    ],
)
def test_seed_and_vigil_severities_are_accepted(api, given, stored):
    assert raise_alert(api, severity=given)["severity"] == stored


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "body, fields",
    [
        ({**SEED_ALERT, "severity": "urgent"}, {"severity"}),
        ({**SEED_ALERT, "instanceId": ""}, {"instanceId"}),
        ({**SEED_ALERT, "instanceId": "   "}, {"instanceId"}),
        ({**SEED_ALERT, "alertType": None}, {"alertType"}),
        ({"severity": "high"}, {"instanceId", "alertType"}),
        ({**SEED_ALERT, "message": ["x"]}, {"message"}),
    ],
)
def test_a_bad_alert_is_400_with_details_and_stores_nothing(api, body, fields):
    response = api.post("/api/v1/alerts", body)
    assert response.status_code == 400
    assert {detail["field"] for detail in response.json()["details"]} == fields
    assert not Alert.objects.exists()
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_seed_acknowledgement_records_when_and_which_token(api):
    alert = raise_alert(api)
    response = api.put(f"/api/v1/alerts/{alert['id']}", SEED_ACKNOWLEDGE)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledgedAt"].endswith("Z")
    stored = Alert.objects.get()
    assert stored.status == Alert.Status.ACKNOWLEDGED
    assert stored.acted_by_token == "test agent"
    assert stored.acknowledged_by is None


@pytest.mark.django_db(transaction=True)
def test_an_alert_is_resolved_with_a_note_and_can_be_reopened(api):
    alert = raise_alert(api)
    path = f"/api/v1/alerts/{alert['id']}"
    api.put(path, SEED_ACKNOWLEDGE)
    resolved = api.put(path, {"status": "resolved", "note": "rebooted"}).json()
    assert (resolved["status"], resolved["note"]) == ("resolved", "rebooted")
    assert resolved["resolvedAt"] and resolved["acknowledgedAt"]
    reopened = api.put(path, {"status": "active"}).json()
    assert reopened["status"] == "active"
    assert reopened["acknowledgedAt"] is None and reopened["resolvedAt"] is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("body", [{"status": "closed"}, {}, {"status": "resolved", "note": 5}])
def test_a_bad_update_is_400_and_changes_nothing(api, body):
    alert = raise_alert(api)
    response = api.put(f"/api/v1/alerts/{alert['id']}", body)
    assert response.status_code == 400
    assert response.json()["details"]
    assert Alert.objects.get().status == Alert.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_the_list_is_newest_first_and_filters_by_status_instance_and_limit(api):
    first = raise_alert(api, alertType="a")
    second = raise_alert(api, alertType="b", instanceId="db-1")
    third = raise_alert(api, alertType="c")
    api.put(f"/api/v1/alerts/{first['id']}", {"status": "resolved"})
    db = Instance.objects.get(agent_id="db-1")

    def types(**params):
        body = api.get("/api/v1/alerts", params).json()
        assert body["count"] == len(body["items"])
        return [item["alertType"] for item in body["items"]]

    assert types() == ["c", "b", "a"]
    assert types(status="active") == ["c", "b"]
    assert types(status="resolved") == ["a"]
    assert types(instanceId="vultr-server-123") == ["c", "a"]
    assert types(instanceId=str(db.pk)) == ["b"]
    assert types(instanceId="nobody") == []
    assert types(limit=1) == ["c"]
    assert {second["id"], third["id"]} <= {
        a["id"] for a in api.get("/api/v1/alerts").json()["items"]
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("params", [{"status": "open"}, {"limit": 0}, {"limit": 5000}])
def test_a_bad_list_filter_is_400(api, params):
    assert api.get("/api/v1/alerts", params).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_deleting_an_alert_answers_204_and_keeps_the_instance(api):
    alert = raise_alert(api)
    response = api.delete(f"/api/v1/alerts/{alert['id']}")
    assert response.status_code == 204
    assert not Alert.objects.exists()
    assert Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("alert_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_an_unknown_alert_is_404(api, alert_id):
    for response in (
        api.put(f"/api/v1/alerts/{alert_id}", SEED_ACKNOWLEDGE),
        api.delete(f"/api/v1/alerts/{alert_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_alerts_of_one_problem_share_a_fingerprint(api):
    first = raise_alert(api)
    lifecycle.resolve(Alert.objects.get(pk=first["id"]))
    raise_alert(api)
    raise_alert(api, alertType="disk_full")
    raise_alert(api, severity="critical")
    fingerprints = list(Alert.objects.order_by("created_at").values_list("fingerprint", flat=True))
    assert fingerprints[0] == fingerprints[1]
    assert len(set(fingerprints[1:])) == 3
    assert len(fingerprints[0]) == 64


@pytest.mark.django_db(transaction=True)
def test_an_agent_posting_the_same_alert_ten_times_makes_one_episode_and_one_notification(
    api, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")

    answers = [
        api.post("/api/v1/alerts", {**SEED_ALERT, "message": f"CPU at {85 + n}%"})
        for n in range(10)
    ]
    evaluate_rules()  # repeats and first notices go out here too

    assert [answer.status_code for answer in answers] == [201] + [200] * 9
    assert len({answer.json()["id"] for answer in answers}) == 1
    alert = Alert.objects.get()
    assert (alert.occurrences, alert.message, alert.status) == (10, "CPU at 94%", "active")
    assert answers[-1].json()["occurrences"] == 10
    assert alert.last_seen_at > alert.created_at
    assert [message.subject for message in mail.outbox] == [
        "[FIRING] [ERROR] high_cpu_usage on vultr-server-123"
    ]


@pytest.mark.django_db(transaction=True)
def test_the_agent_reporting_it_resolved_resolves_the_open_episode_and_a_new_report_opens_another(
    api, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")
    raised = raise_alert(api)

    resolved = api.post("/api/v1/alerts", {**SEED_ALERT, "status": "resolved"})
    again = api.post("/api/v1/alerts", {**SEED_ALERT, "status": "resolved"})
    reopened = api.post("/api/v1/alerts", SEED_ALERT)

    assert (resolved.status_code, resolved.json()["id"]) == (200, raised["id"])
    assert (resolved.json()["status"], resolved.json()["note"]) == (
        "resolved",
        "The agent reported it resolved.",
    )
    assert again.status_code == 404
    assert reopened.status_code == 201 and reopened.json()["id"] != raised["id"]
    assert [message.subject.split("]")[0] for message in mail.outbox] == [
        "[FIRING",
        "[RESOLVED",
        "[FIRING",
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/alerts"),
        ("POST", "/api/v1/alerts"),
        ("PUT", f"/api/v1/alerts/{uuid.uuid4()}"),
        ("DELETE", f"/api/v1/alerts/{uuid.uuid4()}"),
    ],
)
def test_requests_without_a_token_are_401(client, method, path):
    response = client.generic(method, path, "{}", content_type="application/json")
    assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_read_only_token_lists_alerts_but_cannot_change_them(api, client, read_token):
    alert = raise_alert(api)
    reader = {"Authorization": f"Bearer {read_token}"}
    json = "application/json"
    path = f"/api/v1/alerts/{alert['id']}"
    assert client.get("/api/v1/alerts", headers=reader).json()["count"] == 1
    writes = [
        client.post("/api/v1/alerts", SEED_ALERT, content_type=json, headers=reader),
        client.put(path, SEED_ACKNOWLEDGE, content_type=json, headers=reader),
        client.delete(path, headers=reader),
    ]
    assert [response.status_code for response in writes] == [403, 403, 403]
    assert Alert.objects.get().status == Alert.Status.ACTIVE
