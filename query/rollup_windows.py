"""``sum``, ``count``, ``avg``, ``min`` and ``max_over_time`` over long ranges, read from rollups.

A window ``[t - range, t]`` (closed at both ends, as in Prometheus 2.x) spanning many rollup
buckets is read as the settled buckets wholly inside it plus the raw samples at its two edges,
so the answer is the one the raw samples give (sums to float64 rounding) from a fraction of the
rows. Buckets are used only where they hold every sample: before the rollups' settled end and
for series with no late minutes still queued; otherwise the caller reads raw samples.
"""

from dataclasses import dataclass

import numpy as np

from instances import store
from instances.store import ROLLUP_LEVELS, RollupLevel
from query.values import RangeSeries

ROLLED_UP_FUNCTIONS = frozenset(
    {"sum_over_time", "count_over_time", "avg_over_time", "min_over_time", "max_over_time"}
)
# Windows shorter than ten of the finest buckets gain little over their raw samples.
MIN_RANGE_MS = 10 * int(ROLLUP_LEVELS[0].width.total_seconds() * 1000)
# What a plan's cost counts raw samples as: one per 15 s, a common scrape interval. Rollups are
# read only where the plan reads at most half the rows the raw samples would be.
ASSUMED_SAMPLE_GAP_MS = 15_000


@dataclass
class WindowFigures:
    """Per step, the sum, count, min and max of one series' samples in that step's window."""

    labels: dict
    sum: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray


@dataclass
class Plan:
    """Per step, the buckets ``[rolled_from, rolled_to)`` of ``level`` read for the window
    ``[start, end]``; the raw samples fill ``[start, rolled_from)`` and ``[rolled_to, end]``,
    read in ``raw_spans`` (closed, merged)."""

    level: RollupLevel
    starts: np.ndarray
    rolled_from: np.ndarray
    rolled_to: np.ndarray
    ends: np.ndarray
    raw_spans: np.ndarray


def plan(ends: np.ndarray, range_ms: int, settled_ms: int) -> Plan | None:
    """The rollup level that reads fewest rows for the windows ending at ``ends``, using only
    buckets before ``settled_ms``; None where no level reads half as many as the samples."""
    starts = ends - range_ms
    raw_rows = _covered_ms(_merged(np.column_stack([starts, ends]))) / ASSUMED_SAMPLE_GAP_MS
    best, best_rows = None, raw_rows / 2
    for level in ROLLUP_LEVELS:
        width = int(level.width.total_seconds() * 1000)
        rolled_from = -(-starts // width) * width
        rolled_to = np.minimum(ends // width * width, settled_ms // width * width)
        empty = rolled_from >= rolled_to
        if empty.all():
            continue
        rolled_from = np.where(empty, starts, rolled_from)
        rolled_to = np.where(empty, starts, rolled_to)
        rolled = _merged(np.column_stack([rolled_from, rolled_to - 1])[~empty])
        raw_spans = _merged(
            np.concatenate(
                [np.column_stack([starts, rolled_from - 1]), np.column_stack([rolled_to, ends])]
            )
        )
        rows = _covered_ms(rolled) / width + _covered_ms(raw_spans) / ASSUMED_SAMPLE_GAP_MS
        if rows <= best_rows:
            best = Plan(level, starts, rolled_from, rolled_to, ends, raw_spans)
            best_rows = rows
    return best


def window_figures(
    series: list[store.LabelledSeries], ends: np.ndarray, range_ms: int, limit: int
) -> tuple[list[WindowFigures], int] | None:
    """The figures of every window ``[end - range_ms, end]`` of ``series``, and how many rows
    were read; None where rollups cannot answer (too short a range, nothing settled, late
    minutes queued) or would not save reads, and the raw samples must."""
    if range_ms < MIN_RANGE_MS or not series:
        return None
    settled_ms = store.settled_rollups_ms()
    if settled_ms is None:
        return None
    chosen = plan(ends, range_ms, settled_ms)
    if chosen is None:
        return None
    ids = [found.series_id for found in series]
    first_bucket, last_bucket = int(chosen.rolled_from.min()), int(chosen.rolled_to.max())
    if store.series_with_late_minutes(ids, first_bucket, last_bucket):
        return None
    buckets = store.rollup_arrays(ids, chosen.level, first_bucket, last_bucket, limit)
    raw = store.sample_arrays_in_spans(ids, chosen.raw_spans, limit - len(buckets.sum))
    figures = []
    for found in series:
        begin, end = np.searchsorted(buckets.series_id, [found.series_id, found.series_id + 1])
        raw_begin, raw_end = np.searchsorted(raw.series_id, [found.series_id, found.series_id + 1])
        samples = RangeSeries(
            found.labels, raw.ts_ms[raw_begin:raw_end], raw.value[raw_begin:raw_end]
        )
        columns = (buckets.sum, buckets.count, buckets.min, buckets.max)
        figures.append(
            _figures(
                found.labels,
                buckets.bucket_ms[begin:end],
                [column[begin:end] for column in columns],
                samples,
                chosen,
            )
        )
    return figures, len(buckets.sum) + len(raw.value)


def _merged(spans: np.ndarray) -> np.ndarray:
    """Closed ms intervals (rows of first, last), the empty ones dropped and overlapping or
    touching ones merged."""
    spans = spans[spans[:, 0] <= spans[:, 1]]
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    merged: list[list[int]] = []
    for first, last in spans.tolist():
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return np.array(merged, dtype=np.int64).reshape(-1, 2)


def _covered_ms(spans: np.ndarray) -> int:
    return int((spans[:, 1] - spans[:, 0] + 1).sum())


def _figures(
    labels, bucket_ms, bucket_columns, samples: RangeSeries, chosen: Plan
) -> WindowFigures:
    starts, rolled_from, rolled_to, ends = (
        chosen.starts,
        chosen.rolled_from,
        chosen.rolled_to,
        chosen.ends,
    )
    sums, counts, lows, highs = bucket_columns
    in_buckets = (
        np.searchsorted(bucket_ms, rolled_from, side="left"),
        np.searchsorted(bucket_ms, rolled_to, side="left"),
    )
    before = (
        np.searchsorted(samples.ts, starts, side="left"),
        np.searchsorted(samples.ts, rolled_from, side="left"),
    )
    after = (
        np.searchsorted(samples.ts, rolled_to, side="left"),
        np.searchsorted(samples.ts, ends, side="right"),
    )
    ones = np.ones(len(samples.values))
    total = _summed(sums, *in_buckets) + _summed(samples.values, *before)
    total += _summed(samples.values, *after)
    count = _summed(counts, *in_buckets) + _summed(ones, *before) + _summed(ones, *after)
    low = np.fmin(
        _reduced(np.fmin, lows, *in_buckets),
        np.fmin(
            _reduced(np.fmin, samples.values, *before), _reduced(np.fmin, samples.values, *after)
        ),
    )
    high = np.fmax(
        _reduced(np.fmax, highs, *in_buckets),
        np.fmax(
            _reduced(np.fmax, samples.values, *before), _reduced(np.fmax, samples.values, *after)
        ),
    )
    return WindowFigures(labels, total, count, low, high)


def _summed(values: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    sums = np.concatenate([[0.0], np.cumsum(values)])
    return sums[last] - sums[first]


def _reduced(
    ufunc: np.ufunc, values: np.ndarray, first: np.ndarray, last: np.ndarray
) -> np.ndarray:
    """``ufunc.reduce(values[first:last])`` per window, NaN where a window is empty."""
    padded = np.append(values, np.nan)
    reduced = ufunc.reduceat(padded, np.column_stack([first, last]).ravel())[::2]
    return np.where(last > first, reduced, np.nan)
