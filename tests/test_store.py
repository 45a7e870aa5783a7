import importlib
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.db import connection, transaction
from psycopg import pq

from alerts.instance_status import contact_statement, instance_of_contact
from ingestion.parsers import ParsedSample
from ingestion.storage import store_batch
from instances import store, tasks
from instances.models import Instance, Series
from instances.store import SeriesKey, labels_key

pytestmark = pytest.mark.django_db

# A whole minute an hour ago: today's partition (or yesterday's, just after midnight) holds it.
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)


def series_id(instance, name="cpu_usage", **labels) -> int:
    key = SeriesKey(name, labels)
    return store.resolve_series(instance.pk, [key])[(key.name, key.labels_key)]


def seconds(n) -> timedelta:
    return timedelta(seconds=n)


@pytest.fixture
def web():
    return Instance.register("web-1")


@pytest.fixture
def db_host():
    return Instance.register("db-1")


def percentile_cont(values, fraction):
    """PostgreSQL's percentile_cont: linear interpolation between the two nearest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


# --- partitions -------------------------------------------------------------------------------


def test_writing_samples_for_a_day_without_partition_creates_it(web):
    day = (datetime.now(UTC) - timedelta(days=3)).replace(hour=12, minute=0, second=0)
    partition = store.partition_name(day.date())
    assert partition not in store.list_partitions()

    written = store.write_samples(
        [(series_id(web), day, 1.5), (series_id(web), day + seconds(60), 2)]
    )

    assert written == 2
    assert partition in store.list_partitions()
    assert store.count_samples([series_id(web)]) == 2


@pytest.mark.django_db(transaction=True)
def test_a_batch_reaching_a_day_without_partition_is_stored_whole():
    day = (datetime.now(UTC) - timedelta(days=4)).replace(hour=12, minute=0, second=0)
    assert store.partition_name(day.date()) not in store.list_partitions()
    samples = [
        ParsedSample("cpu_usage", 1.0, T0, {}, ""),
        ParsedSample("cpu_usage", 2.0, day, {}, ""),
    ]

    stored = store_batch({"agent_id": "web-9"}, samples)

    assert (stored.accepted, stored.new) == (2, 2)
    assert store.partition_name(day.date()) in store.list_partitions()
    cpu = stored.series_ids[("cpu_usage", labels_key({}))]
    assert (store.sample_at(cpu, T0).value, store.sample_at(cpu, day).value) == (1.0, 2.0)


def test_partitions_ahead_cover_today_and_the_configured_days_once(settings):
    settings.PARTITIONS_AHEAD_DAYS = 2
    today = datetime.now(UTC).date()
    expected = {store.partition_name(today + timedelta(days=n)) for n in range(3)}

    store.ensure_partitions_ahead()

    assert expected <= set(store.list_partitions())
    assert store.ensure_partitions_ahead() == []


def test_the_celery_task_makes_the_partitions_ahead(settings):
    settings.PARTITIONS_AHEAD_DAYS = 4
    today = datetime.now(UTC).date()

    tasks.ensure_partitions_ahead.delay()

    partitions = set(store.list_partitions())
    assert {store.partition_name(today + timedelta(days=n)) for n in range(5)} <= partitions
    assert store.ensure_partitions_ahead() == []


# --- writes -----------------------------------------------------------------------------------


def test_a_sample_written_twice_is_stored_once_and_keeps_the_first_value(web):
    cpu = series_id(web)

    assert store.write_samples([(cpu, T0, 1.0), (cpu, T0 + seconds(10), 2.0)]) == 2
    assert store.write_samples([(cpu, T0, 9.0)]) == 0

    assert store.count_samples([cpu]) == 2
    assert store.sample_at(cpu, T0).value == 1.0


def test_a_replay_overlapping_stored_samples_stores_only_the_new_ones(web):
    cpu = series_id(web)
    store.write_samples([(cpu, T0, 1.0)])

    assert store.write_samples([(cpu, T0, 1.0), (cpu, T0 + seconds(10), 2.0)]) == 1

    assert store.count_samples([cpu]) == 2


def test_a_replay_reaching_into_a_day_without_partition_stores_the_new_rows(web):
    cpu = series_id(web)
    old = (datetime.now(UTC) - timedelta(days=5)).replace(hour=12, minute=0, second=0)
    assert store.partition_name(old.date()) not in store.list_partitions()
    store.write_samples([(cpu, T0, 1.0)])

    written = store.write_samples([(cpu, T0, 1.0), (cpu, old, 2.0)])

    assert written == 1
    assert store.count_samples([cpu]) == 2
    assert store.sample_at(cpu, old).value == 2.0


@pytest.mark.django_db(transaction=True)
def test_an_unguarded_copy_over_a_stored_sample_loses_its_whole_transaction(web):
    cpu = series_id(web)
    store.write_samples([(cpu, T0, 1.0)])

    with pytest.raises(store.CopyConflict), store.unguarded_copies(), transaction.atomic():
        assert store.write_samples([(cpu, T0 + seconds(10), 2.0)]) == 1
        store.write_samples([(cpu, T0 + seconds(20), 3.0), (cpu, T0, 1.0)])

    assert store.count_samples([cpu]) == 1


def contact_kept(web) -> bool:
    web.refresh_from_db()
    return web.last_seen is not None


@pytest.mark.django_db(transaction=True)
def test_a_usual_batch_meeting_a_day_without_partition_loses_its_contact_too(web):
    cpu = series_id(web)
    far = datetime.now(UTC) + timedelta(days=400)

    with pytest.raises(store.CopyConflict):
        store.copy_after(
            contact_statement("web-1"), store.RowArrays.of_rows([(cpu, far, 1.0)]), lambda row: True
        )

    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert not contact_kept(web)
    assert store.count_samples([cpu]) == 0


@pytest.mark.django_db(transaction=True)
def test_a_usual_batch_keeps_each_series_newest_value_exactly(web):
    store.ensure_partitions_ahead()
    values = [0.1 + 0.2, 5e-324, -0.0, 1.7976931348623157e308, -123456.789012345678]
    ids = [series_id(web, f"m{n}") for n in range(len(values))]
    now = datetime.now(UTC).replace(microsecond=123457)
    older = [(series, now - seconds(1), 9.0) for series in ids]
    # The newest first: a series' newest value is its latest sample's, wherever it stands.
    rows = [(series, now, value) for series, value in zip(ids, values, strict=True)] + older

    assert store.copy_after(
        contact_statement("web-1"), store.RowArrays.of_rows(rows), lambda row: True
    )

    latest = {value.series_id: value for value in store.latest_values([web.pk])}
    assert [math.copysign(1, latest[series].value) for series in ids] == [
        math.copysign(1, value) for value in values
    ]
    assert [latest[series].value for series in ids] == values
    assert {latest[series].ts for series in ids} == {now}
    assert store.count_samples(ids) == 2 * len(ids)


@pytest.mark.django_db(transaction=True)
def test_a_usual_batch_names_its_agent_safely(web):
    odd = "web-'1'; DROP TABLE samples; --\\"
    Instance.register(odd)

    assert store.copy_after(
        contact_statement(odd), store.RowArrays.of_rows([]), lambda row: row is not None
    )

    assert Instance.objects.get(agent_id=odd).last_seen is not None
    assert not contact_kept(web)


@pytest.mark.django_db(transaction=True)
def test_a_batch_refused_on_its_first_row_keeps_nothing(web):
    store.ensure_partitions_ahead()
    cpu, now = series_id(web), datetime.now(UTC)
    rows_seen = []

    def refuse(row):
        rows_seen.append(row)
        return False

    assert not store.copy_after(
        contact_statement("web-1"), store.RowArrays.of_rows([(cpu, now, 1.0)]), refuse
    )

    assert [instance_of_contact(row).pk for row in rows_seen] == [web.pk]
    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert not contact_kept(web)
    assert store.count_samples([cpu]) == 0
    assert store.copy_after(
        contact_statement("web-1"), store.RowArrays.of_rows([(cpu, now, 1.0)]), lambda row: True
    )
    assert contact_kept(web)
    assert store.count_samples([cpu]) == 1


@pytest.mark.django_db(transaction=True)
def test_a_failure_deciding_on_the_first_row_keeps_nothing(web):
    cpu = series_id(web)

    def fail(row):
        raise RuntimeError("deciding failed")

    with pytest.raises(RuntimeError):
        store.copy_after(
            contact_statement("web-1"),
            store.RowArrays.of_rows([(cpu, datetime.now(UTC), 1.0)]),
            fail,
        )

    assert connection.connection.info.transaction_status == pq.TransactionStatus.IDLE
    assert not contact_kept(web)
    assert store.count_samples([cpu]) == 0


@pytest.mark.django_db(transaction=True)
def test_an_agent_never_registered_has_no_contact_row(web):
    cpu, rows_seen = series_id(web), []

    store.copy_after(
        contact_statement("nobody"),
        store.RowArrays.of_rows([(cpu, datetime.now(UTC), 1.0)]),
        rows_seen.append,
    )

    assert rows_seen == [None]
    assert store.count_samples([cpu]) == 0


def test_duplicates_inside_one_write_are_stored_once(web):
    cpu = series_id(web)

    written = store.write_samples([(cpu, T0, 1.0), (cpu, T0, 1.0), (cpu, T0 + seconds(1), 3.0)])

    assert written == 2
    assert store.count_samples([cpu]) == 2


def test_written_samples_read_back_exactly_as_given(web, db_host):
    cpu, disk = series_id(web), series_id(db_host, "disk_used", mount="/")
    other_zone = timezone(timedelta(hours=5, minutes=30))
    rows = [
        (cpu, T0 + timedelta(microseconds=123_457), 0.1),
        (cpu, T0 + seconds(1), -1.5e308),
        (cpu, T0 + seconds(2), 5e-324),
        (disk, (T0 + seconds(3)).astimezone(other_zone), 42),
        (disk, T0 + seconds(4), -0.0),
    ]

    assert store.write_samples(rows) == 5

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT series_id, ts, value FROM samples WHERE series_id = ANY(%s) "
            "ORDER BY series_id, ts",
            [[cpu, disk]],
        )
        stored = cursor.fetchall()
    assert stored == sorted(rows, key=lambda row: (row[0], row[1]))
    assert math.copysign(1, stored[-1][2]) == -1


# --- series -----------------------------------------------------------------------------------


def test_resolving_a_series_creates_it_once_whatever_the_label_order(web):
    first = store.resolve_series(web.pk, [SeriesKey("disk_used", {"mount": "/", "dev": "sda"})])
    again = store.resolve_series(web.pk, [SeriesKey("disk_used", {"dev": "sda", "mount": "/"})])

    assert first == again
    assert Series.objects.filter(instance=web, name="disk_used").count() == 1


def test_resolving_past_the_series_limit_raises_and_creates_nothing(web, settings):
    settings.SERIES_LIMIT_PER_INSTANCE = 3
    store.resolve_series(web.pk, [SeriesKey("cpu_usage", {"core": "0"})])
    keys = [SeriesKey("cpu_usage", {"core": str(core)}) for core in range(4)]

    with pytest.raises(store.SeriesLimitExceeded) as raised:
        store.resolve_series(web.pk, keys)

    assert (raised.value.new_series, raised.value.limit) == (3, 3)
    assert Series.objects.filter(instance=web).count() == 1


def test_the_series_limit_counts_per_instance(web, db_host, settings):
    settings.SERIES_LIMIT_PER_INSTANCE = 2
    store.resolve_series(web.pk, [SeriesKey("a", {}), SeriesKey("b", {})])

    created = store.resolve_series(db_host.pk, [SeriesKey("a", {}), SeriesKey("b", {})])

    assert len(created) == 2


# --- reads ------------------------------------------------------------------------------------


def test_series_points_aggregate_each_bucket(web):
    cpu = series_id(web)
    rows = [(cpu, T0 + seconds(10 * i), float((i * 7) % 13) + 0.5) for i in range(60)]
    store.write_samples(rows)
    stride = seconds(100)

    buckets = store.series_points(cpu, T0, T0 + seconds(600), buckets=6, resolution="raw")

    expected = {}
    for _, ts, value in rows:
        expected.setdefault(T0 + stride * ((ts - T0) // stride), []).append(value)
    assert [bucket.ts for bucket in buckets] == sorted(expected)
    for bucket in buckets:
        values = expected[bucket.ts]
        assert (bucket.min, bucket.max, bucket.last, bucket.count) == (
            min(values),
            max(values),
            values[-1],
            len(values),
        )
        assert bucket.avg == pytest.approx(sum(values) / len(values))


def test_series_points_leave_out_samples_outside_the_range(web):
    cpu = series_id(web)
    store.write_samples([(cpu, T0 - seconds(1), 100.0), (cpu, T0, 1.0), (cpu, T0 + seconds(60), 2)])

    buckets = store.series_points(cpu, T0, T0 + seconds(60), buckets=1)

    assert [(bucket.ts, bucket.count, bucket.max) for bucket in buckets] == [(T0, 1, 1.0)]


def test_latest_values_give_the_newest_sample_of_each_series(web, db_host):
    web_cpu, web_mem, db_cpu = series_id(web), series_id(web, "mem_used"), series_id(db_host)
    store.write_samples(
        [
            (web_cpu, T0, 1.0),
            (web_cpu, T0 + seconds(20), 2.0),
            (web_cpu, T0 + seconds(10), 3.0),
            (web_mem, T0, 4.0),
            (db_cpu, T0 + seconds(5), 5.0),
        ]
    )

    latest = {(v.series_id, v.ts, v.value) for v in store.latest_values()}

    assert latest == {
        (web_cpu, T0 + seconds(20), 2.0),
        (web_mem, T0, 4.0),
        (db_cpu, T0 + seconds(5), 5.0),
    }


def test_latest_values_filter_by_instance_name_and_time(web, db_host):
    web_cpu, web_mem, db_cpu = series_id(web), series_id(web, "mem_used"), series_id(db_host)
    store.write_samples([(web_cpu, T0, 1.0), (web_mem, T0 + seconds(30), 2.0), (db_cpu, T0, 3.0)])

    by_instance = store.latest_values(instance_ids=[web.pk])
    by_name = store.latest_values(names=["cpu_usage"])
    since = store.latest_values(since=T0 + seconds(10))

    assert {v.series_id for v in by_instance} == {web_cpu, web_mem}
    assert {v.series_id for v in by_name} == {web_cpu, db_cpu}
    assert [(v.series_id, v.instance_id, v.name) for v in since] == [(web_mem, web.pk, "mem_used")]


def newest_in_samples() -> set[tuple[int, datetime, float]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT ON (series_id) series_id, ts, value FROM samples "
            "ORDER BY series_id, ts DESC"
        )
        return set(cursor.fetchall())


def test_latest_values_kept_by_the_write_path_match_the_samples(web, db_host):
    cpu, mem, db_cpu = series_id(web), series_id(web, "mem_used"), series_id(db_host)
    store.write_samples([(cpu, T0 + seconds(30), 1.0), (cpu, T0 + seconds(10), 2.0)])
    # Late samples, and a replay of the newest time with another value (storage keeps the first).
    store.write_samples([(cpu, T0, 3.0), (cpu, T0 + seconds(30), 9.0), (mem, T0, 4.0)])
    with pytest.raises(RuntimeError), transaction.atomic():
        store.write_samples([(db_cpu, T0 + seconds(50), 5.0)])
        raise RuntimeError("the batch fails after its samples were written")
    store.write_samples([(db_cpu, T0 + seconds(40), 6.0), (mem, T0 + seconds(5), 7.0)])

    latest = {(v.series_id, v.ts, v.value) for v in store.latest_values()}

    assert latest == newest_in_samples()
    assert latest == {
        (cpu, T0 + seconds(30), 1.0),
        (mem, T0 + seconds(5), 7.0),
        (db_cpu, T0 + seconds(40), 6.0),
    }


def test_latest_values_read_the_series_rows_not_the_samples(web):
    series = [series_id(web, "cpu_usage", core=str(core)) for core in range(20)]
    store.write_samples([(s, T0 - seconds(i), float(i)) for s in series for i in range(200)])
    queries = []

    def capture(execute, sql, params, many, context):
        queries.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        assert len(store.latest_values(instance_ids=[web.pk])) == 20
    [(sql, params)] = queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "samples" not in plan, plan


def test_migration_fills_the_newest_sample_of_existing_series(web):
    cpu, mem = series_id(web), series_id(web, "mem_used")
    store.write_samples([(cpu, T0, 1.0), (cpu, T0 + seconds(20), 2.0), (mem, T0, 3.0)])
    Series.objects.update(last_ts=None, last_value=None)
    fill = importlib.import_module("instances.migrations.0004_series_latest").FILL_FROM_SAMPLES

    with connection.cursor() as cursor:
        cursor.execute(fill)

    assert {(v.series_id, v.ts, v.value) for v in store.latest_values()} == newest_in_samples()


def test_window_aggregates_cover_every_aggregation():
    assert set(WINDOW_EXPECTATIONS) == set(store.WINDOW_AGGREGATES)


WINDOW_EXPECTATIONS = {
    "last": lambda samples: samples[-1][1],
    "avg": lambda samples: sum(v for _, v in samples) / len(samples),
    "min": lambda samples: min(v for _, v in samples),
    "max": lambda samples: max(v for _, v in samples),
    "sum": lambda samples: sum(v for _, v in samples),
    "count": lambda samples: float(len(samples)),
    "p95": lambda samples: percentile_cont([v for _, v in samples], 0.95),
    "rate": lambda samples: (
        max(samples[-1][1] - samples[0][1], 0) / (samples[-1][0] - samples[0][0]).total_seconds()
    ),
}


@pytest.mark.parametrize("aggregation", sorted(WINDOW_EXPECTATIONS))
def test_window_aggregates_match_values_computed_here(web, aggregation):
    counter, gauge = series_id(web, "requests_total"), series_id(web, "cpu_usage")
    start, end = T0, T0 + seconds(300)
    windows = {
        counter: [(start + seconds(15 * i), 100.0 + 7 * i + (i % 3)) for i in range(20)],
        gauge: [(start + seconds(13 * i), float((i * 11) % 17)) for i in range(23)],
    }
    outside = [(counter, start - seconds(1), 0.0), (gauge, end, 1000.0)]
    store.write_samples(
        [(s, ts, v) for s, samples in windows.items() for ts, v in samples] + outside
    )

    result = store.window_aggregates([counter, gauge], start, end, aggregation)

    expected = {s: WINDOW_EXPECTATIONS[aggregation](samples) for s, samples in windows.items()}
    assert result == pytest.approx(expected)


# float64's largest finite value and its smallest subnormal: the ingest API accepts both.
MAX, TINY = 1.7976931348623157e308, 5e-324
# Windows whose sums are the same in any order of addition: float64 then has one answer.
EXTREME_WINDOWS = {
    "overflowing": [MAX, MAX],
    "cancelling": [-MAX, MAX],
    "absorbing": [MAX, 1.0, -1.0],
    "subnormal": [TINY, TINY, TINY],
    "vanishing_mean": [-TINY, -TINY, TINY],
    "halved_subnormal": [TINY, 0.0],
}


def same_float(a, b) -> bool:
    """Equal as float64 values are, NaN included (the sign of a zero aside)."""
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("aggregation", sorted(WINDOW_EXPECTATIONS))
def test_window_aggregates_follow_float64_at_its_extremes(web, aggregation):
    start = T0
    windows = {
        series_id(web, name): [(start + seconds(10 * i), value) for i, value in enumerate(values)]
        for name, values in EXTREME_WINDOWS.items()
    }
    store.write_samples([(s, ts, v) for s, samples in windows.items() for ts, v in samples])

    result = store.window_aggregates(list(windows), start, start + seconds(60), aggregation)

    expected = {s: WINDOW_EXPECTATIONS[aggregation](samples) for s, samples in windows.items()}
    assert all(same_float(result[s], expected[s]) for s in windows), (result, expected)


def test_analytics_aggregates_follow_float64_at_its_extremes(web):
    ids = {name: series_id(web, name) for name in EXTREME_WINDOWS}
    store.write_samples(
        [
            (ids[name], T0 + seconds(10 * i), value)
            for name, values in EXTREME_WINDOWS.items()
            for i, value in enumerate(values)
        ]
    )
    window = T0, T0 + seconds(60)

    aggregates = {a.name: a for a in store.metric_aggregates(*window, [web.pk])}
    trends = store.metric_trends(list(ids), *window, buckets=1, instance_ids=[web.pk])

    for name, values in EXTREME_WINDOWS.items():
        mean = sum(values) / len(values)
        assert same_float(aggregates[name].avg, mean), (name, aggregates[name].avg, mean)
        assert (aggregates[name].min, aggregates[name].max) == (min(values), max(values))
        assert same_float(trends[(web.pk, name)][0][1], mean)


def test_window_aggregates_of_an_empty_window(web):
    cpu = series_id(web)
    store.write_samples([(cpu, T0, 5.0)])

    later = T0 + seconds(60), T0 + seconds(120)

    assert store.window_aggregates([cpu], *later, "avg") == {cpu: None}
    assert store.window_aggregates([cpu], *later, "count") == {cpu: 0.0}
    assert store.window_aggregates([cpu], T0, T0 + seconds(60), "rate") == {cpu: None}


def test_recent_samples_come_newest_first_up_to_the_limit(web, db_host):
    web_cpu, db_cpu = series_id(web), series_id(db_host)
    rows = [(web_cpu, T0 + seconds(2 * i), float(i)) for i in range(10)]
    rows += [(db_cpu, T0 + seconds(2 * i + 1), float(100 + i)) for i in range(10)]
    store.write_samples(rows)

    recent = store.recent_samples(limit=5)

    newest = sorted(rows, key=lambda row: row[1], reverse=True)[:5]
    assert [(s.series_id, s.ts, s.value) for s in recent] == newest


def test_recent_samples_filter_by_instance_and_time(web, db_host):
    web_cpu, db_cpu = series_id(web), series_id(db_host)
    store.write_samples([(web_cpu, T0 + seconds(i), float(i)) for i in range(10)])
    store.write_samples([(db_cpu, T0 + seconds(i), float(i)) for i in range(10)])

    recent = store.recent_samples(
        instance_ids=[web.pk], start=T0 + seconds(3), end=T0 + seconds(6), limit=100
    )

    assert [(s.series_id, s.value) for s in recent] == [
        (web_cpu, 5.0),
        (web_cpu, 4.0),
        (web_cpu, 3.0),
    ]


# --- the series-id cache ----------------------------------------------------------------------


def test_series_ids_are_remembered_once_their_transaction_commits(
    web, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        cpu = series_id(web)
    assert web.pk not in store._SERIES_IDS

    for callback in callbacks:
        callback()

    assert store._SERIES_IDS[web.pk] == {("cpu_usage", b"{}"): cpu}
    assert series_id(web) == cpu


def test_a_series_made_by_a_batch_that_rolled_back_is_not_remembered(
    web, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            series_id(web, "doomed")
            raise RuntimeError("the batch failed")
        kept = series_id(web, "kept")

    assert store._SERIES_IDS[web.pk] == {("kept", b"{}"): kept}
    assert not Series.objects.filter(name="doomed").exists()


def test_deleting_an_instance_forgets_its_series_ids(web, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        series_id(web)
    assert web.pk in store._SERIES_IDS

    web.delete()

    assert web.pk not in store._SERIES_IDS


# --- PromQL reads -------------------------------------------------------------------------------


def ms_of(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_sample_arrays_come_by_series_then_time_whatever_order_they_were_written_in(web):
    cpu, memory = series_id(web, "cpu_usage"), series_id(web, "memory_usage")
    # Newest first, then late samples older than those stored, and a staleness marker between
    # two samples: the table holds them out of time order.
    store.write_samples([(memory, T0 + seconds(40), 4.0), (cpu, T0 + seconds(30), 3.0)])
    store.write_samples([(cpu, T0 + seconds(10), 1.0), (memory, T0, 0.5)])
    store.write_samples([(cpu, T0, 0.0)])
    store.write_staleness_markers(web.pk, [(SeriesKey("cpu_usage", {}), T0 + seconds(20))])

    arrays = store.sample_arrays([memory, cpu], ms_of(T0), ms_of(T0 + seconds(40)), limit=10)

    ms = ms_of(T0)
    assert arrays.series_id.tolist() == sorted([cpu] * 4 + [memory] * 2)
    by_series = {
        sid: list(zip(arrays.ts_ms[arrays.series_id == sid].tolist(), values, strict=True))
        for sid in (cpu, memory)
        for values in [arrays.value[arrays.series_id == sid].tolist()]
    }
    assert by_series[memory] == [(ms, 0.5), (ms + 40_000, 4.0)]
    assert by_series[cpu][:2] == [(ms, 0.0), (ms + 10_000, 1.0)]
    assert by_series[cpu][2][0] == ms + 20_000 and math.isnan(by_series[cpu][2][1])
    assert by_series[cpu][3] == (ms + 30_000, 3.0)


def test_sample_arrays_refuse_more_samples_than_the_limit(web):
    cpu = series_id(web)
    store.write_samples([(cpu, T0 + seconds(n), float(n)) for n in range(5)])

    assert len(store.sample_arrays([cpu], ms_of(T0), ms_of(T0 + seconds(4)), limit=5).value) == 5
    with pytest.raises(store.TooManySamples):
        store.sample_arrays([cpu], ms_of(T0), ms_of(T0 + seconds(4)), limit=4)


@pytest.mark.parametrize(
    ("op", "pattern", "expected"),
    [
        # Literal alternatives, as a dashboard variable writes its values.
        ("=~", "web-1|db-1", {"web-1", "db-1"}),
        ("=~", r"web\.2|web-1", {"web.2", "web-1"}),
        ("=~", "web.2", {"web.2", "web-2"}),  # "." is any character here
        ("!~", "web-1|db-1", {"web.2", "web-2"}),
        ("=~", "", set()),
        # And regexes that are not, for comparison.
        ("=~", r"web-\d", {"web-1", "web-2"}),
        ("!~", "web.*", {"db-1"}),
    ],
)
def test_instance_regexes_match_whole_values(op, pattern, expected):
    for agent_id in ("web-1", "db-1", "web.2", "web-2"):
        series_id(Instance.register(agent_id))
    matchers = [
        {"label": "__name__", "op": "=", "value": "cpu_usage"},
        {"label": "instance", "op": op, "value": pattern},
    ]

    assert {series.labels["instance"] for series in store.match_series([matchers])} == expected


@pytest.mark.parametrize(
    ("op", "pattern", "expected"),
    [
        ("=~", "user|system", {"user", "system"}),
        ("=~", "user|", {"user", ""}),  # the empty alternative matches a series without it
        ("!~", "user|", {"system", "idle"}),
        ("=~", r"user\|system", set()),  # an escaped bar is the character
        ("=~", "us|er", set()),  # whole values only
    ],
)
def test_label_regexes_of_literal_alternatives_match_whole_values(web, op, pattern, expected):
    for mode in ("user", "system", "idle"):
        series_id(web, mode=mode)
    series_id(web)
    matchers = [
        {"label": "__name__", "op": "=", "value": "cpu_usage"},
        {"label": "mode", "op": op, "value": pattern},
    ]

    found = store.match_series([matchers])

    assert {series.labels.get("mode", "") for series in found} == expected
