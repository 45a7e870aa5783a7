"""The daily digest of info alerts: one mail per e-mail channel that takes it, listing the info
alerts open in the past day, and nothing at all on a day without any."""

import re
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import Role
from alerts import tasks
from alerts.models import Alert, Notification, NotificationChannel
from instances.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def links_base(settings):
    settings.VIGIL_BASE_URL = "https://vigil.example.com"


def info_alert(alert_type: str, opened_hours_ago: float, resolved_hours_ago=None, **fields):
    now = timezone.now()
    instance = Instance.register("web-1", name="web-1")
    return Alert.objects.create(
        instance=instance,
        alert_type=alert_type,
        severity=fields.pop("severity", Alert.Severity.INFO),
        message=fields.pop("message", f"{alert_type} happened"),
        fingerprint=alert_type.ljust(64, "0"),
        created_at=now - timedelta(hours=opened_hours_ago),
        fired_at=now - timedelta(hours=opened_hours_ago),
        resolved_at=None
        if resolved_hours_ago is None
        else now - timedelta(hours=resolved_hours_ago),
        status=Alert.Status.ACTIVE if resolved_hours_ago is None else Alert.Status.RESOLVED,
        **fields,
    )


def test_a_day_without_info_alerts_sends_nothing():
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")
    info_alert("disk_full", 3, severity=Alert.Severity.WARNING)
    info_alert("old_news", 72, resolved_hours_ago=50)

    tasks.send_info_digest.delay()

    assert mail.outbox == []
    assert not Notification.objects.exists()


def test_the_digest_lists_the_days_info_alerts_to_each_email_channel_that_takes_it():
    ops = NotificationChannel.objects.create(
        name="ops", kind="email", target="ops@example.com, lead@example.com"
    )
    NotificationChannel.objects.create(
        name="quiet", kind="email", target="quiet@example.com", config={"info_digest": False}
    )
    NotificationChannel.objects.create(name="hook", kind="webhook", target="https://x.example/")
    still_open = info_alert("backup_slow", 30)
    today = info_alert("cert_renewed", 5, resolved_hours_ago=4)
    info_alert("old_news", 72, resolved_hours_ago=50)
    info_alert("cpu_hot", 2, severity=Alert.Severity.CRITICAL)

    tasks.send_info_digest.delay()

    (message,) = mail.outbox
    assert message.to == ["ops@example.com", "lead@example.com"]
    assert message.subject == "Vigil daily digest: 2 info alerts"
    assert "[open] backup_slow on web-1" in message.body
    assert "[resolved] cert_renewed on web-1" in message.body
    assert f"https://vigil.example.com/alerts/{still_open.pk}/" in message.body
    assert f"https://vigil.example.com/alerts/{today.pk}/" in message.body
    assert "old_news" not in message.body and "cpu_hot" not in message.body
    note = Notification.objects.get()
    assert (note.channel, note.kind, note.status, note.alert) == (ops, "digest", "sent", None)


def test_agent_words_with_line_breaks_stay_inside_their_lines():
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")
    info_alert("note\nBcc: x@evil.example", 1, message="line one\r\nline two")

    tasks.send_info_digest.delay()

    (message,) = mail.outbox
    assert message.recipients() == ["ops@example.com"]
    assert "- [open] note Bcc: x@evil.example on web-1\n  line one line two\n" in message.body


def test_beat_runs_the_digest_once_a_day_at_the_configured_hour():
    entry = settings.CELERY_BEAT_SCHEDULE["info-digest"]
    assert entry["task"] == tasks.send_info_digest.name
    assert entry["schedule"] == crontab(minute=0, hour=settings.INFO_DIGEST_HOUR)


def test_the_email_channel_form_sets_whether_it_takes_the_digest(user_with_role):
    client = Client()
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    create = reverse("dashboard:channel_create", args=["email"])
    page = client.get(create).text
    assert "Daily digest of info alerts" in page
    assert re.search(r'<input[^>]*name="info_digest"[^>]*checked', page)

    client.post(create, {"name": "ops", "target": "ops@example.com", "severities": ["critical"]})

    channel = NotificationChannel.objects.get()
    assert channel.config == {"info_digest": False} and not channel.takes_info_digest
