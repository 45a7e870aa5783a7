import re
import tempfile
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

import orjson
import pytest
from django.core.cache import cache
from django.db import connection
from psycopg import pq

from api.auth import RATE_WINDOW_SECONDS, enforce_rate_limit
from ingestion.errors import ApiError
from ingestion.models import IngestToken
from instances import store
from instances.models import Instance, Series

NOW_MS = int(time.time() * 1000)


def batch(samples, agent_id="web-1", **instance):
    return {"instance": {"agent_id": agent_id, **instance}, "samples": samples}


def cpu(value, ts=NOW_MS, **labels):
    return {"name": "cpu_usage", "value": value, "unit": "percent", "ts": ts, "labels": labels}


def series_of(agent_id, name):
    return list(
        Series.objects.filter(instance__agent_id=agent_id, name=name).values_list("id", flat=True)
    )


@pytest.mark.django_db(transaction=True)
def test_batch_registers_instance_and_stores_samples(api):
    body = batch(
        [
            cpu(45.5, core="0"),
            cpu(12, NOW_MS - 30_000, core="1"),
        ],
        name="Web Server 1",
        type="vm",
        region="nyc1",
        endpoint="http://web-1",
        metadata={"os": "linux"},
    )
    response = api.post("/api/v1/ingest", body)
    assert response.status_code == 202, response.content
    answer = response.json()
    instance = Instance.objects.get(agent_id="web-1")
    assert answer == {"accepted": 2, "instance_id": str(instance.pk)}
    assert (instance.name, instance.type, instance.region, instance.metadata) == (
        "Web Server 1",
        "vm",
        "nyc1",
        {"os": "linux"},
    )
    assert instance.last_seen is not None
    assert store.count_samples(series_of("web-1", "cpu_usage")) == 2


@pytest.mark.django_db(transaction=True)
def test_replayed_batch_is_stored_once(api):
    body = batch([cpu(1, NOW_MS), cpu(2, NOW_MS - 1000)])
    for _ in range(2):
        assert api.post("/api/v1/ingest", body).status_code == 202
    assert store.count_samples(series_of("web-1", "cpu_usage")) == 2


@pytest.mark.django_db(transaction=True)
def test_a_replay_overlapping_stored_samples_stores_its_new_series_and_samples(api):
    assert api.post("/api/v1/ingest", batch([cpu(1, NOW_MS)])).status_code == 202
    load = {"name": "load1", "value": 0.5, "ts": NOW_MS}
    body = batch([cpu(1, NOW_MS), cpu(2, NOW_MS + 1000), load], name="Web 1")

    response = api.post("/api/v1/ingest", body)

    assert response.status_code == 202 and response.json()["accepted"] == 3
    assert store.count_samples(series_of("web-1", "cpu_usage")) == 2
    assert store.count_samples(series_of("web-1", "load1")) == 1
    web = Instance.objects.get(agent_id="web-1")
    assert web.name == "Web 1"
    assert {(value.name, value.value) for value in store.latest_values([web.pk])} == {
        ("cpu_usage", 2),
        ("load1", 0.5),
    }


@contextmanager
def round_trips():
    """The round trips Django's connection makes to PostgreSQL within: what the client sent
    each time before waiting for an answer (a simple query's text, an extended query's Sync, a
    COPY's end), read from libpq's protocol trace."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    sent = []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            pgconn.untrace()
        trace.seek(0)
        # One message a record: "F|B <tab> length <tab> type [<tab> fields]", fields (a query's
        # text) running on over lines of their own.
        for record in re.split(r"\n(?=[FB]\t\d+\t)", trace.read().strip()):
            side, _, kind, *text = record.split("\t", 3)
            if side == "F" and kind in ("Query", "Sync", "CopyDone"):
                sent.append(text[0].strip().strip('"') if kind == "Query" else kind)


@pytest.mark.django_db(transaction=True)
def test_the_usual_batch_is_written_in_one_exchange_with_postgresql(api):
    """An instance and series this process has seen, samples on time: the instance's contact,
    the COPY and the newest values in one query string, one transaction."""
    # Now, not the module's NOW_MS: a batch stamped over the rollup window ago is late.
    now = int(time.time() * 1000)
    assert api.post("/api/v1/ingest", batch([cpu(1, now - 1000)])).status_code == 202
    seen = Instance.objects.get(agent_id="web-1").last_seen

    with round_trips() as sent:
        response = api.post("/api/v1/ingest", batch([cpu(2, now)]))

    assert response.status_code == 202, response.content
    # Django's health check of its connection as a request begins (CONN_HEALTH_CHECKS).
    sent = [text for text in sent if text != "SELECT 1"]
    assert len(sent) == 2 and sent[1] == "CopyDone", sent
    statements = [statement.strip() for statement in sent[0].split(";")]
    assert [statement.split()[:2] for statement in statements] == [
        ["UPDATE", "instances_instance"],
        ["COPY", "samples"],
        ["UPDATE", "instances_series"],
    ]
    web = Instance.objects.get(agent_id="web-1")
    assert web.last_seen > seen and web.status == Instance.Status.HEALTHY
    assert store.count_samples(series_of("web-1", "cpu_usage")) == 2
    assert [value.value for value in store.latest_values([web.pk])] == [2]
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE


@pytest.mark.django_db(transaction=True)
def test_a_usual_batch_of_labelled_series_stores_each_sample_in_its_own_series(api):
    now = int(time.time() * 1000)
    first = [cpu(1, now - 2000, core="0", mode="user"), cpu(2, now - 2000, core="1", mode="user")]
    assert api.post("/api/v1/ingest", batch(first)).status_code == 202
    web = Instance.objects.get(agent_id="web-1")
    core_of = {series.labels["core"]: series.pk for series in Series.objects.filter(instance=web)}
    # Labels as another serialiser orders them, out of time order, interleaved series.
    second = [
        {"name": "cpu_usage", "value": 4, "ts": now, "labels": {"mode": "user", "core": "1"}},
        cpu(5, now, core="0", mode="user"),
        {
            "name": "cpu_usage",
            "value": 3,
            "ts": now - 1000,
            "labels": {"mode": "user", "core": "1"},
        },
        cpu(6, now - 1000, core="0", mode="user"),
    ]

    with round_trips() as sent:
        response = api.post("/api/v1/ingest", batch(second))

    assert response.status_code == 202, response.content
    assert [text for text in sent if text != "SELECT 1"][1:] == ["CopyDone"]
    assert Series.objects.filter(instance=web).count() == 2
    assert store.count_samples([core_of["0"]]) == store.count_samples([core_of["1"]]) == 3
    latest = {value.series_id: value.value for value in store.latest_values([web.pk])}
    assert latest == {core_of["0"]: 5, core_of["1"]: 4}


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_an_instance_deleted_by_another_process_registers_it_anew(api):
    now = int(time.time() * 1000)
    assert api.post("/api/v1/ingest", batch([cpu(1, now - 1000)])).status_code == 202
    deleted = Instance.objects.get(agent_id="web-1").pk
    # As another web process deletes it: in SQL, leaving this process's caches as they were.
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM samples WHERE series_id IN "
            "(SELECT id FROM instances_series WHERE instance_id = %s)",
            [deleted],
        )
        cursor.execute("DELETE FROM instances_series WHERE instance_id = %s", [deleted])
        cursor.execute("DELETE FROM instances_instance WHERE id = %s", [deleted])

    response = api.post("/api/v1/ingest", batch([cpu(2, now)]))

    assert response.status_code == 202, response.content
    web = Instance.objects.get(agent_id="web-1")
    assert web.pk != deleted and response.json()["instance_id"] == str(web.pk)
    assert [value.value for value in store.latest_values([web.pk])] == [2]
    assert store.count_samples(series_of("web-1", "cpu_usage")) == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_describing_its_instance_anew_saves_the_description(api):
    assert api.post("/api/v1/ingest", batch([cpu(1, NOW_MS - 1000)])).status_code == 202

    response = api.post("/api/v1/ingest", batch([cpu(2, NOW_MS)], name="Web One", region="ams3"))

    assert response.status_code == 202
    web = Instance.objects.get(agent_id="web-1")
    assert (web.name, web.region) == ("Web One", "ams3")
    assert store.count_samples(series_of("web-1", "cpu_usage")) == 2


@pytest.mark.django_db(transaction=True)
def test_idempotency_key_answers_a_retry_without_storing_again(api):
    body = batch([cpu(1)])
    first = api.post("/api/v1/ingest", body, headers={"Idempotency-Key": "batch-1"})
    retry = api.post("/api/v1/ingest", body, headers={"Idempotency-Key": "batch-1"})
    assert first.status_code == retry.status_code == 202
    assert first.json() == retry.json()
    assert store.count_samples(series_of("web-1", "cpu_usage")) == 1


@pytest.mark.django_db(transaction=True)
def test_rfc3339_and_missing_timestamps_are_accepted(api):
    iso = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    response = api.post(
        "/api/v1/ingest", batch([cpu(1, iso), {"name": "uptime_seconds", "value": 5}])
    )
    assert response.status_code == 202
    latest = {v.name: v for v in store.latest_values()}
    assert latest["cpu_usage"].ts == datetime.fromisoformat(iso)
    assert abs((latest["uptime_seconds"].ts - datetime.now(UTC)).total_seconds()) < 60


@pytest.mark.django_db(transaction=True)
def test_a_bad_sample_rejects_the_whole_batch_listing_every_problem(api):
    body = batch(
        [
            cpu(1),
            {"name": "bad name!", "value": 1},
            {"name": "ok", "value": "high"},
            {"name": "ok", "value": 1, "ts": NOW_MS + 86_400_000},
            {"name": "ok", "value": 1, "labels": {f"l{i}": "x" for i in range(33)}},
        ]
    )
    response = api.post("/api/v1/ingest", body)
    assert response.status_code == 400
    details = response.json()["details"]
    assert {(d["index"], d["field"]) for d in details} == {
        (1, "name"),
        (2, "value"),
        (3, "ts"),
        (4, "labels"),
    }
    assert not Instance.objects.exists()
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "raw, status",
    [
        (b"{not json", 400),
        (b'{"instance": {"agent_id": "a"}, "samples": [{"name": "x", "value": NaN}]}', 400),
        (b'{"instance": {"agent_id": "a"}, "samples": [{"name": "x", "value": 1e999}]}', 400),
        (
            b'{"instance": {"agent_id": "a"}, "samples": [{"name": "x", "value": 1, "ts": 1e30}]}',
            400,
        ),
        (
            b'{"instance": {"agent_id": "a"}, "samples": [{"name": "x", "value": 1, "ts": "yesterday"}]}',
            400,
        ),
        (b'{"instance": {"agent_id": ""}, "samples": []}', 400),
        (b'{"samples": []}', 400),
        (b"[]", 400),
        (b'"text"', 400),
        (b'{"instance": {"agent_id": "a"}, "samples": {"name": "x"}}', 400),
        (b'{"instance": {"agent_id": "a"}, "samples": [{"name": "x", "value": true}]}', 400),
        (
            b'{"instance": {"agent_id": "a"}, "samples": [{"name": "x", "value": 1, "labels": {"a": {"b": 1}}}]}',
            400,
        ),
        (b'{"instance": {"agent_id": "a", "metadata": []}, "samples": []}', 400),
        (b'{"instance": {"agent_id": "a"}, "samples": [null]}', 400),
    ],
)
def test_bad_input_gets_a_clear_400_and_stores_nothing(api, raw, status):
    response = api.post("/api/v1/ingest", raw)
    assert response.status_code == status, response.content
    assert response.json()["error"]
    assert store.count_samples() == 0
    assert not Instance.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_more_than_10000_samples_is_413(api):
    body = batch([cpu(1, NOW_MS - i) for i in range(10_001)])
    response = api.post("/api/v1/ingest", body)
    assert response.status_code == 413
    assert store.count_samples() == 0


@pytest.mark.django_db(transaction=True)
def test_a_6_mb_body_is_413(api):
    body = orjson.dumps(batch([cpu(1, core="x" * 1000)])) + b" " * (6 * 1024 * 1024)
    response = api.post("/api/v1/ingest", body)
    assert response.status_code == 413


@pytest.mark.django_db(transaction=True)
def test_wrong_content_type_is_415(api):
    response = api.post("/api/v1/ingest", "cpu_usage 1", content_type="text/plain")
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc"])
def test_missing_or_bad_token_is_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/api/v1/ingest", batch([cpu(1)]), content_type="application/json", headers=headers
    )
    assert response.status_code == 401
    assert response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_revoked_token_is_401(api):
    from ingestion.models import IngestToken

    IngestToken.objects.update(revoked_at=datetime.now(UTC))
    assert api.post("/api/v1/ingest", batch([cpu(1)])).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_in_this_process_is_refused_at_once(api):
    from ingestion.models import IngestToken

    assert api.post("/api/v1/ingest", batch([cpu(1)])).status_code == 202
    IngestToken.objects.get().revoke()
    assert api.post("/api/v1/ingest", batch([cpu(2)])).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_token_changed_or_deleted_in_this_process_takes_effect_at_once(api):
    from ingestion.models import IngestToken

    assert api.post("/api/v1/ingest", batch([cpu(1)])).status_code == 202
    token = IngestToken.objects.get()
    token.scopes = [IngestToken.Scope.READ]
    token.save()
    assert api.post("/api/v1/ingest", batch([cpu(2)])).status_code == 403
    token.delete()
    assert api.post("/api/v1/ingest", batch([cpu(3)])).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_token_revoked_elsewhere_is_refused_within_a_second(api):
    from ingestion.models import TOKEN_CACHE_SECONDS, IngestToken

    assert api.post("/api/v1/ingest", batch([cpu(1)])).status_code == 202
    # As another web process revokes it: this process's kept copy is not told.
    IngestToken.objects.update(revoked_at=datetime.now(UTC))
    time.sleep(TOKEN_CACHE_SECONDS)
    assert api.post("/api/v1/ingest", batch([cpu(2)])).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_read_only_token_cannot_write(client, read_token):
    response = client.post(
        "/api/v1/ingest",
        batch([cpu(1)]),
        content_type="application/json",
        headers={"Authorization": f"Bearer {read_token}"},
    )
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_rate_limit_answers_429_with_retry_after(api, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 3
    statuses = [
        api.post("/api/v1/ingest", batch([cpu(i, NOW_MS - i)])).status_code for i in range(5)
    ]
    assert statuses[:3] == [202, 202, 202]
    last = api.post("/api/v1/ingest", batch([cpu(9)]))
    assert last.status_code == 429
    assert int(last["Retry-After"]) >= 1


def window_key(token) -> str:
    return f"ratelimit:token:{token.pk}:{int(time.time() // RATE_WINDOW_SECONDS)}"


@pytest.fixture
def limited_token(settings):
    """A token limited to 1,000 requests a minute, with at least 5 s of the window left: the
    tests count within one window."""
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 1000
    token = IngestToken.issue("busy agent", [IngestToken.Scope.INGEST])[0]
    if time.time() % RATE_WINDOW_SECONDS > RATE_WINDOW_SECONDS - 5:
        time.sleep(6)
    return token


@pytest.mark.django_db(transaction=True)
def test_a_busy_token_is_counted_in_redis_a_hundredth_of_its_limit_at_a_time(limited_token):
    token = limited_token

    enforce_rate_limit(token)
    assert cache.get(window_key(token)) == 10
    for _ in range(999):
        enforce_rate_limit(token)
    assert cache.get(window_key(token)) == 1000
    with pytest.raises(ApiError) as refused:
        enforce_rate_limit(token)
    assert refused.value.status == 429


@pytest.mark.django_db(transaction=True)
def test_requests_arriving_together_take_one_hundredth_ahead_between_them(limited_token):
    token = limited_token
    start = threading.Barrier(20)

    def request() -> None:
        start.wait()
        enforce_rate_limit(token)

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Each of the 20 taken once, and at most one hundredth (10) taken ahead, less the one
    # request it admitted: not a hundredth for each request that found none held.
    assert 20 <= cache.get(window_key(token)) <= 29


@pytest.mark.django_db(transaction=True)
def test_a_token_never_admits_more_than_its_limit_across_processes(limited_token):
    token = limited_token
    # Other web processes have taken 995 of this window's requests.
    cache.count(window_key(token), timeout=120, amount=995)

    for _ in range(5):
        enforce_rate_limit(token)
    with pytest.raises(ApiError):
        enforce_rate_limit(token)


@pytest.mark.django_db(transaction=True)
def test_series_limit_guards_cardinality(api, settings):
    settings.SERIES_LIMIT_PER_INSTANCE = 5
    flood = batch([cpu(1, core=str(i)) for i in range(6)])
    response = api.post("/api/v1/ingest", flood)
    assert response.status_code == 400
    assert "limit" in response.json()["error"]
    assert not Series.objects.exists()


@pytest.mark.django_db
def test_an_unknown_api_path_answers_json_404(api):
    response = api.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": "no such endpoint", "details": []}
