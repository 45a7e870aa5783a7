"""Events other parts of Vigil (the live dashboard) subscribe to on the channel layer."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

INSTANCES_GROUP = "instances"


def instance_group(instance_id) -> str:
    return f"instance.{instance_id}"


def publish_instance_updated(instance_id, samples: int) -> None:
    """Tell listeners an instance has new data. Best effort: ingest never fails for Redis."""
    event = {"type": "instance.updated", "instance_id": str(instance_id), "samples": samples}
    try:
        async_to_sync(_send_to_groups)([INSTANCES_GROUP, instance_group(instance_id)], event)
    except Exception as error:
        logger.warning("could not publish instance.updated for %s: %s", instance_id, error)


async def _send_to_groups(groups: list[str], event: dict) -> None:
    # Both sends in one hop to the event loop: ingest calls this once per batch.
    layer = get_channel_layer()
    for group in groups:
        await layer.group_send(group, event)
