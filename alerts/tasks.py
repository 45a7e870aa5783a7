"""Delivering notifications, in Celery: which channels hear of an alert's change, and one
attempt per channel at a time, retried with backoff.

The alert evaluation task is in alerts/evaluation.py: evaluation changes alerts through
alerts/lifecycle.py, which queues these tasks.
"""

import logging
import uuid

from celery import shared_task
from django.conf import settings
from django.db import transaction

from alerts import digest, message_templates, metrics, notifications
from alerts.models import Alert, Notification, NotificationChannel
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
    """Queue one delivery per channel that should hear of ``kind`` for the alert."""
    return notify_alerts(alert_ids=[alert_id], kind=kind)


@shared_task(name="alerts.notify_alerts", ignore_result=True)
def notify_alerts(alert_ids: list[str], kind: str) -> int:
    """Queue one delivery per channel that should hear of ``kind`` for each of the alerts
    (gone ones are skipped); returns how many."""
    planned = 0
    for alert in Alert.objects.select_related("instance", "rule").filter(pk__in=alert_ids):
        for dispatch_id, channel_id in notifications.plan(alert, kind):
            deliver.delay(dispatch_id, channel_id, str(alert.pk), kind)
            planned += 1
    return planned


@shared_task(
    bind=True,
    name="alerts.deliver",
    ignore_result=True,
    autoretry_for=(TransportError,),
    retry_backoff=settings.NOTIFICATION_RETRY_BACKOFF_SECONDS,
    retry_backoff_max=3600,
    max_retries=settings.NOTIFICATION_MAX_RETRIES,
)
def deliver(self, dispatch_id: str, channel_id: int, alert_id: str | None, kind: str) -> None:
    """One attempt to send one notice to one channel, logged as a Notification row.

    A transient failure raises TransportError, and Celery tries again with exponential
    backoff; a permanent one is logged and dropped. A dispatch already delivered is not sent
    again, and a firing or repeat notice is dropped if the alert was acknowledged, silenced
    or resolved while it waited.
    """
    if Notification.objects.filter(dispatch=dispatch_id, status=Notification.Status.SENT).exists():
        return
    channel = NotificationChannel.objects.filter(pk=channel_id).first()
    alert = None
    if alert_id is not None:
        alert = Alert.objects.select_related("instance", "rule").filter(pk=alert_id).first()
        if alert is None:
            return
    if channel is None or (
        kind in (Notification.Kind.FIRING, Notification.Kind.REPEAT)
        and not alert.wants_notification()
    ):
        return
    attempt = self.request.retries + 1
    note = Notification.objects.create(
        dispatch=dispatch_id, alert=alert, channel=channel, kind=kind, attempt=attempt
    )
    message, problem = message_templates.templated(
        channel, alert, notifications.message_for(alert, kind)
    )
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
