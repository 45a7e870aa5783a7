"""Compacted history: closed days of samples become blocks, and every reader still sees one
continuous series whether a day is raw, compacted, or both (late samples)."""

import math
import os
import signal
import struct
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.db import connection

from backups import dumps, postgres
from bench.common import database_dsn, database_url
from instances import compaction, retention, rollups, store, tasks
from instances.models import Instance
from instances.store import BLOCKS, SAMPLES, SeriesKey
from tests.test_backups import admin_conn, backup_dir, empty_database, manage_py

# The backup test's fixtures: a connection of the test's own, and a backup directory per test.
__all__ = ["admin_conn", "backup_dir"]

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
# Three days ago: closed, and older than any grace window.
DAY = (datetime.now(UTC) - timedelta(days=3)).date()
MIDNIGHT = datetime.combine(DAY, datetime.min.time(), UTC)
# Prometheus's staleness marker: a NaN with a payload, which must come back bit for bit.
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def series_id(instance, name="node_cpu_seconds_total", **labels) -> int:
    key = SeriesKey(name, labels)
    return store.resolve_series(instance.pk, [key])[(key.name, key.labels_key)]


@pytest.fixture
def web():
    return Instance.register("web-1")


def awkward_rows(sid: int) -> list[tuple[int, datetime, float]]:
    """A day of a series at 15 s, with odd gaps, microsecond times, the first sample at
    midnight and the last just before the next, and values float64 has trouble with."""
    stamps = [MIDNIGHT + timedelta(seconds=15 * n) for n in range(2000)]
    stamps += [MIDNIGHT + timedelta(hours=10, microseconds=7 + 1_234_567 * n) for n in range(50)]
    stamps += [MIDNIGHT + timedelta(hours=20, seconds=n * n) for n in range(100)]
    stamps.append(MIDNIGHT + timedelta(days=1) - timedelta(microseconds=1))
    specials = [STALE_NAN, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.1]
    values = [specials[n % len(specials)] if n % 97 == 0 else n * 0.37 for n in range(len(stamps))]
    return [(sid, ts, value) for ts, value in zip(stamps, values, strict=True)]


def bits(arrays: store.SampleArrays) -> tuple[list, list, list]:
    return arrays.series_id.tolist(), arrays.ts_ms.tolist(), arrays.value.view(np.int64).tolist()


def exact_rows(series_ids: list[int], start: datetime, end: datetime) -> list[tuple]:
    """(series, ts, value bits) through the SQL readers' function, by series and time."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT series_id, ts, float8send(value) FROM samples_between(%s, %s, %s) "
            "ORDER BY series_id, ts",
            [series_ids, start, end],
        )
        return [(sid, ts, bytes(value)) for sid, ts, value in cursor.fetchall()]


def blocks_of(day: date) -> list[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT series_id, count FROM sample_blocks WHERE day = %s ORDER BY series_id",
            [datetime.combine(day, datetime.min.time(), UTC)],
        )
        return cursor.fetchall()


def folded(report: compaction.CompactionReport) -> dict[date, int]:
    """The days a compaction folded samples of (partitions other tests left go too: a test
    looks at its own days)."""
    return {day: samples for day, samples in report.days.items() if samples}


def ms(ts: datetime) -> int:
    return (ts - store.EPOCH) // timedelta(milliseconds=1)


def test_a_compacted_day_reads_back_bit_for_bit(web):
    cpu, load = series_id(web), series_id(web, "node_load1")
    rows = awkward_rows(cpu) + [(load, MIDNIGHT + timedelta(minutes=n), n / 3) for n in range(9)]
    store.write_samples(rows)
    window = (ms(MIDNIGHT) - 1, ms(MIDNIGHT + timedelta(days=1)))
    raw_arrays = bits(store.sample_arrays([cpu, load], *window, limit=10_000))
    raw_rows = exact_rows([cpu, load], MIDNIGHT, MIDNIGHT + timedelta(days=1))
    assert len(raw_rows) == len(rows)
    # Short windows read only some hours of a block: across hours without samples, on hour
    # edges, at the day's ends.
    hour = 3_600_000
    windows = [
        (ms(MIDNIGHT) + first, ms(MIDNIGHT) + last)
        for first, last in [
            (0, hour - 1), (hour, 2 * hour), (8 * hour, 10 * hour + 5000), (9 * hour, 19 * hour),
            (10 * hour + 1234, 10 * hour + 9999), (15 * hour, 21 * hour), (-hour, 30 * 60_000),
            (23 * hour, 25 * hour), (13 * hour, 14 * hour), (5 * hour + 7, 20 * hour + 13),
        ]
    ]  # fmt: skip
    raw_windows = [bits(store.sample_arrays([cpu, load], *w, limit=10_000)) for w in windows]
    assert all(ids for ids, _, _ in raw_windows[:3])

    assert folded(compaction.compact_samples()).get(DAY) == len(rows)

    assert SAMPLES.partition_name(DAY) not in store.list_partitions(SAMPLES)
    assert blocks_of(DAY) == [(cpu, len(rows) - 9), (load, 9)]
    assert bits(store.sample_arrays([cpu, load], *window, limit=10_000)) == raw_arrays
    assert exact_rows([cpu, load], MIDNIGHT, MIDNIGHT + timedelta(days=1)) == raw_rows
    assert [bits(store.sample_arrays([cpu, load], *w, limit=10_000)) for w in windows] == (
        raw_windows
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT hour_starts[1:3], hour_starts[10:11], hour_bases_us[10] FROM sample_blocks "
            "WHERE series_id = %s",
            [cpu],
        )
        # 240 samples an hour up to 08:20, none in hour 9: it starts where hour 10 does.
        assert cursor.fetchone() == ([1, 241, 481], [2001, 2001], 1999 * 15_000_000)
    # A block compacted before the hour index existed is read whole, as well.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE sample_blocks SET hour_starts = NULL, hour_bases_us = NULL")
    assert [bits(store.sample_arrays([cpu, load], *w, limit=10_000)) for w in windows] == (
        raw_windows
    )
    assert store.count_samples() == len(rows)
    assert store.count_samples([load]) == 9
    # A window inside the day reads only its samples, and the limit still holds.
    inside = bits(store.sample_arrays([cpu], ms(MIDNIGHT) + 15_000, ms(MIDNIGHT) + 45_000, 10))
    assert inside[1] == [ms(MIDNIGHT) + 15_000, ms(MIDNIGHT) + 30_000, ms(MIDNIGHT) + 45_000]
    with pytest.raises(store.TooManySamples):
        store.sample_arrays([cpu], *window, limit=100)


def test_the_store_readers_answer_the_same_over_compacted_days(web):
    cpu, load = series_id(web), series_id(web, "node_load1", core="1")
    days = [MIDNIGHT + timedelta(days=n) for n in (-1, 0)]
    rows = [
        (sid, day + timedelta(seconds=30 * n), float((n * 7919) % 1000) + sid)
        for day in days
        for sid in (cpu, load)
        for n in range(0, 2880, 3)
    ]
    store.write_samples(rows)
    start, end = days[0] + timedelta(hours=5), days[1] + timedelta(hours=20)

    def answers():
        return {
            "aggregates": {
                name: store.window_aggregates([cpu, load], start, end, name)
                for name in store.WINDOW_AGGREGATES
            },
            "values": store.window_values("node_load1", [], None, start, end, "avg"),
            "metric": store.metric_aggregates(start, end),
            "trends": store.metric_trends(["node_load1"], start, end, 40),
            "recent": store.recent_samples(limit=7),
            "recent_window": store.recent_samples(start=start, end=end, limit=5),
            "at": store.sample_at(cpu, days[1] + timedelta(seconds=90)),
            "points": store.points_of_series([cpu, load], start, end, 50, "raw"),
            "bounds": store.sample_time_bounds(),
        }

    before = answers()
    assert before["at"] is not None and before["recent"]
    compaction.compact_samples()
    # Only this test's days: partitions other tests' data left behind may be there too.
    written = {DAY - timedelta(days=1), DAY}
    assert written <= set(store.stored_days())
    assert not written & set(map(SAMPLES.partition_start, store.list_partitions(SAMPLES)))

    assert answers() == before


def test_late_samples_into_a_compacted_day_are_read_at_once_and_merged_by_the_next_compaction(
    web,
):
    cpu = series_id(web)
    rows = [(cpu, MIDNIGHT + timedelta(minutes=n), float(n)) for n in range(0, 600, 2)]
    store.write_samples(rows)
    compaction.compact_samples()

    late = [(cpu, MIDNIGHT + timedelta(minutes=n), -float(n)) for n in range(1, 601, 2)]
    replayed = rows[:10]
    clashing = [(cpu, rows[20][1], 123456.0)]
    assert store.write_samples(late + replayed + clashing) == len(late)
    assert SAMPLES.partition_name(DAY) in store.list_partitions(SAMPLES)
    assert store.count_samples() == 600
    window = (ms(MIDNIGHT), ms(MIDNIGHT + timedelta(days=1)))
    merged = store.sample_arrays([cpu], *window, limit=1000)
    assert merged.ts_ms.tolist() == [ms(MIDNIGHT) + 60_000 * n for n in range(600)]
    assert merged.value.tolist() == [float(n) if n % 2 == 0 else -float(n) for n in range(600)]

    assert folded(compaction.compact_samples()).get(DAY) == len(late)

    assert blocks_of(DAY) == [(cpu, 600)]
    assert SAMPLES.partition_name(DAY) not in store.list_partitions(SAMPLES)
    assert bits(store.sample_arrays([cpu], *window, limit=1000)) == bits(merged)


def test_only_closed_days_past_the_grace_window_are_compacted(web, settings):
    settings.COMPACTION_GRACE_HOURS = 6
    cpu = series_id(web)
    now = datetime.now(UTC)
    yesterday = datetime.combine(now.date() - timedelta(days=1), datetime.min.time(), UTC)
    store.write_samples([(cpu, now - timedelta(minutes=5), 1.0), (cpu, MIDNIGHT, 2.0)])
    store.write_samples([(cpu, yesterday + timedelta(hours=12), 3.0)])

    at_5am = datetime.combine(now.date(), datetime.min.time(), UTC) + timedelta(hours=5)
    at_7am = at_5am + timedelta(hours=2)

    assert compaction.compactable_days(at_5am) == [DAY]
    assert compaction.compactable_days(at_7am) == [DAY, yesterday.date()]


def test_rollups_are_the_same_from_compacted_days_and_late_minutes_are_recomputed(web):
    cpu = series_id(web)
    store.write_samples([(cpu, MIDNIGHT + timedelta(seconds=20 * n), float(n)) for n in range(900)])

    def rollup_rows():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT series_id, bucket, min, max, sum, count, last FROM samples_1m "
                "UNION ALL SELECT series_id, bucket, min, max, sum, count, last FROM samples_1h "
                "ORDER BY 1, 2, 6"
            )
            return cursor.fetchall()

    rollups.refresh_rollups()
    from_raw = rollup_rows()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE samples_1m, samples_5m, samples_1h, rollup_watermark")
    compaction.compact_samples()
    rollups.refresh_rollups()  # a first refresh: reads every stored day, compacted ones too
    assert rollup_rows() == from_raw and len(from_raw) > 300

    store.write_samples([(cpu, MIDNIGHT + timedelta(minutes=2, seconds=5), 1000.0)])
    rollups.refresh_rollups()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max, count FROM samples_1m WHERE series_id = %s AND bucket = %s",
            [cpu, MIDNIGHT + timedelta(minutes=2)],
        )
        assert cursor.fetchone() == (1000.0, 4)


def test_retention_drops_compacted_days_a_day_at_a_time(web, settings):
    settings.RETENTION_RAW_DAYS = 3
    cpu = series_id(web)
    old, kept = MIDNIGHT - timedelta(days=2), MIDNIGHT
    store.write_samples([(cpu, old + timedelta(hours=1), 1.0), (cpu, kept, 2.0)])
    compaction.compact_samples()
    assert store.count_samples() == 2

    report = retention.apply_retention(now=MIDNIGHT + timedelta(days=3, hours=1))

    assert BLOCKS.partition_name(old.date()) in report.dropped
    assert BLOCKS.partition_name(DAY) not in report.dropped
    # Other tests' days may be there too: this test's two are what it looks at.
    blocks = store.list_partitions(BLOCKS)
    assert BLOCKS.partition_name(DAY) in blocks
    assert BLOCKS.partition_name(old.date()) not in blocks
    assert store.count_samples() == 1


def test_deleting_an_instance_deletes_its_compacted_samples(web):
    other = Instance.register("db-1")
    store.write_samples([(series_id(web), MIDNIGHT, 1.0), (series_id(other), MIDNIGHT, 2.0)])
    compaction.compact_samples()

    store.delete_samples_of_instance(web.pk)

    assert store.count_samples() == 1
    assert store.count_samples([series_id(other)]) == 1


def test_the_command_compacts_and_says_what(web, capsys):
    store.write_samples([(series_id(web), MIDNIGHT + timedelta(hours=n), 1.0) for n in range(5)])
    call_command("compact_samples")
    assert f"{DAY}: 5 raw samples compacted" in capsys.readouterr().out
    call_command("compact_samples")
    assert "no closed day holds raw samples" in capsys.readouterr().out


def test_a_compaction_killed_midway_leaves_the_day_raw_or_compacted_counted_once(web):
    """A real ``manage.py compact_samples`` killed with SIGKILL once it is removing the raw
    rows: the day is then either raw or compacted, never both or neither; the next run
    finishes it."""
    ids = [series_id(web, core=str(n)) for n in range(40)]
    rows = [
        (sid, MIDNIGHT + timedelta(seconds=15 * n), float(n % 50))
        for sid in ids
        for n in range(5760)
    ]
    for at in range(0, len(rows), 50_000):
        store.write_samples(rows[at : at + 50_000])
    window = (ms(MIDNIGHT), ms(MIDNIGHT + timedelta(days=1)))
    before = bits(store.sample_arrays(ids, *window, limit=len(rows)))

    process = subprocess.Popen(
        [sys.executable, "manage.py", "compact_samples", "--verbosity", "2"],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": database_url(database_dsn(), connection.settings_dict["NAME"]),
        },
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in process.stdout:
        if "removing the raw samples" in line:
            os.kill(process.pid, signal.SIGKILL)
            break
    assert process.wait(timeout=60) == -signal.SIGKILL

    assert store.count_samples() == len(rows)
    assert bits(store.sample_arrays(ids, *window, limit=len(rows))) == before
    call_command("compact_samples")
    assert store.count_samples() == len(rows)
    assert len(blocks_of(DAY)) == len(ids)
    assert bits(store.sample_arrays(ids, *window, limit=len(rows))) == before


def test_compacted_samples_take_at_most_12_bytes_each(web):
    """Node-exporter-like series at 15 s: a counter, a noisy gauge, a constant."""
    rng = np.random.default_rng(7)
    stamps = [MIDNIGHT + timedelta(seconds=15 * n) for n in range(5760)]
    counter = np.cumsum(rng.integers(0, 5000, len(stamps))).astype(float)
    gauge = rng.random(len(stamps)) * 100
    rows = []
    for host in range(10):
        cpu, load, total = (
            series_id(web, name, host=str(host))
            for name in ("node_cpu_seconds_total", "node_load1", "node_memory_MemTotal_bytes")
        )
        for n, ts in enumerate(stamps):
            rows += [(cpu, ts, counter[n]), (load, ts, gauge[n]), (total, ts, 8.0e9)]
    store.write_samples(rows)
    compaction.compact_samples()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [BLOCKS.partition_name(DAY)])
        size = cursor.fetchone()[0]
    print(f"{size / len(rows):.2f} B per compacted sample")
    assert size / len(rows) <= 12


def test_a_backup_restores_compacted_and_raw_days_alike(web, admin_conn):
    cpu = series_id(web)
    rows = [(cpu, MIDNIGHT + timedelta(minutes=n), float(n)) for n in range(-1440, 1440, 7)]
    store.write_samples(rows[: len(rows) // 2])
    compaction.compact_day(DAY - timedelta(days=1))
    store.write_samples(rows[len(rows) // 2 :])
    # A late sample into the compacted day, raw beside its blocks. (Finite: pg_dump writes
    # values as text, where every NaN is the same NaN; samples are finite.)
    store.write_samples([(cpu, MIDNIGHT - timedelta(hours=2, seconds=1), -0.0)])
    everything = "SELECT series_id, ts, float8send(value) FROM all_samples_between(%s, %s) "
    bounds = [MIDNIGHT - timedelta(days=1), MIDNIGHT + timedelta(days=1)]

    def stored(dbname=None) -> list:
        with postgres.connect(dbname) as conn:
            return conn.execute(everything + "ORDER BY 1, 2", bounds).fetchall()

    before = stored()
    assert len(before) == len(rows) + 1 and blocks_of(DAY - timedelta(days=1))
    archive = dumps.run_backup().path
    with empty_database(admin_conn) as target:
        result = manage_py(["restore", archive], target)
        assert result.returncode == 0, result.stderr

        assert stored(target) == before


def test_one_compaction_runs_at_a_time(web, capsys):
    store.write_samples([(series_id(web), MIDNIGHT, 1.0)])
    with postgres.connect() as other_worker:
        other_worker.execute(f"SELECT pg_advisory_lock({compaction.LOCK})")

        assert compaction.compact_samples() is None
        call_command("compact_samples")
        assert "another compaction is running" in capsys.readouterr().out
        assert SAMPLES.partition_name(DAY) in store.list_partitions(SAMPLES)
        other_worker.execute(f"SELECT pg_advisory_unlock({compaction.LOCK})")

    assert folded(compaction.compact_samples()).get(DAY) == 1


def test_a_raw_partition_left_detached_by_a_dead_compaction_is_finished_by_the_next(web):
    cpu = series_id(web)
    store.write_samples([(cpu, MIDNIGHT, 1.0), (cpu, MIDNIGHT + timedelta(hours=1), 2.0)])
    compaction.compact_samples()
    store.write_samples([(cpu, MIDNIGHT + timedelta(hours=2), 3.0)])
    # A compaction's worker killed after detaching the partition, before dropping it.
    store.detach_partition(SAMPLES, SAMPLES.partition_name(DAY))

    compaction.compact_samples()

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [SAMPLES.partition_name(DAY)])
        assert cursor.fetchone() == (None,)
    assert blocks_of(DAY) == [(cpu, 3)]
    assert store.write_samples([(cpu, MIDNIGHT + timedelta(hours=3), 4.0)]) == 1
    assert store.count_samples() == 4


def test_the_beat_task_compacts_on_its_schedule(web, settings):
    entry = settings.CELERY_BEAT_SCHEDULE["compact-samples"]
    assert entry["schedule"] == settings.COMPACTION_INTERVAL_SECONDS
    assert entry["task"] == tasks.compact_samples.name
    store.write_samples([(series_id(web), MIDNIGHT + timedelta(minutes=n), 1.0) for n in range(3)])

    assert tasks.compact_samples.delay().get() == 3
    assert blocks_of(DAY) == [(series_id(web), 3)]
