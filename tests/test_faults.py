"""Faults (PRODUCT.md 12), most against servers the tests start for themselves: PostgreSQL
stopped and started again during sustained ingest, a writing session cut mid-COPY on each write
path, Redis stopped, a Celery worker killed mid-task."""

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
import psycopg
import pytest
from celery import Celery

from bench.common import database_dsn, production_env, web_server
from ingestion.models import TOKEN_CACHE_SECONDS
from instances.formats import EPOCH
from tests.servers import CeleryWorker, PrivatePostgres, PrivateRedis, manage
from tests.test_remote_write import HEADERS as REMOTE_WRITE_HEADERS
from tests.test_remote_write import snappy, write_request

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


def post(
    url: str, token: str, body: bytes, path: str = "/api/v1/ingest", headers: dict | None = None
) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}{path}",
        body,
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})},
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


def retry_after_given(headers: dict) -> bool:
    return "retry-after" in {name.lower() for name in headers}


# How long each outage keeps PostgreSQL down.
OUTAGE_SECONDS = 3


def test_postgresql_down_twice_under_sustained_ingest_answers_503_and_loses_nothing(
    postgres, vigil_env
):
    env, database_url, token = vigil_env
    start_ms = int((datetime.now(UTC) - timedelta(hours=2)).timestamp() * 1000)
    answers: list[tuple[str, int, int | str, dict]] = []
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

    def accepted_since(count: int, at_least: int = 20) -> None:
        """Wait until ``at_least`` more batches are accepted after the first ``count`` answers."""
        deadline = time.monotonic() + 60
        while sum(1 for answer in answers[count:] if answer[2] == 202) < at_least:
            assert time.monotonic() < deadline, answers[-5:]
            time.sleep(0.05)

    with web_server(workers=1, env=env) as (url, _):
        threads = [threading.Thread(target=client, args=(f"agent-{n}",)) for n in range(4)]
        for thread in threads:
            thread.start()
        try:
            for _ in range(2):
                accepted_since(len(answers))
                postgres.shut_down()
                time.sleep(OUTAGE_SECONDS)  # the outage itself: nothing to wait for
                postgres.start()
            accepted_since(len(answers))
        finally:
            stop.set()
            for thread in threads:
                thread.join()

    statuses = Counter(status for _, _, status, _ in answers)
    assert set(statuses) <= {202, 503}, statuses
    unavailable = [headers for _, _, status, headers in answers if status == 503]
    assert all(retry_after_given(headers) for headers in unavailable), unavailable[:3]
    stored = stored_timestamps(database_url)
    acknowledged = {
        (agent, first + n * 1000)
        for agent, first, status, _ in answers
        if status == 202
        for n in range(100)
    }
    assert acknowledged <= stored
    assert len(acknowledged) >= 100 * 60
    print(f"answers: {dict(statuses)}; acknowledged samples, all stored: {len(acknowledged)}")


class Write(NamedTuple):
    """One request to a write path: where, its body and its headers."""

    path: str
    body: bytes
    headers: dict


def cpu_write(path: str, agent: str, stamps_ms: list[int]) -> Write:
    """A write of cpu_usage samples of ``agent`` at ``stamps_ms`` through ``path``."""
    if path == "native":
        samples = [{"name": "cpu_usage", "value": 1.0, "ts": ts} for ts in stamps_ms]
        return Write(
            "/api/v1/ingest",
            orjson.dumps({"instance": {"agent_id": agent}, "samples": samples}),
            {},
        )
    if path == "seed REST":
        metrics = [
            {"instanceId": agent, "metricName": "cpu_usage", "metricValue": 1.0, "timestamp": ts}
            for ts in stamps_ms
        ]
        return Write("/api/v1/metrics", orjson.dumps(metrics), {})
    request = write_request(
        ({"__name__": "cpu_usage", "instance": agent}, [(1.0, ts) for ts in stamps_ms])
    )
    headers = {**REMOTE_WRITE_HEADERS, "Content-Type": "application/x-protobuf"}
    return Write("/api/v1/write", snappy(request.SerializeToString()), headers)


def send(url: str, token: str, write: Write) -> tuple[int, dict]:
    return post(url, token, write.body, write.path, write.headers)


@pytest.mark.parametrize("phase", ["COPY", "staging fallback"])
@pytest.mark.parametrize("path", ["native", "seed REST", "remote write"])
def test_a_session_cut_mid_write_answers_503_and_the_retry_is_stored(
    live_server, token, path, phase
):
    """The session writing a batch is cut, as a server shutting down or crashing cuts it,
    while it waits in the COPY into samples, or in the fallback that skips samples already
    stored (a batch holding one goes there): 503 with Retry-After, and the retry is stored."""
    t0, t1 = (int(datetime.now(UTC).timestamp() * 1000) - 60_000 + n for n in range(2))
    assert send(live_server.url, token, cpu_write(path, "web-1", [t0]))[0] in (201, 202, 204)
    write = cpu_write(path, "web-1", [t1] if phase == "COPY" else [t0, t1])
    answer = {}
    writer = threading.Thread(
        target=lambda: answer.update(result=send(live_server.url, token, write))
    )
    with (
        psycopg.connect(database_dsn()) as other_writer,
        psycopg.connect(database_dsn(), autocommit=True) as monitor,
    ):
        # Another session is writing the sample at t1: the batch waits for its commit.
        other_writer.execute(
            "INSERT INTO samples (series_id, ts, value) SELECT id, %s, 0 FROM instances_series",
            [EPOCH + timedelta(milliseconds=t1)],
        )
        writer.start()
        monitor.execute("SELECT pg_terminate_backend(%s)", [backend_waiting_for_a_lock(monitor)])
        writer.join()
        other_writer.rollback()

    status, headers = answer["result"]
    assert status == 503 and retry_after_given(headers), answer
    assert send(live_server.url, token, write)[0] in (201, 202, 204)
    assert stored_timestamps(database_dsn()) == {("web-1", t0), ("web-1", t1)}


def backend_waiting_for_a_lock(monitor) -> int:
    deadline = time.monotonic() + 10
    while True:
        row = monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ).fetchone()
        if row:
            return row[0]
        assert time.monotonic() < deadline, "the write never waited"
        time.sleep(0.02)


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


def test_a_token_revoked_elsewhere_is_refused_by_every_web_process_within_a_second(vigil_env):
    """Web processes keep live tokens for TOKEN_CACHE_SECONDS (1 s): a token revoked by
    another process (here, straight in the database) is refused by all of them after that."""
    env, database_url, token = vigil_env
    first = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    with web_server(workers=2, env=env) as (url, _):
        # Each request is a new connection, so both workers answer some and keep the token.
        before = [post(url, token, batch(f"before-{n}", first))[0] for n in range(10)]
        with psycopg.connect(database_url) as db:
            db.execute("UPDATE ingestion_ingesttoken SET revoked_at = now()")
        time.sleep(TOKEN_CACHE_SECONDS)
        after = [post(url, token, batch(f"after-{n}", first))[0] for n in range(10)]

    assert before == [202] * 10
    assert after == [401] * 10
    assert {agent for agent, _ in stored_timestamps(database_url)} == {
        f"before-{n}" for n in range(10)
    }


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
