"""Check changes announced on the channel layer, for the live checks pages."""

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

CHECKS_GROUP = "checks"


def publish_checks_changed(check_ids: Iterable) -> None:
    """Announce that these checks' state or results changed, once the transaction commits.

    Best effort: a Redis outage must not fail a probe's or a ping's record."""
    event = {"type": "checks.changed", "check_ids": [str(pk) for pk in check_ids]}
    if event["check_ids"]:
        transaction.on_commit(lambda: _send(event))


def _send(event: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(CHECKS_GROUP, event)
    except Exception as error:
        logger.warning("could not publish checks.changed: %s", error)
