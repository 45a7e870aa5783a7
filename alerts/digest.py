"""The info digest (PRODUCT.md 7: info → digest): once a day, one e-mail per e-mail channel that
takes it, listing the info alerts open at some time in the past day; nothing when there are none.

Each mail is logged as a Notification of kind "digest" on its channel.
"""

import smtplib
import uuid
from datetime import datetime, timedelta

from django.core.mail import send_mail
from django.db.models import Q
from django.utils import timezone

from alerts import links, metrics
from alerts.models import Alert, Notification, NotificationChannel
from alerts.transports import one_line
from instances.formats import iso8601

PERIOD = timedelta(days=1)


def digest_alerts(now: datetime) -> list[Alert]:
    """Info alerts open at some time in the day before ``now``, oldest first."""
    since = now - PERIOD
    return list(
        Alert.objects.filter(severity=Alert.Severity.INFO, created_at__lte=now)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=since))
        .select_related("instance")
        .order_by("created_at")
    )


def digest_channels() -> list[NotificationChannel]:
    return [
        channel
        for channel in NotificationChannel.objects.filter(
            enabled=True, kind=NotificationChannel.Kind.EMAIL
        )
        if channel.takes_info_digest
    ]


def digest_text(alerts: list[Alert], now: datetime) -> str:
    lines = [f"Info alerts open in the day up to {iso8601(now)}:", ""]
    for alert in alerts:
        state = "resolved" if alert.resolved_at else "open"
        lines.append(f"- [{state}] {one_line(alert.alert_type)} on {one_line(alert.instance.name)}")
        if alert.message:
            lines.append(f"  {one_line(alert.message)}")
        lines.append(f"  {links.alert_url(alert)}")
    lines += ["", f"All alerts: {links.alert_url_of_list()}"]
    return "\n".join(lines)


def send_info_digest(now: datetime | None = None) -> int:
    """Mail the digest to every e-mail channel that takes it; returns how many mails went.
    Sends nothing when no info alert was open in the past day."""
    now = now or timezone.now()
    alerts = digest_alerts(now)
    if not alerts:
        return 0
    count = len(alerts)
    subject = f"Vigil daily digest: {count} info alert{'' if count == 1 else 's'}"
    body = digest_text(alerts, now)
    sent = 0
    for channel in digest_channels():
        note = Notification.objects.create(
            dispatch=uuid.uuid4(), alert=None, channel=channel, kind=Notification.Kind.DIGEST
        )
        try:
            send_mail(
                subject=subject,
                message=body,
                from_email=None,
                recipient_list=channel.email_addresses,
            )
        except (smtplib.SMTPException, OSError) as error:
            note.record_failure(f"mail server: {error}", None, final=True)
            metrics.count_notification_failure(channel.kind)
            continue
        note.record_sent(None)
        sent += 1
    return sent
