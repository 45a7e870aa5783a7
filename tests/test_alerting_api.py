"""Rules, recording rules, inhibition rules, channels, routes and silences one by one over the API:
objects with the keys of their entry in the alerting configuration file, read with the read
scope, made, changed and deleted with the manage scope; refused with a 400 naming each key and
nothing stored; channel secrets never shown; audited under the token's name."""

import pytest

from accounts.models import AuditEvent
from alerts import grouping
from alerts.models import (
    AlertRule,
    InhibitRule,
    NotificationChannel,
    RecordingRule,
    Route,
    Silence,
)
from ingestion.models import IngestToken
from instances.models import Instance

pytestmark = pytest.mark.django_db

Scope = IngestToken.Scope
ROUTING_KEY = "R0UTING-KEY-0123456789abcdef"


@pytest.fixture
def manager(client):
    token = IngestToken.issue("terraform", [Scope.READ, Scope.MANAGE])[1]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def post(client, kind: str, body: dict):
    return client.post(f"/api/v1/alerting/{kind}", body, content_type="application/json")


def patch(client, kind: str, object_id, body: dict):
    return client.patch(
        f"/api/v1/alerting/{kind}/{object_id}", body, content_type="application/json"
    )


def test_a_threshold_rule_is_made_read_changed_and_deleted(manager):
    NotificationChannel.objects.create(name="Ops", kind="webhook", target="https://hook.example/")
    made = post(
        manager,
        "rules",
        {"name": "Load", "metric": "load1", "warning_threshold": 4, "for": "5m",
         "channels": ["Ops"]},
    )  # fmt: skip
    assert made.status_code == 201, made.content
    rule_id = made.json()["id"]

    read = manager.get(f"/api/v1/alerting/rules/{rule_id}").json()
    changed = patch(manager, "rules", rule_id, {"critical_threshold": 8, "window": "5m"})
    deleted = manager.delete(f"/api/v1/alerting/rules/{rule_id}")

    assert read["for"] == "5m" and read["channels"] == ["Ops"] and read["metric"] == "load1"
    assert changed.status_code == 200, changed.content
    assert changed.json()["critical_threshold"] == 8 and changed.json()["for"] == "5m"
    assert deleted.status_code == 204
    assert not AlertRule.objects.filter(name="Load").exists()
    actions = AuditEvent.objects.filter(actor_label="terraform").order_by("pk")
    assert [event.action for event in actions] == ["rule.create", "rule.change", "rule.delete"]


def test_a_promql_rule_a_recording_rule_and_an_inhibition_rule_are_made(manager):
    promql = post(
        manager,
        "rules",
        {"name": "Errors", "expr": "job:errors:ratio > 0.05", "labels": {"severity": "critical"}},
    )
    recording = post(manager, "recording-rules", {"record": "job:errors:ratio", "expr": "up"})
    inhibit = post(
        manager,
        "inhibit-rules",
        {"name": "Crit mutes warn",
         "source_matchers": [{"label": "severity", "op": "=", "value": "critical"}],
         "target_matchers": [{"label": "severity", "op": "=", "value": "warning"}],
         "equal": ["instance"]},
    )  # fmt: skip

    assert [promql.status_code, recording.status_code, inhibit.status_code] == [201, 201, 201]
    assert AlertRule.objects.get(name="Errors").promql_severity == "critical"
    assert RecordingRule.objects.get(record="job:errors:ratio").expr == "up"
    assert InhibitRule.objects.get(name="Crit mutes warn").equal == ["instance"]


def test_bad_fields_are_refused_with_a_400_naming_each_and_nothing_stored(manager):
    response = post(
        manager,
        "rules",
        {"name": "Bad", "expr": "rate(x[5m]", "for": "soon", "thershold": 3},
    )
    taken = post(manager, "rules", {"name": "High CPU usage", "metric": "cpu"})

    assert response.status_code == 400
    fields = sorted(detail["field"] for detail in response.json()["details"])
    assert fields == ["expr", "for", "thershold"]
    assert not AlertRule.objects.filter(name="Bad").exists()
    assert taken.status_code == 400 and taken.json()["details"][0]["field"] == "name"


def test_channel_secrets_are_taken_but_never_shown_and_kept_when_left_out(manager):
    made = post(
        manager,
        "channels",
        {"name": "Pager", "kind": "pagerduty", "secret": ROUTING_KEY},
    )
    channel_id = made.json()["id"]

    changed = patch(manager, "channels", channel_id, {"severities": ["critical", "error"]})
    listed = manager.get("/api/v1/alerting/channels")

    assert made.status_code == 201, made.content
    for response in (made, changed, listed):
        assert ROUTING_KEY not in response.content.decode()
    assert made.json()["secret"] == {"env": "VIGIL_CHANNEL_PAGER_SECRET"}
    channel = NotificationChannel.objects.get(pk=channel_id)
    assert channel.secret == ROUTING_KEY and channel.severities == ["critical", "error"]
    read_back = manager.get(f"/api/v1/alerting/channels/{channel_id}").json()
    sent_back = patch(manager, "channels", channel_id, read_back)
    assert sent_back.status_code == 200, sent_back.content
    assert NotificationChannel.objects.get(pk=channel_id).secret == ROUTING_KEY
    missing = post(manager, "channels", {"name": "Pager 2", "kind": "pagerduty"})
    assert missing.status_code == 400
    assert [detail["field"] for detail in missing.json()["details"]] == ["secret"]


def test_a_silence_is_made_extended_and_deleted(manager):
    Instance.register("web-1")
    made = post(
        manager,
        "silences",
        {"instance": "web-1", "starts_at": "2030-01-01T00:00:00Z",
         "ends_at": "2030-01-01T02:00:00Z", "comment": "move"},
    )  # fmt: skip
    silence_id = made.json()["id"]

    extended = patch(manager, "silences", silence_id, {"ends_at": "2030-01-01T04:00:00Z"})
    backwards = patch(manager, "silences", silence_id, {"ends_at": "2029-01-01T00:00:00Z"})

    assert made.status_code == 201, made.content
    assert extended.json()["ends_at"] == "2030-01-01T04:00:00Z"
    assert backwards.status_code == 400
    assert [detail["field"] for detail in backwards.json()["details"]] == ["ends_at"]
    assert Silence.objects.get(pk=silence_id).ends_at.hour == 4
    assert manager.delete(f"/api/v1/alerting/silences/{silence_id}").status_code == 204
    assert not Silence.objects.exists()


def test_an_unknown_id_answers_404(manager):
    assert manager.get("/api/v1/alerting/rules/999999").status_code == 404
    assert patch(manager, "channels", 999999, {"enabled": False}).status_code == 404


def test_a_route_is_made_below_the_root_changed_and_deleted_and_the_root_stays(manager):
    NotificationChannel.objects.create(name="DB", kind="webhook", target="https://hook.example/")
    root = grouping.root_route()
    made = post(
        manager,
        "routes",
        {"name": "db", "parent": root.name, "matchers": [{"label": "team", "op": "=",
         "value": "db"}], "channels": ["DB"], "group_by": ["alertname"], "group_wait": "30s"},
    )  # fmt: skip
    assert made.status_code == 201, made.content
    route_id = made.json()["id"]
    changed = patch(manager, "routes", route_id, {"repeat_interval": "1h", "continue": True})
    assert changed.status_code == 200, changed.content
    assert changed.json()["repeat_interval"] == "1h" and changed.json()["channels"] == ["DB"]
    route = Route.objects.get(pk=route_id)
    assert (route.parent, route.continue_matching) == (root, True)

    below_itself = patch(manager, "routes", route_id, {"parent": "db"})
    assert below_itself.status_code == 400
    assert below_itself.json()["details"][0]["field"] == "parent"
    second_root = post(manager, "routes", {"name": "another root"})
    assert second_root.status_code == 400
    assert manager.delete(f"/api/v1/alerting/routes/{root.pk}").status_code == 400
    renamed = patch(manager, "routes", root.pk, {"name": "everything"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "everything"
    assert manager.delete(f"/api/v1/alerting/routes/{route_id}").status_code == 204
    assert list(Route.objects.values_list("name", flat=True)) == ["everything"]
