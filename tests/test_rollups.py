import math
import random
from datetime import UTC, datetime, timedelta
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from alerts.evaluation import evaluate_rules
from alerts.models import Alert
from bench.common import database_dsn
from instances import rollups, store, tasks
from instances.models import Instance
from instances.retention import apply_retention
from instances.rollups import refresh_rollups
from instances.store import ROLLUP_1H, ROLLUP_1M, ROLLUP_5M, ROLLUP_LEVELS, SAMPLES, SeriesKey

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
# Three whole hours ending a whole hour before now: old enough to be past the grace window.
START = (datetime.now(UTC) - 4 * HOUR).replace(minute=0, second=0, microsecond=0)
END = START + 3 * HOUR


def series_of(instance, name="cpu_usage", **labels) -> int:
    key = SeriesKey(name, labels)
    return store.resolve_series(instance.pk, [key])[(key.name, key.labels_key)]


def irregular_samples(series_id, start, end, seed) -> list[tuple[int, datetime, float]]:
    """Samples at irregular times (several per minute, some minutes empty), random values."""
    rng = random.Random(seed)
    rows, ts = [], start
    while ts < end:
        rows.append((series_id, ts, rng.uniform(-50, 150)))
        ts += timedelta(seconds=rng.choice([3, 7, 20, 45, 130]), microseconds=rng.randrange(10**6))
    return rows


def rollup_rows(level) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {level.table.name} ORDER BY series_id, bucket")
        return cursor.fetchall()


def assert_same_points(rolled, raw):
    assert [p.ts for p in rolled] == [p.ts for p in raw]
    assert [p.count for p in rolled] == [p.count for p in raw]
    for r, w in zip(rolled, raw, strict=True):
        assert (r.min, r.max, r.last) == (w.min, w.max, w.last)
        assert math.isclose(r.avg, w.avg, rel_tol=1e-12, abs_tol=1e-9)


@pytest.fixture
def two_series():
    web, db = Instance.register("web-1"), Instance.register("db-1")
    cpu, mem = series_of(web), series_of(db, "memory_usage", device="a")
    store.write_samples(irregular_samples(cpu, START, END, seed=1))
    store.write_samples(irregular_samples(mem, START, END, seed=2))
    return cpu, mem


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "buckets"), [("1m", 18), ("1m", 180), ("5m", 36), ("5m", 4), ("1h", 3)]
)
def test_rollups_answer_the_same_min_max_avg_as_the_samples_over_the_same_buckets(
    two_series, resolution, buckets
):
    refresh_rollups(now=END + HOUR)

    rolled = store.points_of_series(two_series, START, END, buckets, resolution=resolution)
    raw = store.points_of_series(two_series, START, END, buckets, resolution="raw")

    for series_id in two_series:
        assert buckets / 2 < len(raw[series_id]) <= buckets
        assert_same_points(rolled[series_id], raw[series_id])


def test_each_rollup_is_the_finer_one_folded(two_series):
    refresh_rollups(now=END + HOUR)

    hours = store.points_of_series(two_series, START, END, 3, resolution="1h")
    for finer in ("5m", "1m"):
        folded = store.points_of_series(two_series, START, END, 3, resolution=finer)
        for series_id in two_series:
            assert_same_points(hours[series_id], folded[series_id])


def test_samples_past_the_watermark_are_read_from_the_samples_until_the_next_refresh(web):
    cpu = series_of(web)
    store.write_samples(irregular_samples(cpu, START, START + HOUR, seed=3))
    refresh_rollups(now=START + HOUR)
    newer = irregular_samples(cpu, START + HOUR, END, seed=4)
    store.write_samples(newer)

    rolled = store.series_points(cpu, START, END, 18, resolution="1m")

    assert_same_points(rolled, store.series_points(cpu, START, END, 18, resolution="raw"))
    assert sum(p.count for p in rolled) == store.count_samples([cpu])


def test_a_chart_picks_the_coarsest_resolution_that_still_gives_its_points():
    now = datetime.now(UTC)
    assert store.pick_resolution(now - timedelta(days=30), now, 500) == "1h"
    assert store.pick_resolution(now - timedelta(days=7), now, 500) == "5m"
    assert store.pick_resolution(now - timedelta(hours=6), now, 120) == "1m"
    assert store.pick_resolution(now - HOUR, now, 120) == "raw"


def test_a_rollup_chart_has_whole_rollup_buckets_about_as_many_as_asked(two_series):
    refresh_rollups(now=END + HOUR)
    start = START + timedelta(minutes=7, seconds=30)

    points = store.series_points(two_series[0], start, END, 25, resolution="auto")

    # 172.5 minutes in 25 buckets of 6.9 minutes: 5m rollups, one per bucket (the nearest).
    assert 25 <= len(points) <= 35
    strides = {b.ts - a.ts for a, b in zip(points, points[1:], strict=False)}
    assert strides == {timedelta(minutes=5)}
    assert points[0].ts == START + timedelta(minutes=5)


@pytest.mark.parametrize("resolution", ["5m", "1h"])
def test_a_long_chart_reads_its_rollup_from_the_index_alone(two_series, resolution):
    refresh_rollups(now=END + HOUR)
    queries = []

    def capture(execute, sql, params, many, context):
        queries.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        store.series_points(two_series[0], START, END, 10, resolution=resolution)
    [(sql, params)] = queries
    with connection.cursor() as cursor:
        # Tiny test tables would be read whole; what matters is that the index covers the read.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    level = {"5m": ROLLUP_5M, "1h": ROLLUP_1H}[resolution]
    assert f"Index Only Scan using {level.table.name}_p" in plan, plan


# --- incremental refresh ----------------------------------------------------------------------


def test_a_refresh_run_twice_changes_nothing(two_series):
    refresh_rollups(now=END + HOUR)
    first = [rollup_rows(level) for level in (ROLLUP_1M, ROLLUP_5M, ROLLUP_1H)]

    report = refresh_rollups(now=END + HOUR)

    assert [rollup_rows(level) for level in (ROLLUP_1M, ROLLUP_5M, ROLLUP_1H)] == first
    assert len(first[1]) == 2 * 36
    assert len(first[2]) == 2 * 3
    assert report.rows == {"1m": 0, "5m": 0, "1h": 0}


def test_a_refresh_reads_only_from_its_watermark_less_the_grace_window(settings, web):
    settings.ROLLUP_GRACE_SECONDS = 300
    cpu = series_of(web)
    store.write_samples([(cpu, START + timedelta(minutes=m), 1.0) for m in range(120)])
    refresh_rollups(now=START + HOUR)
    # Changed behind the store's back: only what the next refresh reads can pick it up.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE samples SET value = 2.0 WHERE series_id = %s", [cpu])

    report = refresh_rollups(now=START + 2 * HOUR)

    assert report.start == START + HOUR - timedelta(minutes=5)
    assert report.chunks == [(report.start, START + 2 * HOUR)]
    assert store.rollup_watermark() == START + 2 * HOUR
    values = {row[1]: row[2] for row in rollup_rows(ROLLUP_1M)}
    assert {minute for minute, value in values.items() if value == 2.0} == {
        START + timedelta(minutes=m) for m in range(55, 120)
    }
    assert report.rows["1m"] == 65


def test_a_late_sample_inside_the_grace_window_is_folded_in(settings, web):
    settings.ROLLUP_GRACE_SECONDS = 600
    cpu = series_of(web)
    store.write_samples([(cpu, START + timedelta(minutes=50), 1.0)])
    refresh_rollups(now=START + HOUR)
    late = START + timedelta(minutes=55, seconds=10)
    store.write_samples([(cpu, late, 99.0)])

    refresh_rollups(now=START + HOUR + MINUTE)

    assert [(r[1], r[3]) for r in rollup_rows(ROLLUP_1M)] == [
        (START + timedelta(minutes=50), 1.0),
        (START + timedelta(minutes=55), 99.0),
    ]
    assert rollup_rows(ROLLUP_5M)[-1][1:] == (
        START + timedelta(minutes=55),
        99.0,
        99.0,
        99.0,
        1,
        99.0,
    )
    assert rollup_rows(ROLLUP_1H)[0][2:] == (1.0, 99.0, 100.0, 2, 99.0)


def test_a_sample_older_than_the_grace_window_is_queued_and_recomputed(settings, web):
    settings.ROLLUP_GRACE_SECONDS = 60
    cpu = series_of(web)
    store.write_samples([(cpu, START + timedelta(minutes=10, seconds=5), 4.0)])
    refresh_rollups(now=END)
    # Hours behind the watermark: the window no longer reaches it, the late queue does.
    store.write_samples([(cpu, START + timedelta(minutes=10, seconds=50), 6.0)])

    report = refresh_rollups(now=END + MINUTE)

    assert report.late_minutes == 1
    minute = rollup_rows(ROLLUP_1M)[0]
    assert minute[1:] == (START + timedelta(minutes=10), 4.0, 6.0, 10.0, 2, 6.0)
    assert rollup_rows(ROLLUP_5M)[0][2:] == (4.0, 6.0, 10.0, 2, 6.0)
    assert rollup_rows(ROLLUP_1H)[0][2:] == (4.0, 6.0, 10.0, 2, 6.0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rollup_late")
        assert cursor.fetchone()[0] == 0


def test_the_beat_task_refreshes_the_rollups(two_series):
    tasks.refresh_rollups.delay()

    assert len(rollup_rows(ROLLUP_1H)) == 2 * 3
    assert store.rollup_watermark() is not None


def test_deleting_an_instance_deletes_its_rollups(two_series):
    refresh_rollups(now=END + HOUR)

    Instance.objects.get(agent_id="web-1").delete()

    assert {row[0] for row in rollup_rows(ROLLUP_1M)} == {two_series[1]}
    assert {row[0] for row in rollup_rows(ROLLUP_1H)} == {two_series[1]}


# --- float64 extremes and failing series ------------------------------------------------------

# float64's largest finite value and its smallest subnormal: the ingest API accepts both.
MAX, TINY = 1.7976931348623157e308, 5e-324
# Per series, the values stored in some minutes after START. Every bucket's float64 sum is the
# same in any order of addition, so float64 arithmetic gives it one answer.
EXTREMES = {
    "overflowing": {0: [MAX, MAX], 1: [-MAX], 5: [MAX]},  # +Inf, -MAX, MAX; 5m +Inf, MAX
    "overflowing_down": {0: [-MAX, -MAX], 1: [MAX], 5: [-MAX]},
    "cancelling": {0: [MAX, -MAX], 5: [MAX, MAX], 6: [-MAX, -MAX]},  # 5m: 0, +Inf - Inf = NaN
    "absorbing": {0: [MAX, 1.0, -1.0], 1: [2.0]},
    "subnormal": {0: [TINY, TINY], 1: [-TINY], 5: [TINY], 7: [-TINY, -TINY, -TINY]},
}


def float64_sums(minutes: dict[int, list[float]]) -> dict[str, dict[datetime, float]]:
    """Each rollup's sums as float64 arithmetic gives them: a minute's values added, then each
    coarser bucket's finer sums."""
    sums = {"1m": {START + m * MINUTE: sum(values) for m, values in minutes.items()}}
    for finer, level in ((ROLLUP_1M, ROLLUP_5M), (ROLLUP_5M, ROLLUP_1H)):
        coarser = {}
        for bucket, total in sorted(sums[finer.name].items()):
            start = store.floor_time(bucket, level.width)
            coarser[start] = coarser.get(start, 0.0) + total
        sums[level.name] = coarser
    return sums


def same_float(a, b) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_values_at_float64s_extremes_roll_up_as_float64_sums_them_and_every_series_advances(
    api, two_series
):
    samples = [
        {"name": name, "value": value, "ts": int((START + m * MINUTE).timestamp() * 1000) + i}
        for name, minutes in EXTREMES.items()
        for m, values in minutes.items()
        for i, value in enumerate(values)
    ]
    response = api.post("/api/v1/ingest", {"instance": {"agent_id": "fuzzer"}, "samples": samples})
    assert response.status_code == 202, response.content

    report = refresh_rollups(now=END + HOUR)

    assert report.failed == {}
    assert store.rollup_watermark() == END + HOUR
    fuzzer = Instance.objects.get(agent_id="fuzzer")
    for name, minutes in EXTREMES.items():
        extreme = series_of(fuzzer, name)
        for level, expected in float64_sums(minutes).items():
            rolled = {
                row[1]: row[4]
                for row in rollup_rows(next(lv for lv in ROLLUP_LEVELS if lv.name == level))
                if row[0] == extreme
            }
            assert rolled.keys() == expected.keys(), (name, level)
            assert all(same_float(rolled[b], expected[b]) for b in expected), (name, level, rolled)
    for series_id in two_series:
        rolled = store.series_points(series_id, START, END, 36, resolution="5m")
        assert_same_points(rolled, store.series_points(series_id, START, END, 36, "raw"))


def test_a_series_whose_rollups_fail_is_reported_and_retried_while_the_others_advance(
    two_series,
):
    cpu, mem = two_series
    refresh_rollups(now=START + HOUR)
    # Any failure of one series' rollups: here PostgreSQL refuses its 1-minute rows.
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE samples_1m ADD CONSTRAINT refuses_cpu CHECK (series_id <> {cpu}) NOT VALID"
        )
    failures_before = rollup_failures()

    report = refresh_rollups(now=END)

    assert report.failed.keys() == {cpu}
    assert "refuses_cpu" in report.failed[cpu]
    assert store.rollup_watermark() == END
    assert {row[1] for row in rollup_rows(ROLLUP_1H) if row[0] == mem} == {
        START + n * HOUR for n in range(3)
    }
    assert max(row[1] for row in rollup_rows(ROLLUP_1M) if row[0] == cpu) < START + HOUR
    assert rollup_failures() == failures_before + 1

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE samples_1m DROP CONSTRAINT refuses_cpu")
    retried = refresh_rollups(now=END + MINUTE)

    assert retried.failed == {}
    assert retried.late_minutes > 0
    assert_same_points(
        store.series_points(cpu, START, END, 36, resolution="5m"),
        store.series_points(cpu, START, END, 36, resolution="raw"),
    )
    assert metric(Client(), "vigil_rollup_failing_series") == 0


def test_a_refresh_retries_a_failing_late_minute_without_holding_up_the_others(
    settings, two_series
):
    settings.ROLLUP_GRACE_SECONDS = 60
    cpu, mem = two_series
    refresh_rollups(now=END)
    late = [(cpu, START + timedelta(seconds=1)), (mem, START + timedelta(seconds=1))]
    store.write_samples([(series_id, ts, 1e6) for series_id, ts in late])
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE samples_1m ADD CONSTRAINT refuses_cpu CHECK (series_id <> {cpu}) NOT VALID"
        )

    report = refresh_rollups(now=END + MINUTE)

    assert report.failed.keys() == {cpu}
    assert max(row[3] for row in rollup_rows(ROLLUP_1M) if row[0] == mem) == 1e6
    with connection.cursor() as cursor:
        cursor.execute("SELECT series_id, bucket FROM rollup_late")
        queued = cursor.fetchall()
    assert (cpu, START) in queued
    assert {series_id for series_id, _ in queued} == {cpu}


# --- lag and failures on /metrics, and the shipped rule -----------------------------------------


def metric(client, name, **labels) -> float | None:
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def rollup_failures() -> float:
    return metric(Client(), "vigil_rollup_refresh_failures_total", what="series") or 0.0


def test_metrics_show_how_far_the_rollups_lag(client, two_series):
    refresh_rollups(now=datetime.now(UTC) - 7 * MINUTE)

    lag = metric(client, "vigil_rollup_lag_seconds")

    assert 7 * 60 <= lag < 8 * 60


def test_a_refresh_that_fails_whole_is_counted_on_metrics(client, two_series):
    failed_runs = metric(client, "vigil_rollup_refresh_failures_total", what="run") or 0.0
    # A failure that is no series' fault: PostgreSQL refuses to move the watermark.
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE rollup_watermark ADD CONSTRAINT frozen CHECK (upto < '2000-01-01') "
            "NOT VALID"
        )

    with pytest.raises(IntegrityError):
        refresh_rollups(now=END)

    assert metric(client, "vigil_rollup_refresh_failures_total", what="run") == failed_runs + 1
    assert store.rollup_watermark() is None


def test_the_beat_task_records_the_lag_which_the_shipped_rule_alerts_on(two_series):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO rollup_watermark (resolution, upto) VALUES ('rollups', %s)",
            [datetime.now(UTC) - 10 * MINUTE],
        )
    # Beat's run finds the lock held by a refresh that hangs: it skips, yet records the lag.
    with psycopg.connect(database_dsn()) as hung_refresh:
        hung_refresh.execute(f"SELECT pg_advisory_lock({rollups.LOCK})")
        tasks.refresh_rollups.delay()
    now = datetime.now(UTC)
    evaluate_rules(now=now)
    evaluate_rules(now=now + 2 * MINUTE)

    vigil = Instance.objects.get(agent_id="vigil")
    [lag] = store.latest_values([vigil.pk], [rollups.LAG_METRIC])
    assert 10 * 60 <= lag.value < 11 * 60
    alert = Alert.objects.get(instance=vigil, alert_type="RollupsLagging")
    assert alert.severity == Alert.Severity.WARNING
    assert "vigil_rollup_lag_seconds" in alert.message


# --- retention --------------------------------------------------------------------------------


@pytest.fixture
def aged_store(transactional_db, settings):
    """Samples and rollups across 800 days, with the default retention (15 d, 90 d, 180 d, 2 y)."""
    settings.RETENTION_RAW_DAYS, settings.RETENTION_1M_DAYS = 15, 90
    settings.RETENTION_5M_DAYS, settings.RETENTION_1H_DAYS = 180, 730
    now = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    cpu = series_of(Instance.register("web-1"))
    ages = [0, 1, 14, 16, 30, 89, 91, 200, 800]
    store.write_samples([(cpu, now - timedelta(days=age), float(age)) for age in ages])
    refresh_rollups(now=now + MINUTE)
    yield cpu, now
    with connection.cursor() as cursor:
        for table in store.TIME_TABLES:
            for name in store.list_partitions(table):
                cursor.execute(f"DROP TABLE {name}")
        cursor.execute("TRUNCATE rollup_watermark, rollup_late")


def stored_ages(table, series_id, now) -> list[int]:
    table = getattr(table, "table", table)
    column = table.column
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table.name} WHERE series_id = %s ORDER BY {column} DESC",
            [series_id],
        )
        return [(now - ts).days for (ts,) in cursor.fetchall()]


def test_retention_drops_whole_expired_partitions_of_each_table(aged_store):
    cpu, now = aged_store
    assert stored_ages(SAMPLES, cpu, now) == [0, 1, 14, 16, 30, 89, 91, 200, 800]

    report = apply_retention(now=now)

    assert stored_ages(SAMPLES, cpu, now) == [0, 1, 14]
    assert stored_ages(ROLLUP_1M, cpu, now) == [0, 1, 14, 16, 30, 89]
    # 5m and 1h partitions are monthly: a month goes when all of it is past retention.
    assert stored_ages(ROLLUP_5M, cpu, now)[:7] == [0, 1, 14, 16, 30, 89, 91]
    assert 800 not in stored_ages(ROLLUP_5M, cpu, now)
    assert stored_ages(ROLLUP_1H, cpu, now) == [0, 1, 14, 16, 30, 89, 91, 200]
    old_day = (now - timedelta(days=16)).date()
    assert store.partition_name(old_day) in report.dropped
    assert store.partition_name(old_day) not in store.list_partitions()
    assert store.partition_name((now - timedelta(days=14)).date()) in store.list_partitions()
    assert apply_retention(now=now).dropped == []


def test_retention_makes_the_partitions_ahead_for_every_table(aged_store, settings):
    settings.PARTITIONS_AHEAD_DAYS = 3
    cpu, now = aged_store
    ahead = (now + timedelta(days=3)).date()

    apply_retention(now=now)

    for table in store.TIME_TABLES:
        assert table.partition_name(ahead) in store.list_partitions(table)


def test_the_retention_command_lists_then_drops(aged_store):
    cpu, now = aged_store
    dry = StringIO()
    call_command("retention", "--dry-run", stdout=dry)
    assert f"would drop {store.partition_name((now - timedelta(days=16)).date())}" in dry.getvalue()
    assert stored_ages(SAMPLES, cpu, now)[-1] == 800

    out = StringIO()
    call_command("retention", stdout=out)
    assert f"dropped {store.partition_name((now - timedelta(days=800)).date())}" in out.getvalue()
    assert stored_ages(SAMPLES, cpu, now) == [0, 1, 14]


def test_the_beat_task_applies_retention(aged_store):
    cpu, now = aged_store

    dropped = tasks.apply_retention.delay().get()

    assert store.partition_name((now - timedelta(days=30)).date()) in dropped
    assert stored_ages(SAMPLES, cpu, now) == [0, 1, 14]


def test_monthly_partitions_are_named_and_bounded_by_their_month():
    hours, minutes = ROLLUP_1H.table, ROLLUP_1M.table
    day = datetime(2026, 12, 17, tzinfo=UTC).date()
    assert hours.partition_name(day) == "samples_1h_p202612"
    assert hours.next_period(hours.period_start(day)).isoformat() == "2027-01-01"
    assert hours.partition_start("samples_1h_p202612").isoformat() == "2026-12-01"
    assert minutes.partition_start("samples_1h_p202612") is None


@pytest.fixture
def web():
    return Instance.register("web-1")
