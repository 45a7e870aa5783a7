"""Alert changes announced on the channel layer, for the live dashboard."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

ALERTS_GROUP = "alerts"
# Instances named by one alerts.changed event: a storm of alerts is a few events, each small.
INSTANCES_PER_EVENT = 1000


def publish_alert_changed(alert) -> None:
    """Announce ``alert``'s change once the transaction commits (never a rolled-back one).

    Best effort: a Redis outage must not undo or fail the change itself.
    """
    event = {
        "type": "alert.changed",
        "alert_id": str(alert.pk),
        "instance_id": str(alert.instance_id),
        "status": alert.status,
    }
    transaction.on_commit(lambda: _send(event))


def publish_alerts_changed(alerts: list) -> None:
    """Announce many alerts' changes at once, after commit: which instances they are on, in
    events of at most INSTANCES_PER_EVENT instances (pages redraw from the database)."""
    instance_ids = sorted({str(alert.instance_id) for alert in alerts})
    for start in range(0, len(instance_ids), INSTANCES_PER_EVENT):
        event = {
            "type": "alerts.changed",
            "instance_ids": instance_ids[start : start + INSTANCES_PER_EVENT],
        }
        transaction.on_commit(lambda event=event: _send(event))


def _send(event: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(ALERTS_GROUP, event)
    except Exception as error:
        logger.warning("could not publish %s: %s", event["type"], error)
