"""METRICS_ENGINE=victoriametrics: samples go to a real VictoriaMetrics (Debian package, started
on loopback by the test), the series inventory stays in PostgreSQL, and every read answers as
the postgres engine does for the same samples."""

import csv
import io
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from io import StringIO

import orjson
import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.permissions import Role
from alerts.evaluation import evaluate_rules
from alerts.models import Alert, AlertRule
from config.celery import heartbeat
from config.monitoring import readiness_failures
from instances import store
from instances.models import Instance, Series
from instances.samples import PostgresEngine, samples_engine
from query.engine import evaluate
from tests.prometheus_services import (
    cluster_layout,
    needs_victoriametrics,
    victoriametrics,
    wait_until,
)

pytestmark = [needs_victoriametrics, pytest.mark.django_db(transaction=True)]

NOW = datetime.now(UTC).replace(microsecond=0)
PROMETHEUS_API = "/prometheus/api/v1"


@pytest.fixture
def victoria(settings, tmp_path):
    """A VictoriaMetrics keeping Vigil's samples for this test."""
    with victoriametrics(tmp_path) as server:
        settings.METRICS_ENGINE = "victoriametrics"
        settings.VM_WRITE_URL = server.url
        settings.VM_QUERY_URL = server.url
        yield server


def cpu_batch(agent_id: str, values: list[tuple[datetime, float]], **labels) -> dict:
    return {
        "instance": {"agent_id": agent_id},
        "samples": [
            {
                "name": "cpu_usage",
                "value": value,
                "unit": "percent",
                "ts": int(ts.timestamp() * 1000),
                "labels": labels,
            }
            for ts, value in values
        ],
    }


def test_ingest_is_acknowledged_once_victoriametrics_has_the_samples(api, victoria):
    values = [(NOW - timedelta(seconds=30), 41.5), (NOW, 45.5)]
    response = api.post("/api/v1/ingest", cpu_batch("web-1", values, core="0"))
    assert response.status_code == 202, response.content
    victoria.flush()

    series = Series.objects.get(instance__agent_id="web-1", name="cpu_usage")
    assert store.count_samples([series.pk]) == 0, "no sample went to PostgreSQL"
    assert samples_engine().count_samples([series.pk]) == 2
    # The inventory keeps the newest value for the overview, as with the postgres engine.
    assert (series.last_value, series.last_ts) == (45.5, NOW)

    body = api.get(
        f"{PROMETHEUS_API}/query", {"query": "cpu_usage", "time": str(NOW.timestamp())}
    ).json()
    assert body["status"] == "success"
    assert body["data"]["result"] == [
        {
            "metric": {"__name__": "cpu_usage", "core": "0", "instance": "web-1"},
            "value": [NOW.timestamp(), "45.5"],
        }
    ]
    body = api.get(
        f"{PROMETHEUS_API}/query_range",
        {
            "query": "cpu_usage * 2",
            "start": str((NOW - timedelta(seconds=30)).timestamp()),
            "end": str(NOW.timestamp()),
            "step": "15",
        },
    ).json()
    assert [row["values"] for row in body["data"]["result"]] == [
        [
            [(NOW - timedelta(seconds=30)).timestamp(), "83"],
            [(NOW - timedelta(seconds=15)).timestamp(), "83"],
            [NOW.timestamp(), "91"],
        ]
    ]


def test_every_read_answers_as_the_postgres_engine(victoria):
    """The same samples written through each engine read back the same from each."""
    instances = [Instance.register(agent) for agent in ("db-1", "db-2")]
    series = []
    for instance in instances:
        for mode in ("user", "system"):
            keys = [store.SeriesKey("cpu_seconds_total", {"mode": mode}, "seconds")]
            series.extend(store.resolve_series(instance.pk, keys).values())
    start = NOW - timedelta(hours=1)
    # Each series a second after the one before: no two share a timestamp, so "the newest
    # sample" of several is one sample.
    rows = [
        (series_id, start + timedelta(seconds=15 * step + index), float(step * (index + 1) % 97))
        for index, series_id in enumerate(series)
        for step in range(240)
    ]
    postgres, victoria_engine = PostgresEngine(), samples_engine()
    postgres.write_samples(rows)
    victoria_engine.write_samples(rows)
    victoria.flush()

    window = (NOW - timedelta(minutes=10), NOW - timedelta(minutes=2))
    ids = [instance.pk for instance in instances]
    reads = {
        "points_of_series": lambda engine: engine.points_of_series(series, start, NOW, 40, "raw"),
        "metric_trends": lambda engine: engine.metric_trends(["cpu_seconds_total"], start, NOW, 30),
        "window_aggregates": lambda engine: {
            aggregation: engine.window_aggregates(series, *window, aggregation)
            for aggregation in store.WINDOW_AGGREGATES
        },
        "window_values": lambda engine: {
            aggregation: engine.window_values(
                "cpu_seconds_total",
                [{"label": "mode", "op": "=~", "value": "us.*"}],
                ids,
                *window,
                aggregation,
            )
            for aggregation in store.WINDOW_AGGREGATES
        },
        "recent_samples": lambda engine: engine.recent_samples(ids, limit=7),
        "sample_at": lambda engine: engine.sample_at(series[2], start + timedelta(minutes=5)),
        "metric_aggregates": lambda engine: engine.metric_aggregates(*window, ids),
        "count_samples": lambda engine: engine.count_samples(series[:3]),
    }
    for name, read in reads.items():
        assert read(victoria_engine) == read(postgres), name


def test_victoriametrics_unreachable_is_a_503_with_retry_after(api, victoria):
    assert not any(failure.startswith("victoriametrics:") for failure in readiness_failures())
    victoria.stop()

    response = api.post("/api/v1/ingest", cpu_batch("web-1", [(NOW, 1.0)]))
    assert response.status_code == 503, response.content
    assert int(response.headers["Retry-After"]) > 0
    body = api.get(f"{PROMETHEUS_API}/query", {"query": "cpu_usage"})
    assert body.status_code == 503
    assert body.json()["errorType"] == "unavailable"
    assert any(failure.startswith("victoriametrics:") for failure in readiness_failures())

    victoria.start()
    response = api.post("/api/v1/ingest", cpu_batch("web-1", [(NOW, 1.0)]))
    assert response.status_code == 202, response.content


def test_deleting_an_instance_deletes_its_series_in_victoriametrics(api, victoria):
    for agent in ("web-1", "web-2"):
        assert api.post("/api/v1/ingest", cpu_batch(agent, [(NOW, 3.0)])).status_code == 202
    victoria.flush()
    Instance.objects.get(agent_id="web-1").delete()
    victoria.flush()

    body = api.get(
        f"{PROMETHEUS_API}/query", {"query": "cpu_usage", "time": str(NOW.timestamp())}
    ).json()
    assert [row["metric"]["instance"] for row in body["data"]["result"]] == ["web-2"]


class SustainedIngest(threading.Thread):
    """Posts batches of one series to a live Vigil, back to back, until stopped; keeps the
    samples of every batch answered 202 and the status of every answer."""

    BATCH = 50

    def __init__(self, url: str, token: str):
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.acknowledged: list[tuple[int, float]] = []
        self.statuses: list[int] = []
        self.refused = threading.Event()
        self.stopping = threading.Event()
        self.base_ms = int((NOW - timedelta(hours=1)).timestamp() * 1000)

    def acknowledged_batches(self) -> int:
        return len(self.acknowledged) // self.BATCH

    def run(self) -> None:
        counter = 0
        while not self.stopping.is_set():
            samples = [
                (self.base_ms + 10 * (counter + i), float(counter + i)) for i in range(self.BATCH)
            ]
            counter += self.BATCH
            body = orjson.dumps({
                "instance": {"agent_id": "fault-1"},
                "samples": [
                    {"name": "requests_total", "value": value, "ts": ts} for ts, value in samples
                ],
            })  # fmt: skip
            request = urllib.request.Request(
                f"{self.url}/api/v1/ingest",
                body,
                {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status = response.status
            except urllib.error.HTTPError as error:
                status = error.code
            self.statuses.append(status)
            if status == 202:
                self.acknowledged.extend(samples)
            else:
                self.refused.set()


def test_restart_under_sustained_ingest_loses_nothing_acknowledged(
    live_server, token, victoria, settings
):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 1_000_000
    sender = SustainedIngest(live_server.url, token)
    sender.start()
    try:
        wait_until(lambda: sender.acknowledged_batches() >= 5, 60, what="batches before")
        victoria.stop()
        wait_until(sender.refused.is_set, 60, what="a batch refused while it is down")
        victoria.start()
        restarted_at = sender.acknowledged_batches()
        wait_until(
            lambda: sender.acknowledged_batches() >= restarted_at + 5, 60, what="batches after"
        )
    finally:
        sender.stopping.set()
        sender.join(timeout=120)
    assert set(sender.statuses) == {202, 503}, sorted(set(sender.statuses))
    victoria.flush()

    series = Series.objects.get(instance__agent_id="fault-1", name="requests_total")
    stored = samples_engine().sample_arrays(
        [series.pk], sender.base_ms, sender.base_ms + 10**9, limit=10**7
    )
    kept = dict(zip(stored.ts_ms.tolist(), stored.value.tolist(), strict=True))
    missing = [sample for sample in sender.acknowledged if kept.get(sample[0]) != sample[1]]
    assert not missing, f"{len(missing)} acknowledged samples lost, e.g. {missing[:3]}"


def test_migrate_samples_moves_a_million_samples_and_answers_stay_equal(victoria, settings):
    """1 M samples (100 series × 10,000, 15 s apart) in PostgreSQL, copied in two runs (the
    first interrupted): charts and PromQL answer the same before and after the switch."""
    settings.METRICS_ENGINE = "postgres"
    instances = [Instance.register(f"node-{number}") for number in range(10)]
    series = []
    for instance in instances:
        keys = [store.SeriesKey("load", {"core": str(core)}) for core in range(10)]
        series.extend(store.resolve_series(instance.pk, keys).values())
    start = NOW - timedelta(seconds=15 * 10_000)
    stamps = [start + timedelta(seconds=15 * step) for step in range(10_000)]
    for index, series_id in enumerate(series):
        store.write_samples(
            [(series_id, ts, float((step * 7 + index) % 101)) for step, ts in enumerate(stamps)]
        )
    assert store.count_samples() == 1_000_000

    # Queries on which the engines agree (see the README for where VictoriaMetrics differs).
    queries = ["sum by (instance) (load)", "avg by (core) (load)", "max(load) - min(load)"]
    start_ms, end_ms = int(start.timestamp() * 1000), int(NOW.timestamp() * 1000)

    def answers() -> dict:
        found = {"chart": samples_engine().points_of_series(series[:5], start, NOW, 200, "raw")}
        for query in queries:
            vector = evaluate(query, start_ms, end_ms, 600_000)
            found[query] = sorted(
                (sorted(labels.items()), values[present].round(9).tolist())
                for labels, values, present in zip(
                    vector.labels, vector.values, vector.present, strict=True
                )
            )
        return found

    before = answers()
    first = StringIO()
    call_command(
        "migrate_samples", "--to", "victoriametrics", "--batch-series", "30", "--batches", "2",
        stdout=first,
    )  # fmt: skip
    assert "copied 600000 of 1000000 samples (60%)" in first.getvalue()
    assert "run again to go on" in first.getvalue()
    second = StringIO()
    call_command(
        "migrate_samples", "--to", "victoriametrics", "--batch-series", "30", stdout=second
    )
    assert "going on after series" in second.getvalue()
    assert "done: 1000000 samples in victoriametrics" in second.getvalue()
    victoria.flush()

    settings.METRICS_ENGINE = "victoriametrics"
    # Flushed, a million fresh samples can still take VictoriaMetrics a moment to make all
    # searchable on a busy machine (one run counted half): wait for them, a lost one never comes.
    wait_until(
        lambda: samples_engine().count_samples() == 1_000_000,
        60,
        interval=1,
        what="the million samples to be searchable in VictoriaMetrics",
    )
    assert answers() == before


def test_cluster_url_layout_reaches_vminsert_and_vmselect(api, settings, tmp_path):
    """VM_WRITE_URL and VM_QUERY_URL as a cluster's vminsert and vmselect prefixes."""
    with victoriametrics(tmp_path) as server, cluster_layout(server.url) as (url, passed):
        settings.METRICS_ENGINE = "victoriametrics"
        settings.VM_WRITE_URL = f"{url}/insert/0/prometheus"
        settings.VM_QUERY_URL = f"{url}/select/0/prometheus"
        for agent in ("web-1", "web-2"):
            response = api.post("/api/v1/ingest", cpu_batch(agent, [(NOW, 7.0)]))
            assert response.status_code == 202, response.content
        server.flush()
        body = api.get(
            f"{PROMETHEUS_API}/query", {"query": "sum(cpu_usage)", "time": str(NOW.timestamp())}
        ).json()
        assert body["data"]["result"][0]["value"][1] == "14"
        series = Series.objects.get(instance__agent_id="web-1")
        assert samples_engine().series_points(series.pk, NOW, NOW + timedelta(seconds=1), 1)
        Instance.objects.get(agent_id="web-1").delete()
        assert not any(failure.startswith("victoriametrics:") for failure in readiness_failures())

    assert {role for role, _ in passed} == {"insert", "select", "delete", "health"}
    assert {path for role, path in passed if role == "insert"} == {"/api/v1/import"}
    assert {path for role, path in passed if role == "select"} == {
        "/api/v1/query",
        "/api/v1/export",
    }
    assert {path for role, path in passed if role == "delete"} == {
        "/api/v1/admin/tsdb/delete_series"
    }


def test_threshold_and_promql_rules_fire_on_victoriametrics(api, victoria):
    AlertRule.objects.all().delete()
    AlertRule.objects.create(
        name="CPU hot", metric="cpu_usage", aggregation="avg", window=timedelta(minutes=1),
        comparator=">", critical_threshold=90, for_duration=timedelta(0),
    )  # fmt: skip
    AlertRule.objects.create(
        name="CPU hot (PromQL)", expr="avg_over_time(cpu_usage[1m]) > 90", for_duration=timedelta(0)
    )
    now = timezone.now().replace(microsecond=0)
    values = [(now - timedelta(seconds=seconds), 95.0) for seconds in range(50, -1, -10)]
    assert api.post("/api/v1/ingest", cpu_batch("web-1", values)).status_code == 202
    victoria.flush()

    evaluate_rules(now=now)
    firing = Alert.objects.filter(resolved_at__isnull=True, instance__agent_id="web-1")
    assert sorted(firing.values_list("rule__name", flat=True)) == ["CPU hot", "CPU hot (PromQL)"]


def test_explore_csv_reads_victoriametrics(api, client, user_with_role, victoria):
    now = timezone.now().replace(second=0, microsecond=0)
    values = [(now - timedelta(minutes=minutes), float(minutes)) for minutes in range(5, -1, -1)]
    assert api.post("/api/v1/ingest", cpu_batch("web-1", values, core="0")).status_code == 202
    victoria.flush()
    client.force_login(user_with_role(Role.VIEWER, "viewer"))

    response = client.get(
        "/explore/data.csv", {"promql": "cpu_usage * 10", "range": "5m", "step": "1m"}
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time_utc", "core", "instance", "value"]
    assert [float(row[-1]) for row in rows[1:]][-1] == 0.0
    assert {row[2] for row in rows[1:]} == {"web-1"}


def test_readyz_checks_victoriametrics_and_warns_without_dedup(client, settings, tmp_path):
    heartbeat.delay()
    with victoriametrics(tmp_path, dedup=False) as server:
        settings.METRICS_ENGINE = "victoriametrics"
        settings.VM_WRITE_URL = settings.VM_QUERY_URL = server.url
        answer = client.get("/readyz", HTTP_HOST="127.0.0.1:8000").json()
        assert answer["checks"] == {
            "postgresql": "ok", "redis": "ok", "celery": "ok", "victoriametrics": "ok"
        }  # fmt: skip
        assert answer["status"] == "ok"
        assert "without -dedup.minScrapeInterval" in answer["warnings"][0]
        server.stop()
        response = client.get("/readyz", HTTP_HOST="127.0.0.1:8000")
        assert response.status_code == 503
        assert response.json()["failing"] == ["victoriametrics"]
