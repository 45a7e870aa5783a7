"""Inhibition: an instance that is down mutes its other alerts (the shipped inhibition rule),
which still show, marked, and notify once it is back."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.core import mail
from django.template.loader import render_to_string
from django.utils import timezone

from alerts.evaluation import evaluate_rules
from alerts.models import Alert, AlertRule, InhibitRule, NotificationChannel
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

HOSTS = ["web-1", "web-2", "web-3"]


@pytest.fixture(autouse=True)
def mailbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    AlertRule.objects.all().delete()
    # A transactional test before this one may have flushed what the migrations shipped.
    importlib.import_module("alerts.migrations.0017_inhibition").ship_instance_down_inhibition(
        apps, None
    )
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")


def report(api, agent_id: str) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    body = {
        "instance": {"agent_id": agent_id},
        "samples": [{"name": "up", "value": 1, "ts": now_ms}],
    }
    assert api.post("/api/v1/ingest", body).status_code == 202


def subjects() -> list[str]:
    return sorted(message.subject for message in mail.outbox)


def test_the_shipped_rule_mutes_a_down_instances_alerts_until_it_is_back(api, settings):
    assert InhibitRule.objects.filter(enabled=True).count() == 1
    for host in HOSTS:
        report(api, host)
    silent_since = timezone.now() - timedelta(seconds=3 * settings.AGENT_INTERVAL_SECONDS + 1)
    Instance.objects.filter(agent_id__in=HOSTS).update(last_seen=silent_since)
    evaluate_rules()
    assert subjects() == [f"[FIRING] [CRITICAL] instance_down on {host}" for host in HOSTS]
    mail.outbox.clear()

    for host in HOSTS:
        posted = api.post(
            "/api/v1/alerts", {"instanceId": host, "alertType": "disk_full", "severity": "critical"}
        )
        assert posted.status_code == 201
    evaluate_rules()

    disk = {
        alert.instance.agent_id: alert for alert in Alert.objects.filter(alert_type="disk_full")
    }
    assert all(alert.inhibited for alert in disk.values())
    assert mail.outbox == []
    down = Alert.objects.get(alert_type="instance_down", instance__agent_id="web-1")
    assert f'href="/alerts/{down.pk}/"' in render_to_string(
        "dashboard/partials/alert_item.html", {"alert": disk["web-1"]}
    )

    report(api, "web-1")
    evaluate_rules()

    assert subjects() == [
        "[FIRING] [CRITICAL] disk_full on web-1",
        "[RESOLVED] instance_down on web-1",
    ]
    inhibited = dict(
        Alert.objects.filter(alert_type="disk_full").values_list("instance__agent_id", "inhibited")
    )
    assert inhibited == {"web-1": False, "web-2": True, "web-3": True}


def test_an_alert_matching_source_and_target_does_not_inhibit_itself():
    rule = InhibitRule(
        name="criticals mute warnings",
        source_matchers=[{"label": "severity", "op": "=~", "value": "critical|warning"}],
        target_matchers=[{"label": "severity", "op": "=", "value": "warning"}],
        equal=["instance"],
    )
    web, db = Instance.register("web-1"), Instance.register("db-1")
    warning = Alert(instance=web, alert_type="load", severity="warning")
    critical = Alert(instance=web, alert_type="disk", severity="critical")
    elsewhere = Alert(instance=db, alert_type="load", severity="warning")
    labelled = [(alert, alert.match_labels()) for alert in (warning, critical, elsewhere)]

    assert rule.inhibited(labelled) == {warning.pk}
    assert rule.inhibited([(elsewhere, elsewhere.match_labels())]) == set()
