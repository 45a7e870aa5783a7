"""Every consequential alert action leaves an AuditEvent: who, what, to which object."""

from datetime import timedelta

import pytest

from accounts.models import AuditEvent
from alerts import lifecycle
from alerts.models import Alert, AlertRule, Silence
from instances.models import Instance


@pytest.fixture
def alert(db):
    instance = Instance.register("web-1", name="Web 1")
    return Alert.objects.create(
        instance=instance, alert_type="high_cpu_usage", severity="critical", message="CPU 97%"
    )


def events(action):
    return list(AuditEvent.objects.filter(action=action))


def test_acknowledge_resolve_and_reopen_are_audited_with_actor_and_note(alert, admin_user):
    lifecycle.acknowledge(alert, admin_user, note="on it")
    lifecycle.resolve(alert, admin_user, note="fixed")
    lifecycle.reopen(alert, token_name="agent token")
    (ack,) = events("alert.acknowledge")
    assert (ack.actor, ack.target_id, ack.details) == (admin_user, str(alert.pk), {"note": "on it"})
    assert events("alert.resolve")[0].details == {"note": "fixed"}
    (reopen,) = events("alert.reopen")
    assert (reopen.actor, reopen.actor_label) == (None, "agent token")


def test_an_automatic_resolution_is_audited_as_vigil_itself(alert):
    lifecycle.resolve(alert)
    (event,) = events("alert.resolve")
    assert (event.actor, event.actor_display) == (None, "system")


def test_rule_changes_in_admin_are_audited(admin_client):
    rule = AlertRule.objects.order_by("pk").first()
    response = admin_client.post(
        f"/admin/alerts/alertrule/{rule.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not AlertRule.objects.filter(pk=rule.pk).exists()
    (event,) = events("alertrule.delete")
    assert (event.target_label, event.actor.username) == (str(rule), "admin")


def test_silence_deletion_in_admin_is_audited(admin_client, alert, admin_user):
    silence = Silence.objects.create(
        comment="maintenance", created_by=admin_user, ends_at=alert.created_at
    )
    admin_client.post(f"/admin/alerts/silence/{silence.pk}/delete/", {"post": "yes"})
    assert [e.target_id for e in events("silence.delete")] == [str(silence.pk)]


def test_silencing_and_unsilencing_an_alert_are_audited_and_mark_it(alert, admin_user):
    silence = lifecycle.silence(alert, admin_user, timedelta(hours=1), "kernel upgrade")
    marked = Alert.objects.get(pk=alert.pk).silenced

    assert lifecycle.unsilence(alert, admin_user) == 1

    (created,) = events("silence.create")
    assert (created.actor, created.target_id) == (admin_user, str(silence.pk))
    assert created.details["alert"] == str(alert.pk)
    (ended,) = events("silence.end")
    assert (ended.actor, ended.target_id, ended.details) == (
        admin_user,
        str(silence.pk),
        {"alert": str(alert.pk)},
    )
    assert marked and alert.silenced is False
    assert not Silence.objects.active().exists()
    assert silence.comment == "kernel upgrade"


def test_ending_silences_in_admin_is_audited(admin_client, alert, admin_user):
    silence = lifecycle.silence(alert, admin_user, timedelta(hours=1), "maintenance")
    admin_client.post(
        "/admin/alerts/silence/",
        {"action": "expire", "_selected_action": [silence.pk], "index": 0},
    )
    assert [e.target_id for e in events("silence.end")] == [str(silence.pk)]
    assert not Silence.objects.active().exists()
