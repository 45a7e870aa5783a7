import os
import time

from celery import Celery

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
