"""A chat webhook's URL is its credential: when a delivery fails, neither the worker's log nor
the stored delivery error may repeat it."""

import os
import time
import uuid

import pytest
from celery import Celery
from django.db import connection

from alerts.models import Notification, NotificationChannel
from bench.common import database_dsn, database_url
from tests.servers import CeleryWorker, PrivateRedis
from tests.test_notifications import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

WEBHOOK_PATH = "/services/T0001/B0001/SecretWebhookToken0123456789"


@pytest.fixture
def failing_receiver():
    receiver = Receiver()
    receiver.statuses = [500] * 10
    yield receiver
    receiver.close()


@pytest.fixture
def broker():
    redis = PrivateRedis()
    yield redis
    redis.stop()


@pytest.mark.parametrize("kind", ["slack", "google_chat", "webhook"])
def test_a_failed_delivery_keeps_the_webhook_url_out_of_the_worker_log_and_the_stored_error(
    failing_receiver, broker, kind
):
    url = failing_receiver.url(f"{WEBHOOK_PATH}?key=ChatKey0123456789&token=ChatToken0123456789")
    channel = NotificationChannel.objects.create(name="ops", kind=kind, target=url)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(database_dsn(), connection.settings_dict["NAME"]),
        "REDIS_URL": broker.url,
        "NOTIFICATION_MAX_RETRIES": "1",
        "NOTIFICATION_RETRY_BACKOFF_SECONDS": "1",
    }
    worker = CeleryWorker(env, f"secrets-{kind}")
    try:
        Celery(broker=broker.url, set_as_current=False).send_task(
            "alerts.deliver", args=[str(uuid.uuid4()), channel.pk, None, "test"]
        )
        deadline = time.monotonic() + 60
        while "gave up" not in (log := worker.log.read_text()) and "Traceback" not in log:
            assert time.monotonic() < deadline, log[-3000:]
            time.sleep(0.1)
    finally:
        worker.stop()

    log = worker.log.read_text()
    notes = Notification.objects.filter(channel=channel).order_by("pk")
    assert [note.status for note in notes] == ["failed", "gave_up"]
    assert len(failing_receiver.requests) == 2
    assert "answered 500" in log
    for secret in ("SecretWebhookToken", "ChatKey", "ChatToken", "T0001/B0001"):
        assert secret not in log
        assert all(secret not in note.error for note in notes)
    assert notes.last().error == "http://127.0.0.1/[redacted] answered 500"
