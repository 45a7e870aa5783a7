import os
import time

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("vigil")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

HEARTBEAT_KEY = "celery:heartbeat"


@app.task(name="vigil.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Proves to /readyz that a worker is taking tasks off the queue."""
    from django.core.cache import cache

    cache.set(HEARTBEAT_KEY, time.time(), timeout=None)


@worker_ready.connect
def first_heartbeat(**kwargs) -> None:
    """A worker that has just started beats at once: beat's first heartbeat comes only after
    its interval, and /readyz would call the new worker missing until then."""
    heartbeat()
