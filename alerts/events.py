"""Alert changes announced on the channel layer, for the live dashboard."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

ALERTS_GROUP = "alerts"


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


def _send(event: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(ALERTS_GROUP, event)
    except Exception as error:
        logger.warning("could not publish alert.changed for %s: %s", event["alert_id"], error)
