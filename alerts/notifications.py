"""What a notice says, about one alert or about a group of them; who hears what and when is
alerts/grouping.py's, the sending itself alerts/tasks.py's deliver.
"""

import hashlib
import json
import uuid

from django.utils import timezone

from alerts import links, metrics
from alerts.models import Alert, Notification
from alerts.transports import Delivery, Message, TransportError, transport_for
from instances.formats import iso8601

STATES = {
    Notification.Kind.FIRING: "FIRING",
    Notification.Kind.REPEAT: "STILL FIRING",
    Notification.Kind.RESOLVED: "RESOLVED",
}


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
    ack_url = links.acknowledge_url(alert) if kind != "resolved" and alert.is_open else ""
    if kind == Notification.Kind.RESOLVED:
        # No severity in the title: "[RESOLVED] [CRITICAL]" read as still breaching.
        title = f"[RESOLVED] {alert.alert_type} on {alert.instance.name}"
        text = alert.recovery_summary()
    else:
        severity = alert.severity.upper()
        title = f"[{STATES[kind]}] [{severity}] {alert.alert_type} on {alert.instance.name}"
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
        ack_url=ack_url,
        runbook_url=alert.rule.runbook_url if alert.rule_id else "",
        timestamp=iso8601(alert.resolved_at if kind == "resolved" else alert.fired_at),
        group_labels=alert.match_labels(),
        alerts=(listed(alert, ack_url),),
    )


def listed(alert: Alert, ack_url: str = "") -> dict:
    """An alert as a notice lists it (a firing one with its Acknowledge link)."""
    return {
        "id": str(alert.pk),
        "alert_type": alert.alert_type,
        "severity": alert.severity,
        "instance": alert.instance.name,
        "message": alert.message,
        "state": "firing" if alert.is_open else "resolved",
        "url": links.alert_url(alert),
        "ack_url": ack_url,
    }


def group_message(
    labels: dict,
    kind: str,
    firing: list[Alert],
    resolved: list[Alert],
    route_id: int | None = None,
    incident_key: str = "",
) -> Message:
    """A group's notice: how many of its alerts fire and resolved, and each of them, one a
    line, a firing one with its Acknowledge link. Its fingerprint is the group's, of its route
    and labels (one PagerDuty incident or Opsgenie alert a group: two routes grouping by the
    same labels are two), resolved when none of the group's alerts fire any more. A notice
    queued without its route (before the route was in the key) keeps the key of its labels
    alone, the one its incident was opened with; one of alerts another group told of, given
    ``incident_key``, goes on with that group's incident."""
    rank = Alert.SEVERITY_RANK
    worst = max((alert.severity for alert in firing or resolved), key=rank.__getitem__)
    shared = ", ".join(f"{key}={value}" for key, value in sorted(labels.items())) or "all alerts"
    if firing:
        title = f"[{STATES[kind]}:{len(firing)}] [{worst.upper()}] {shared}"
        if resolved:
            title += f" ({len(resolved)} resolved)"
    else:
        title = f"[RESOLVED:{len(resolved)}] {shared}"
    ack_urls = {alert.pk: links.acknowledge_url(alert) for alert in firing}
    lines = []
    if firing:
        lines.append(f"Firing ({len(firing)}):")
        lines += [
            f"- [{alert.severity.upper()}] {alert.alert_type} on {alert.instance.name}: "
            f"{alert.message or alert.alert_type} {links.alert_url(alert)}\n"
            f"  Acknowledge: {ack_urls[alert.pk]}"
            for alert in firing
        ]
    if resolved:
        lines.append(f"Resolved ({len(resolved)}):")
        lines += [
            f"- {alert.alert_type} on {alert.instance.name}: {alert.recovery_summary()} "
            f"{links.alert_url(alert)}"
            for alert in resolved
        ]
    instances = sorted({alert.instance.name for alert in firing + resolved})
    return Message(
        kind=kind,
        title=title,
        text="\n".join(lines),
        severity=worst,
        alert_id="",
        fingerprint=incident_key or group_incident_key(labels, route_id),
        instance=instances[0] if len(instances) == 1 else f"{len(instances)} instances",
        url=links.alert_url_of_list(),
        timestamp=iso8601(timezone.now()),
        group_labels=dict(labels),
        alerts=tuple(listed(alert, ack_urls.get(alert.pk, "")) for alert in firing + resolved),
    )


def group_incident_key(labels: dict, route_id: int | None = None) -> str:
    """The incident key of a group's notices: of its route and labels, or of its labels alone
    for a group that told before keys named routes."""
    identity = json.dumps(sorted(labels.items()))
    if route_id is not None:
        identity = f"route:{route_id}/{identity}"
    return f"group-{hashlib.sha256(identity.encode()).hexdigest()}"
