"""Who gets told what about an alert, and in what words; the sending itself is
alerts/tasks.py's deliver.

Firing and repeat notices go to the channels the alert's severity routes to, only while the
alert is unacknowledged and unsilenced. A resolved notice goes to every channel that was told
the alert fired. Each (alert, channel, notice) gets a dispatch id derived from what triggered
it, so a task that runs twice delivers once.
"""

import uuid

from django.utils import timezone

from alerts import links, metrics
from alerts.models import Alert, Notification
from alerts.transports import Delivery, Message, TransportError, transport_for
from instances.formats import iso8601

DISPATCH_NAMESPACE = uuid.UUID("8f5e2c1a-4b7d-4e0f-9a63-0c2d5b1e7a44")


def send_test_now(channel) -> tuple[Notification, str]:
    """Send a test notice to ``channel`` once, now, logged like any attempt; returns the
    attempt and what the receiver answered (for the Channels page to show)."""
    note = Notification.objects.create(
        dispatch=uuid.uuid4(), alert=None, channel=channel, kind=Notification.Kind.TEST
    )
    try:
        delivery = send(channel, message_for(None, Notification.Kind.TEST))
    except TransportError as error:
        note.record_failure(error.message, error.response_code, final=True)
        metrics.count_notification_failure(channel.kind)
        return note, error.answer
    note.record_sent(delivery.response_code)
    return note, delivery.answer


def send(channel, message: Message) -> Delivery:
    """Deliver ``message`` through ``channel``'s transport.

    A failure is raised again with the channel's secrets redacted from its text and without
    the original exception attached, so neither the worker's log (Celery logs what a task
    raises) nor Notification.error ever holds a webhook URL or a token, whichever transport
    put it there."""
    try:
        return transport_for(channel).notify(message)
    except TransportError as error:
        raise TransportError(
            channel.redact(error.message),
            permanent=error.permanent,
            response_code=error.response_code,
            answer=channel.redact(error.answer),
        ) from None


def plan(alert: Alert, kind: str) -> list[tuple[str, int]]:
    """``[(dispatch_id, channel_id), ...]`` for a ``kind`` notice of ``alert`` now."""
    if kind == Notification.Kind.RESOLVED:
        told = Notification.objects.filter(
            alert=alert,
            status=Notification.Status.SENT,
            kind__in=[Notification.Kind.FIRING, Notification.Kind.REPEAT],
        )
        channels = {note.channel for note in told.select_related("channel")}
        trigger = iso8601(alert.resolved_at)
    else:
        if not alert.wants_notification():
            return []
        channels = alert.channels()
        trigger = f"{alert.severity}/{iso8601(alert.last_notified_at)}"
    return [
        (
            str(uuid.uuid5(DISPATCH_NAMESPACE, f"{alert.pk}/{kind}/{channel.pk}/{trigger}")),
            channel.pk,
        )
        for channel in channels
        if channel.enabled
    ]


def message_for(alert: Alert | None, kind: str) -> Message:
    if alert is None:
        return Message(
            kind=kind,
            title="Vigil test notification",
            text="This channel works: Vigil can reach it.",
            severity=Alert.Severity.INFO,
            alert_id="test",
            fingerprint=f"vigil-test-{uuid.uuid4().hex}",
            instance="vigil",
            url=links.alert_url_of_list(),
            timestamp=iso8601(timezone.now()),
        )
    if kind == Notification.Kind.RESOLVED:
        # No severity in the title: "[RESOLVED] [CRITICAL]" read as still breaching.
        title = f"[RESOLVED] {alert.alert_type} on {alert.instance.name}"
        text = alert.recovery_summary()
    else:
        state = "STILL FIRING" if kind == Notification.Kind.REPEAT else "FIRING"
        title = f"[{state}] [{alert.severity.upper()}] {alert.alert_type} on {alert.instance.name}"
        text = alert.message or alert.alert_type
    return Message(
        kind=kind,
        title=title,
        text=text,
        severity=alert.severity,
        alert_id=str(alert.pk),
        fingerprint=alert.fingerprint,
        instance=alert.instance.name,
        url=links.alert_url(alert),
        ack_url=links.acknowledge_url(alert) if kind != "resolved" and alert.is_open else "",
        runbook_url=alert.rule.runbook_url if alert.rule_id else "",
        timestamp=iso8601(alert.resolved_at if kind == "resolved" else alert.fired_at),
    )
