"""``*_over_time`` over long ranges read from rollups give the answers the raw samples give."""

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from instances import store
from instances.formats import EPOCH
from instances.models import Instance
from instances.rollups import refresh_rollups
from instances.store import SeriesKey
from query.engine import SampleLimitExceeded, evaluate
from query.values import Vector

pytestmark = pytest.mark.django_db

FUNCTIONS = ["sum_over_time", "count_over_time", "avg_over_time", "min_over_time", "max_over_time"]
NOW_MS = int(datetime.now(UTC).timestamp()) * 1000
HOURS = 3_600_000


def as_time(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def write_series(instance, labels: dict, start_ms: int, end_ms: int, gap_s: int, seed: int):
    """Samples ``gap_s`` apart (give or take a few hundred ms), random values; returns them as
    (ms, value) arrays."""
    key = SeriesKey("disk_busy", labels)
    series_id = store.resolve_series(instance.pk, [key])[(key.name, key.labels_key)]
    rng = random.Random(seed)
    stamps, values, ts = [], [], start_ms
    while ts <= end_ms:
        stamps.append(ts)
        values.append(rng.uniform(-20, 120))
        ts += gap_s * 1000 + rng.randrange(-300, 300)
    store.write_samples([(series_id, as_time(t), v) for t, v in zip(stamps, values, strict=True)])
    return np.array(stamps), np.array(values)


def expected(function: str, stamps, values, ends: np.ndarray, range_ms: int):
    """What Prometheus computes: the samples in each closed window ``[end - range, end]``."""
    figures = []
    for end in ends:
        inside = values[(stamps >= end - range_ms) & (stamps <= end)]
        if not len(inside):
            figures.append(None)
            continue
        figures.append(
            {
                "sum_over_time": inside.sum(),
                "count_over_time": float(len(inside)),
                "avg_over_time": inside.mean(),
                "min_over_time": inside.min(),
                "max_over_time": inside.max(),
            }[function]
        )
    return figures


def answered(result: Vector, disk: str) -> list:
    (row,) = [i for i, labels in enumerate(result.labels) if labels["disk"] == disk]
    return [
        float(value) if present else None
        for value, present in zip(result.values[row], result.present[row], strict=True)
    ]


def assert_same(ours: list, theirs: list):
    assert len(ours) == len(theirs)
    for got, want in zip(ours, theirs, strict=True):
        if want is None:
            assert got is None
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


@pytest.fixture
def disks():
    """Seven hours of two series up to now, 15 s and 60 s apart, rolled up."""
    host = Instance.register("db-7")
    start = NOW_MS - 7 * HOURS
    samples = {
        "sda": write_series(host, {"disk": "sda"}, start, NOW_MS, 15, seed=1),
        "sdb": write_series(host, {"disk": "sdb"}, start, NOW_MS, 60, seed=2),
    }
    refresh_rollups(now=as_time(NOW_MS))
    return host, samples


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize(
    ("range_text", "range_ms"), [("1h", HOURS), ("20m", 20 * 60_000), ("3h", 3 * HOURS)]
)
def test_long_windows_answer_as_the_raw_samples_do(disks, function, range_text, range_ms):
    _, samples = disks
    # Steps neither on bucket edges nor a bucket apart, ending at now: the newest windows reach
    # past what the rollups hold.
    start, end, step = NOW_MS - 4 * HOURS + 7_777, NOW_MS, 7 * 60_000 + 13_000
    result = evaluate(f"{function}(disk_busy[{range_text}])", start, end, step)
    ends = np.arange(start, end + 1, step)
    for disk, (stamps, values) in samples.items():
        assert_same(answered(result, disk), expected(function, stamps, values, ends, range_ms))
    assert all("__name__" not in labels for labels in result.labels)


def test_offset_and_at_move_the_windows_read_from_rollups(disks):
    _, samples = disks
    start, end, step = NOW_MS - 2 * HOURS, NOW_MS, 10 * 60_000
    result = evaluate("avg_over_time(disk_busy[90m] offset 2h)", start, end, step)
    ends = np.arange(start, end + 1, step) - 2 * HOURS
    for disk, (stamps, values) in samples.items():
        assert_same(
            answered(result, disk), expected("avg_over_time", stamps, values, ends, 90 * 60_000)
        )
    at = NOW_MS - 3 * HOURS - 123_456
    pinned = evaluate(f"max_over_time(disk_busy[2h] @ {at / 1000})", start, end, step)
    stamps, values = samples["sda"]
    want = expected("max_over_time", stamps, values, np.array([at]), 2 * HOURS)[0]
    assert answered(pinned, "sda") == [pytest.approx(want)] * len(ends)


def test_a_long_window_reads_buckets_not_every_sample(disks):
    """An hour of the 15 s series is 240 samples; from 5-minute buckets and the raw edges it is
    a few dozen rows, within a sample limit the raw samples would pass."""
    _, samples = disks
    at = NOW_MS - 3 * HOURS + 150_000
    limit = 100
    result = evaluate('avg_over_time(disk_busy{disk="sda"}[1h])', at, at, 1000, max_samples=limit)
    stamps, values = samples["sda"]
    assert answered(result, "sda") == [
        pytest.approx(expected("avg_over_time", stamps, values, np.array([at]), HOURS)[0])
    ]
    with pytest.raises(SampleLimitExceeded):
        evaluate('last_over_time(disk_busy{disk="sda"}[1h])', at, at, 1000, max_samples=limit)


def test_a_late_sample_into_rolled_up_buckets_counts_before_the_next_refresh(disks):
    host, samples = disks
    stamps, values = samples["sdb"]
    late_ms = NOW_MS - 5 * HOURS + 1_234
    key = SeriesKey("disk_busy", {"disk": "sdb"})
    series_id = store.resolve_series(host.pk, [key])[(key.name, key.labels_key)]
    store.write_samples([(series_id, as_time(late_ms), 10_000.0)])
    at = NOW_MS - 4 * HOURS
    result = evaluate('max_over_time(disk_busy{disk="sdb"}[2h])', at, at, 1000)
    assert answered(result, "sdb") == [10_000.0]
    order = np.argsort(np.append(stamps, late_ms))
    with_late = (np.append(stamps, late_ms)[order], np.append(values, 10_000.0)[order])
    result = evaluate('sum_over_time(disk_busy{disk="sdb"}[2h])', at, at, 1000)
    want = expected("sum_over_time", *with_late, np.array([at]), 2 * HOURS)
    assert_same(answered(result, "sdb"), want)


def test_windows_on_hour_edges_read_hourly_buckets(disks):
    """Windows that are whole hours read one hourly bucket each (and the sample at their end),
    not twelve 5-minute buckets."""
    _, samples = disks
    end = (NOW_MS - 2 * HOURS) // HOURS * HOURS
    start = end - 3 * HOURS
    result = evaluate('sum_over_time(disk_busy{disk="sda"}[1h])', start, end, HOURS, max_samples=12)
    stamps, values = samples["sda"]
    ends = np.arange(start, end + 1, HOURS)
    assert_same(answered(result, "sda"), expected("sum_over_time", stamps, values, ends, HOURS))
