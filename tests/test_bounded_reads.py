"""Reads an API client or a page cannot make unbounded: the metrics list without a filter, the
analytics range, and the catch-up of a live socket that reconnects with an old ``since``."""

import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.models import Silence
from tests.test_dashboard_live import session_cookie, socket  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def now_ms() -> int:
    """Now, when a test runs (the suite may run it long after this module was imported)."""
    return int(time.time() * 1000)


def most_loops(plan: dict) -> int:
    """The most times any node of an EXPLAIN ANALYZE plan ran."""
    return max([plan["Actual Loops"], *(most_loops(child) for child in plan.get("Plans", []))])


def test_listing_metrics_without_a_filter_reads_the_samples_of_limit_series_only(api):
    now = now_ms()
    samples = [
        {"name": "cpu", "labels": {"core": str(n)}, "value": n, "ts": now - n * 1000}
        for n in range(2000)
    ]
    assert api.post("/api/v1/ingest", {"instance": {"agent_id": "big"}, "samples": samples})

    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/metrics", {"limit": 10})

    assert response.status_code == 200
    assert [item["metricValue"] for item in response.json()["items"]] == list(range(10))
    [sql] = [query["sql"] for query in queries if "LATERAL" in query["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0][0]["Plan"]
    assert most_loops(plan) <= 10


def test_an_analytics_range_longer_than_the_limit_is_cut_to_its_last_days(api, settings):
    settings.ANALYTICS_MAX_RANGE_DAYS = 7
    end = datetime(2026, 1, 31, tzinfo=UTC)

    response = api.get(
        "/api/v1/analytics", {"startDate": "2000-01-01T00:00:00Z", "endDate": end.isoformat()}
    )

    assert response.status_code == 200
    assert response.json()["startDate"] == "2026-01-24T00:00:00.000Z"


@pytest.mark.django_db(transaction=True)
def test_a_socket_reconnecting_with_since_zero_catches_up_on_ten_minutes_only(
    api,
    session_cookie,  # noqa: F811
):
    now = now_ms()
    old, recent = now - 3_600_000, now - 60_000
    batch = {
        "instance": {"agent_id": "web-1"},
        "samples": [
            {"name": "cpu", "value": 1.0, "ts": old},
            {"name": "cpu", "value": 2.0, "ts": recent},
        ],
    }
    instance_id = api.post("/api/v1/ingest", batch).json()["instance_id"]
    fresh = {"instance": {"agent_id": "web-1"}, "samples": [{"name": "cpu", "value": 3.0}]}

    async def scenario():
        communicator = socket(f"/ws/instances/{instance_id}/?since=0", session_cookie)
        assert (await communicator.connect())[0]
        await sync_to_async(api.post)("/api/v1/ingest", fresh)
        html = await communicator.receive_from(timeout=5)
        await communicator.disconnect()
        return html

    html = async_to_sync(scenario)()
    start = html.index('data-points="') + len('data-points="')
    points = orjson.loads(html[start : html.index('"', start)].replace("&quot;", '"'))
    [values] = points.values()
    assert [value for _, value in values] == [2.0, 3.0]


def test_the_alertmanager_silences_list_leaves_out_silences_expired_over_five_days_ago(api):
    now = datetime.now(UTC)
    matchers = [{"label": "alertname", "op": "=", "value": "DiskFull"}]
    for days_ago in (1, 6):
        ended = now - timedelta(days=days_ago)
        Silence.objects.create(
            matchers=matchers, starts_at=ended - timedelta(hours=1), ends_at=ended,
            comment=f"{days_ago} days ago",
        )  # fmt: skip

    response = api.get("/alertmanager/api/v2/silences")

    assert response.status_code == 200
    assert [silence["comment"] for silence in response.json()] == ["1 days ago"]


def test_the_prometheus_series_list_stops_at_its_limit_and_says_so(api, settings):
    settings.PROMQL_MAX_SERIES_LISTED = 5
    samples = [{"name": "cpu", "labels": {"core": str(n)}, "value": n} for n in range(8)]
    api.post("/api/v1/ingest", {"instance": {"agent_id": "web-1"}, "samples": samples})

    everything = api.get("/prometheus/api/v1/series", {"match[]": '{__name__=~".+"}'}).json()
    asked = api.get("/prometheus/api/v1/series", {"match[]": "cpu", "limit": "3"}).json()
    within = api.get("/prometheus/api/v1/series", {"match[]": "cpu", "limit": "8"}).json()

    assert len(everything["data"]) == 5
    assert everything["warnings"] == ["results truncated due to limit"]
    assert len(asked["data"]) == 3 and asked["warnings"]
    assert len(within["data"]) == 5
