from celery import shared_task

from instances import store
from instances.models import Instance


@shared_task(name="instances.ensure_partitions_ahead", ignore_result=True)
def ensure_partitions_ahead() -> list[str]:
    """Create tomorrow's (and the next days') samples partitions before data needs them."""
    return store.ensure_partitions_ahead()


@shared_task(name="instances.mark_silent_instances", ignore_result=True)
def mark_silent_instances() -> int:
    """Flag instances that stopped reporting as `unknown`."""
    return Instance.mark_silent()
