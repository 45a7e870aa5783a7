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
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(INSTANCES_GROUP, event)
        async_to_sync(layer.group_send)(instance_group(instance_id), event)
    except Exception as error:
        logger.warning("could not publish instance.updated for %s: %s", instance_id, error)
