"""Scale-out (PRODUCT.md 3): two web processes and two Celery workers on one PostgreSQL and
Redis. A sample ingested through web process A reaches a websocket held by web process B, and
rule evaluation asked of both workers at once opens one alert and sends one notification."""

import asyncio
import time
import urllib.request
from datetime import UTC, datetime

import orjson
import psycopg
import pytest
from celery import Celery
from websockets.asyncio.client import connect

from bench.common import production_env, web_server
from tests.servers import CeleryWorker, PrivatePostgres, PrivateRedis, manage
from tests.test_notifications import Receiver

SETUP = """
from datetime import timedelta
from alerts.models import AlertRule, NotificationChannel
from bench.fanout import viewer_session_cookie
from ingestion.models import IngestToken
channel = NotificationChannel.objects.create(name="hook", kind="webhook", target="{hook}")
rule = AlertRule.objects.create(
    name="CPU hot", metric="cpu_usage", aggregation="last", critical_threshold=90,
    for_duration=timedelta(0),
)
rule.channels.add(channel)
print(viewer_session_cookie())
print(IngestToken.issue("scale-out")[1])
"""


@pytest.fixture
def cluster():
    """One PostgreSQL and one Redis of the test's own; the env of Vigil's processes on them."""
    postgres, redis = PrivatePostgres(), PrivateRedis()
    receiver = Receiver()
    env = production_env(DATABASE_URL=postgres.create_database(), REDIS_URL=redis.url)
    manage(env, "migrate", "--verbosity", "0")
    cookie, token = manage(env, "shell", "-c", SETUP.replace("{hook}", receiver.url())).split()[-2:]
    yield env, postgres, redis, receiver, cookie, token
    receiver.close()
    redis.stop()
    postgres.stop()


def ingest(url: str, token: str, value: float) -> str:
    ts = int(datetime.now(UTC).timestamp() * 1000)
    body = orjson.dumps(
        {
            "instance": {"agent_id": "web-1"},
            "samples": [{"name": "cpu_usage", "value": value, "ts": ts}],
        }
    )
    request = urllib.request.Request(
        f"{url}/api/v1/ingest",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202
        return orjson.loads(response.read())["instance_id"]


async def fragment_on_b(url_a: str, url_b: str, token: str, cookie: str) -> str:
    instance_id = await asyncio.to_thread(ingest, url_a, token, 10.0)
    socket_url = url_b.replace("http://", "ws://") + f"/ws/instances/{instance_id}/"
    async with connect(socket_url, origin=url_b, additional_headers={"Cookie": cookie}) as socket:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(ingest, url_a, token, 42.5)
        # The first batch's update may come first: it is sent a moment after the batch.
        async with asyncio.timeout(15):
            while "42.5" not in (html := await socket.recv()):
                pass
        return html


def test_a_sample_ingested_by_one_web_process_reaches_a_socket_held_by_another(cluster):
    env, _, _, _, cookie, token = cluster
    with web_server(workers=1, env=env) as (url_a, _), web_server(workers=1, env=env) as (url_b, _):
        html = asyncio.run(fragment_on_b(url_a, url_b, token, cookie))

    assert "42.5" in html


def test_two_workers_asked_to_evaluate_at_once_open_one_alert_and_send_one_notice(cluster):
    env, postgres, redis, receiver, cookie, token = cluster
    # Each task run's "succeeded" line (counted below) is routine: logged with LOG_LEVEL=DEBUG.
    workers = [CeleryWorker({**env, "LOG_LEVEL": "DEBUG"}, f"worker{n}") for n in range(2)]
    try:
        with web_server(workers=1, env=env) as (url, _):
            ingest(url, token, 97.0)
        broker = Celery(broker=redis.url, set_as_current=False)
        for _ in range(4):
            broker.send_task("alerts.evaluate_rules")
        deadline = time.monotonic() + 90
        while finished_runs(workers) < 4 or not receiver.requests:
            assert time.monotonic() < deadline, workers[0].log.read_text()[-3000:]
            time.sleep(0.05)
        # A duplicate notice would be queued by now; give it the time to be sent.
        time.sleep(1)
    finally:
        for worker in workers:
            worker.stop()

    with psycopg.connect(env["DATABASE_URL"]) as db:
        alerts = db.execute("SELECT alert_type, severity FROM alerts_alert").fetchall()
        notices = db.execute(
            "SELECT count(*) FROM alerts_notification WHERE status = 'sent'"
        ).fetchone()[0]
    assert alerts == [("CPU hot", "critical")]
    assert notices == 1
    assert len(receiver.delivered) == 1
    assert all(finished_runs([worker]) for worker in workers), "both workers took runs"


def finished_runs(workers: list[CeleryWorker]) -> int:
    return sum(
        line.count("succeeded")
        for worker in workers
        for line in worker.log.read_text().splitlines()
        if "alerts.evaluate_rules[" in line
    )
