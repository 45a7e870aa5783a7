"""Delivering notifications, in Celery: an alert's change reaches its groups
(alerts/grouping.py), whose notices go one attempt per channel at a time, retried with
backoff.

The alert evaluation task is in alerts/evaluation.py: evaluation changes alerts through
alerts/lifecycle.py, which queues these tasks.
"""

import logging
import uuid

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts import digest, grouping, message_templates, metrics, notifications
from alerts.models import Alert, AlertGroup, Notification, NotificationChannel
from alerts.transports import TransportError

logger = logging.getLogger(__name__)

# Alerts per notify_alerts task: a storm of thousands of alerts is a few queued messages.
NOTIFY_BATCH = 500


def dispatch(alert: Alert, kind: str) -> None:
    """Queue ``kind`` notices for ``alert`` once the current transaction commits."""
    alert_id = str(alert.pk)
    transaction.on_commit(lambda: _enqueue(notify_alert, alert_id, kind))


def dispatch_many(alerts: list[Alert], kind: str) -> None:
    """Queue ``kind`` notices for ``alerts`` once the current transaction commits, one task
    per NOTIFY_BATCH alerts."""
    alert_ids = [str(alert.pk) for alert in alerts]
    for start in range(0, len(alert_ids), NOTIFY_BATCH):
        batch = alert_ids[start : start + NOTIFY_BATCH]
        transaction.on_commit(lambda batch=batch: _enqueue(notify_alerts, batch, kind))


def dispatch_notice(
    dispatch_id: str, channel_id: int, alert_id: str | None, kind: str, notice: dict
) -> None:
    """Queue a group's notice to one channel once the current transaction commits."""
    transaction.on_commit(
        lambda: _enqueue(deliver, dispatch_id, channel_id, alert_id, kind, notice)
    )


def dispatch_test(channel: NotificationChannel) -> None:
    """Queue a test notification; its attempts show in the notification log."""
    dispatch_id = str(uuid.uuid4())
    transaction.on_commit(
        lambda: _enqueue(deliver, dispatch_id, channel.pk, None, Notification.Kind.TEST)
    )


def _enqueue(task, *args) -> None:
    try:
        task.delay(*args)
    except Exception:
        # The alert change is committed; a broker outage must not turn it into an error page.
        # Repeats (and the evaluator) notify again later.
        logger.exception("could not queue %s%r", task.name, args)


@shared_task(name="alerts.send_info_digest", ignore_result=True)
def send_info_digest() -> int:
    """Mail the daily digest of info alerts, if there were any."""
    return digest.send_info_digest()


@shared_task(name="alerts.notify_alert", ignore_result=True)
def notify_alert(alert_id: str, kind: str) -> int:
    """The alert fired, worsened or resolved: see notify_alerts."""
    return notify_alerts(alert_ids=[alert_id], kind=kind)


@shared_task(name="alerts.notify_alerts", ignore_result=True)
def notify_alerts(alert_ids: list[str], kind: str) -> int:
    """The alerts fired, worsened or resolved (gone ones are skipped): each reaches its
    groups, and those that may tell of them now do. Returns how many notices were queued."""
    now = timezone.now()
    tree = grouping.RouteTree()
    with transaction.atomic():
        alerts = Alert.objects.select_related("instance", "rule").filter(pk__in=alert_ids)
        groups = grouping.place(list(alerts), kind, now, tree)
    return grouping.flush_groups(groups, now)


@shared_task(
    bind=True,
    name="alerts.deliver",
    ignore_result=True,
    autoretry_for=(TransportError,),
    retry_backoff=settings.NOTIFICATION_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=3600,
    max_retries=settings.NOTIFICATION_MAX_RETRIES,
)
def deliver(
    self,
    dispatch_id: str,
    channel_id: int,
    alert_id: str | None,
    kind: str,
    notice: dict | None = None,
) -> None:
    """One attempt to send one notice to one channel, logged as a Notification row.

    ``notice`` is a group's (its ``group``, ``labels`` and the ``firing`` and ``resolved``
    alert ids; its ``route``, and the ``key`` of another group's incident it goes on with, when
    it has them); ``alert_id`` names the alert when the notice is of that one alert, and is None
    for a test notice. A notice queued before routes existed has ``alert_id`` and no
    ``notice``: it is delivered as the single-alert notice it was. A transient failure raises
    TransportError, and Celery tries again with exponential backoff; a permanent one is logged
    and dropped. A dispatch already delivered is not sent again, and alerts acknowledged,
    silenced or resolved while the notice waited drop out of its firing ones (a notice left
    with no alert is dropped).
    """
    if Notification.objects.filter(dispatch=dispatch_id, status=Notification.Status.SENT).exists():
        return
    channel = NotificationChannel.objects.filter(pk=channel_id).first()
    if channel is None:
        return
    alert = None
    if notice is None and alert_id is not None:
        # Queued before routes existed (no notice): a single-alert notice, kept as it was
        # then, so an upgrade does not drop the notices waiting in the queue.
        alert = Alert.objects.select_related("instance", "rule").filter(pk=alert_id).first()
        if alert is None or (
            kind in (Notification.Kind.FIRING, Notification.Kind.REPEAT)
            and not alert.wants_notification()
        ):
            return
    elif notice is not None:
        firing, resolved = _notice_alerts(notice)
        if alert_id is not None:
            alert = next((each for each in firing + resolved if str(each.pk) == alert_id), None)
            if alert is None:
                return
        elif not firing and not resolved:
            return
        if not firing:
            # Its firing alerts were acknowledged (or silenced) while it waited: what is left
            # to tell is that the others resolved. Sent as firing, it would page (a PagerDuty
            # trigger) for alerts someone already took, where Alertmanager, dropping muted
            # alerts from a notice, sends what remains as resolved.
            kind = Notification.Kind.RESOLVED
    if notice is None or alert is not None:
        message, problem = message_templates.templated(
            channel, alert, notifications.message_for(alert, kind)
        )
    else:
        message, problem = message_templates.templated(
            channel,
            None,
            notifications.group_message(
                notice["labels"], kind, firing, resolved, notice.get("route"), notice.get("key", "")
            ),
        )
    attempt = self.request.retries + 1
    group = AlertGroup.objects.filter(pk=notice["group"]).first() if notice else None
    note = Notification.objects.create(
        dispatch=dispatch_id,
        alert=alert,
        group=group,
        channel=channel,
        kind=kind,
        attempt=attempt,
        incident_key=message.fingerprint,
    )
    if notice is not None and alert is None:
        note.listed_alerts.set(firing + resolved)
    try:
        delivery = notifications.send(channel, message)
    except TransportError as error:
        final = error.permanent or attempt > self.max_retries
        failure = f"{error.message}; {problem}" if problem else error.message
        note.record_failure(failure, error.response_code, final)
        metrics.count_notification_failure(channel.kind)
        if error.permanent:
            return
        raise
    note.record_sent(delivery.response_code, problem)


def _notice_alerts(notice: dict) -> tuple[list[Alert], list[Alert]]:
    """A group notice's firing alerts that still want notification, and its resolved ones."""
    alerts = Alert.objects.select_related("instance", "rule").in_bulk(
        [*notice["firing"], *notice["resolved"]]
    )
    firing = [
        alerts[uuid.UUID(pk)]
        for pk in notice["firing"]
        if uuid.UUID(pk) in alerts and alerts[uuid.UUID(pk)].wants_notification()
    ]
    resolved = [alerts[uuid.UUID(pk)] for pk in notice["resolved"] if uuid.UUID(pk) in alerts]
    return firing, resolved
