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
# A window is read from a rollup only if it spans at least this many of its buckets: shorter
# windows gain little over their raw samples.
MIN_BUCKETS_PER_WINDOW = 10


@dataclass
class WindowFigures:
    """Per step, the sum, count, min and max of one series' samples in that step's window."""

    labels: dict
    sum: np.ndarray
    count: np.ndarray
    min: np.ndarray
    max: np.ndarray


def level_for(range_ms: int) -> RollupLevel | None:
    """The coarsest rollup whose buckets a window of ``range_ms`` spans enough of, if any."""
    fitting = [
        level
        for level in ROLLUP_LEVELS
        if level.width.total_seconds() * 1000 * MIN_BUCKETS_PER_WINDOW <= range_ms
    ]
    return fitting[-1] if fitting else None


def window_figures(
    series: list[store.LabelledSeries], ends: np.ndarray, range_ms: int, limit: int
) -> tuple[list[WindowFigures], int] | None:
    """The figures of every window ``[end - range_ms, end]`` of ``series``, and how many rows
    were read; None where rollups cannot answer (no level fits, nothing settled, late minutes
    queued), and the raw samples must."""
    level = level_for(range_ms)
    if level is None or not series:
        return None
    settled_ms = store.settled_rollups_ms(level)
    if settled_ms is None:
        return None
    width_ms = int(level.width.total_seconds() * 1000)
    starts = ends - range_ms
    # Buckets [rolled_from, rolled_to) lie wholly inside each window and are settled; the raw
    # samples fill [start, rolled_from) and [rolled_to, end].
    rolled_from = -(-starts // width_ms) * width_ms
    rolled_to = np.minimum(ends // width_ms * width_ms, settled_ms)
    empty = rolled_from >= rolled_to
    if empty.all():
        return None
    rolled_from = np.where(empty, starts, rolled_from)
    rolled_to = np.where(empty, starts, rolled_to)
    ids = [found.series_id for found in series]
    first_bucket, last_bucket = int(rolled_from.min()), int(rolled_to.max())
    if store.series_with_late_minutes(ids, first_bucket, last_bucket):
        return None
    buckets = store.rollup_arrays(ids, level, first_bucket, last_bucket, limit)
    raw = store.sample_arrays_in_spans(
        ids, _merged_spans(starts, rolled_from, rolled_to, ends), limit - len(buckets.sum)
    )
    figures = []
    for found in series:
        begin, end = np.searchsorted(buckets.series_id, [found.series_id, found.series_id + 1])
        raw_begin, raw_end = np.searchsorted(raw.series_id, [found.series_id, found.series_id + 1])
        samples = RangeSeries(
            found.labels, raw.ts_ms[raw_begin:raw_end], raw.value[raw_begin:raw_end]
        )
        figures.append(
            _figures(
                found.labels,
                buckets.bucket_ms[begin:end],
                [
                    column[begin:end]
                    for column in (buckets.sum, buckets.count, buckets.min, buckets.max)
                ],
                samples,
                (starts, rolled_from, rolled_to, ends),
            )
        )
    return figures, len(buckets.sum) + len(raw.value)


def _merged_spans(
    starts: np.ndarray, rolled_from: np.ndarray, rolled_to: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """The closed ms intervals where raw samples are needed, overlaps merged: each window's
    edges ``[start, rolled_from - 1]`` and ``[rolled_to, end]``."""
    spans = np.concatenate(
        [np.column_stack([starts, rolled_from - 1]), np.column_stack([rolled_to, ends])]
    )
    spans = spans[spans[:, 0] <= spans[:, 1]]
    spans = spans[np.argsort(spans[:, 0], kind="stable")]
    merged: list[list[int]] = []
    for first, last in spans.tolist():
        if merged and first <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return np.array(merged, dtype=np.int64).reshape(-1, 2)


def _figures(labels, bucket_ms, bucket_columns, samples: RangeSeries, bounds) -> WindowFigures:
    starts, rolled_from, rolled_to, ends = bounds
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
