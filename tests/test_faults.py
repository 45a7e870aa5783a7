"""Faults (PRODUCT.md 12) against servers the tests start for themselves: PostgreSQL restarted
during sustained ingest, Redis stopped, a Celery worker killed mid-task."""

import http.client
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest
from celery import Celery

from bench.common import production_env, web_server
from tests.servers import CeleryWorker, PrivatePostgres, PrivateRedis, manage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def postgres():
    server = PrivatePostgres()
    yield server
    server.stop()


@pytest.fixture
def vigil_env(postgres, settings, request):
    """A migrated Vigil database on the private PostgreSQL, and the env of its processes."""
    name = f"vigil_{request.node.name.lower()[:40].replace('[', '_').replace(']', '')}"
    url = postgres.create_database(name)
    env = production_env(DATABASE_URL=url, REDIS_URL=settings.REDIS_URL)
    manage(env, "migrate", "--verbosity", "0")
    token = manage(env, "create_ingest_token", "--name", "faults").strip().splitlines()[-1]
    return env, url, token


def batch(agent: str, first_ms: int) -> bytes:
    samples = [
        {"name": "cpu_usage", "value": float(n % 100), "ts": first_ms + n * 1000}
        for n in range(100)
    ]
    return orjson.dumps({"instance": {"agent_id": agent}, "samples": samples})


def post(url: str, token: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/api/v1/ingest",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def stored_timestamps(database_url: str) -> set[tuple[str, int]]:
    with psycopg.connect(database_url) as db:
        rows = db.execute(
            "SELECT i.agent_id, (extract(epoch FROM x.ts) * 1000)::int8 FROM samples x "
            "JOIN instances_series s ON s.id = x.series_id "
            "JOIN instances_instance i ON i.id = s.instance_id"
        ).fetchall()
    return set(rows)


def test_postgresql_restarted_during_sustained_ingest_answers_503_and_loses_nothing(
    postgres, vigil_env
):
    env, database_url, token = vigil_env
    start_ms = int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000)
    answers: list[tuple[str, int, int, dict]] = []
    stop = threading.Event()

    def client(agent: str) -> None:
        n = 0
        while not stop.is_set():
            first = start_ms + n * 100_000
            try:
                status, headers = post(url, token, batch(agent, first))
            except (OSError, http.client.HTTPException) as error:
                status, headers = f"connection failed: {error}", {}
            answers.append((agent, first, status, headers))
            n += 1

    with web_server(workers=1, env=env) as (url, _):
        threads = [threading.Thread(target=client, args=(f"agent-{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        while len(answers) < 20:
            time.sleep(0.05)
        postgres.restart()
        restarted_at = len(answers)
        deadline = time.monotonic() + 30
        while sum(1 for a in answers[restarted_at:] if a[2] == 202) < 20:
            assert time.monotonic() < deadline, answers[-5:]
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()

    statuses = {status for _, _, status, _ in answers}
    assert statuses <= {202, 503}, [a for a in answers if a[2] not in (202, 503)][:3]
    unavailable = [headers for _, _, status, headers in answers if status == 503]
    assert all("retry-after" in {name.lower() for name in h} for h in unavailable), unavailable[:3]
    stored = stored_timestamps(database_url)
    acknowledged = {
        (agent, first + n * 1000)
        for agent, first, status, _ in answers
        if status == 202
        for n in range(100)
    }
    assert acknowledged <= stored
    assert len(acknowledged) >= 100 * 40


def test_with_redis_stopped_ingest_still_stores_and_readyz_names_redis(vigil_env):
    env, database_url, token = vigil_env
    server = PrivateRedis()
    env = {**env, "REDIS_URL": server.url}
    first = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    try:
        with web_server(workers=1, env=env) as (url, _):
            assert post(url, token, batch("before", first))[0] == 202
            server.stop()

            status, _ = post(url, token, batch("during", first))
            with pytest.raises(urllib.error.HTTPError) as ready:
                urllib.request.urlopen(f"{url}/readyz", timeout=30)

            server.start()
            after, _ = post(url, token, batch("after", first))
    finally:
        server.stop()

    assert status == 202
    assert ready.value.code == 503
    assert "redis" in ready.value.read().decode()
    assert after == 202
    agents = {agent for agent, _ in stored_timestamps(database_url)}
    assert agents == {"before", "during", "after"}


def test_a_worker_killed_mid_refresh_leaves_whole_days_and_the_next_run_finishes(vigil_env):
    """The rollup refresh commits a day at a time with its watermark: a worker SIGKILLed
    mid-run leaves whole days, never a half-written one, and the next run (beat's next tick, or
    the broker handing the late-acknowledged task out again) goes on from the watermark."""
    env, database_url, _ = vigil_env
    broker = PrivateRedis()
    env = {**env, "REDIS_URL": broker.url}
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    manage(env, "shell", "-c", BACKFILL.format(now=now.isoformat(), series=SERIES))
    try:
        worker = CeleryWorker(env, "faults")
        try:
            Celery(broker=broker.url, set_as_current=False).send_task("instances.refresh_rollups")
            deadline = time.monotonic() + 60
            while _watermark(database_url) is None:
                assert time.monotonic() < deadline, worker.log.read_text()[-3000:]
                time.sleep(0.02)
            worker.kill()
        finally:
            worker.stop()
    finally:
        broker.stop()
    half = _watermark(database_url)
    with psycopg.connect(database_url) as db:
        days = db.execute(
            "SELECT date_trunc('day', bucket), count(*) FROM samples_1m GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert half < now - timedelta(days=1)
    assert days and all(count == SERIES * 1440 for _, count in days)
    assert max(day for day, _ in days) + timedelta(days=1) == half

    manage(env, "shell", "-c", "from instances.rollups import refresh_rollups; refresh_rollups()")
    with psycopg.connect(database_url) as db:
        rolled, raw = db.execute(
            "SELECT (SELECT sum(count) FROM samples_1m), (SELECT count(*) FROM samples)"
        ).fetchone()
    assert rolled == raw == SERIES * 1440 * 4


def _watermark(database_url: str):
    with psycopg.connect(database_url) as db:
        row = db.execute("SELECT upto FROM rollup_watermark").fetchone()
    return row[0] if row else None


SERIES = 100
# Four whole days of one sample a minute for SERIES series, written straight to the store.
BACKFILL = """
from datetime import datetime, timedelta
from instances import store
from instances.models import Instance
now = datetime.fromisoformat("{now}")
instance = Instance.register("big")
keys = [store.SeriesKey(f"m{{n}}", {{}}) for n in range({series})]
ids = list(store.resolve_series(instance.pk, keys).values())
for day in range(4, 0, -1):
    start = (now - timedelta(days=day)).replace(hour=0, minute=0)
    store.write_samples([(i, start + timedelta(minutes=m), 1.0) for m in range(1440) for i in ids])
"""
