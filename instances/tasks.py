from celery import shared_task

from instances import store


@shared_task(name="instances.ensure_partitions_ahead", ignore_result=True)
def ensure_partitions_ahead() -> list[str]:
    """Create tomorrow's (and the next days') samples partitions before data needs them."""
    return store.ensure_partitions_ahead()
