"""Live progress of backup runs, announced on the channel layer for the backups page."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

BACKUPS_GROUP = "backups"


def publish(backup, state: str, **details) -> None:
    """Tell listeners where ``backup`` is: started, running (``bytes``), succeeded, failed or
    skipped. Best effort: a Redis outage never fails a backup."""
    event = {
        "type": "backup.progress",
        "backup_id": backup.pk if backup is not None else None,
        "state": state,
        **details,
    }
    try:
        async_to_sync(get_channel_layer().group_send)(BACKUPS_GROUP, event)
    except Exception as error:
        logger.warning("could not publish backup progress: %s", error)
