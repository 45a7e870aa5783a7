"""PromQL functions, each computed for every step at once where an array operation fits."""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from query.values import (
    LABEL_NAME_PATTERN,
    METRIC_NAME,
    QueryError,
    RangeSeries,
    RangeVector,
    Scalar,
    String,
    Vector,
    signature,
    without_name,
)


@dataclass
class Call:
    name: str
    args: list  # evaluated arguments
    nodes: list  # their syntax trees (absent() reads the selector's matchers)
    times: np.ndarray  # the steps, ms

    @property
    def steps(self) -> int:
        return len(self.times)

    def vector(self, index: int = 0) -> Vector:
        value = self.args[index]
        if not isinstance(value, Vector):
            raise QueryError(f"expected type instant vector in call to function {self.name!r}")
        return value

    def range_vector(self, index: int = 0) -> RangeVector:
        value = self.args[index]
        if not isinstance(value, RangeVector):
            raise QueryError(f"expected type range vector in call to function {self.name!r}")
        return value

    def scalar(self, index: int) -> np.ndarray:
        value = self.args[index]
        if not isinstance(value, Scalar):
            raise QueryError(f"expected type scalar in call to function {self.name!r}")
        return value.values

    def string(self, index: int) -> str:
        value = self.args[index]
        if not isinstance(value, String):
            raise QueryError(f"expected type string in call to function {self.name!r}")
        return value.value


def format_value(value: float) -> str:
    """A float as Prometheus writes one (Go's FormatFloat(v, 'f', -1, 64))."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    # repr gives the same shortest digits, and is much cheaper, unless it chose an exponent.
    text = repr(float(value))
    if "e" in text:
        return np.format_float_positional(value, trim="-")
    return text[:-2] if text.endswith(".0") else text


def quantile_of(phi: float, values: np.ndarray) -> float:
    """Prometheus's ``quantile``: linear interpolation between the two closest ranks."""
    if len(values) == 0 or math.isnan(phi):
        return math.nan
    if phi < 0:
        return -math.inf
    if phi > 1:
        return math.inf
    nan = np.isnan(values)
    ordered = np.concatenate([values[nan], np.sort(values[~nan])])
    rank = phi * (len(ordered) - 1)
    lower = max(0, math.floor(rank))
    upper = min(len(ordered) - 1, lower + 1)
    weight = rank - math.floor(rank)
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def _rows(labels, values, present, steps: int, drop_name: bool = True) -> Vector:
    if not labels:
        return Vector.empty(steps)
    if drop_name:
        labels = [without_name(row) for row in labels]
    return Vector(labels, np.array(values, dtype=np.float64), np.array(present)).merged().compact()


# --- functions over range vectors -----------------------------------------------------------


def _over_windows(
    call: Call,
    compute: Callable[[RangeSeries, np.ndarray, np.ndarray, RangeVector], tuple],
    drop_name: bool = True,
) -> Vector:
    """Apply ``compute(series, first, last, range_vector) -> (values, present)`` to each
    series, where ``first``/``last`` bound each step's window of samples."""
    range_vector = call.range_vector(0)
    labels, values, present = [], [], []
    for series in range_vector.series:
        first, last = range_vector.windows(series)
        with np.errstate(all="ignore"):
            row_values, row_present = compute(series, first, last, range_vector)
        if row_present.any():
            labels.append(series.labels)
            values.append(row_values)
            present.append(row_present)
    return _rows(labels, values, present, call.steps, drop_name)


def _per_window(reduce: Callable[[np.ndarray, np.ndarray], float], minimum: int = 1):
    """A window function computed by ``reduce(times, values)`` per non-empty window."""

    def compute(series, first, last, _range_vector):
        values = np.full(len(first), np.nan)
        present = (last - first) >= minimum
        for step in np.flatnonzero(present):
            begin, end = first[step], last[step]
            values[step] = reduce(series.ts[begin:end], series.values[begin:end])
        return values, present

    return compute


def _extrapolated(is_counter: bool, is_rate: bool):
    """rate / increase / delta, with Prometheus's extrapolation to the window's edges."""

    def compute(series, first, last, range_vector):
        count = last - first
        present = count >= 2
        first_index = np.minimum(first, len(series.ts) - 1)
        last_index = np.maximum(last - 1, 0)
        first_value, last_value = series.values[first_index], series.values[last_index]
        first_ts, last_ts = series.ts[first_index], series.ts[last_index]
        result = last_value - first_value
        if is_counter:
            previous = series.values[:-1]
            drops = np.where(series.values[1:] < previous, previous, 0.0)
            corrections = np.concatenate([[0.0], np.cumsum(drops)])
            result = result + (corrections[last_index] - corrections[first_index])
        range_start = range_vector.ends - range_vector.range_ms
        to_start = (first_ts - range_start) / 1000
        to_end = (range_vector.ends - last_ts) / 1000
        sampled = (last_ts - first_ts) / 1000
        average_gap = sampled / np.maximum(count - 1, 1)
        if is_counter:
            to_zero = sampled * (first_value / result)
            clamp = (result > 0) & (first_value >= 0) & (to_zero < to_start)
            to_start = np.where(clamp, to_zero, to_start)
        threshold = average_gap * 1.1
        interval = (
            sampled
            + np.where(to_start < threshold, to_start, average_gap / 2)
            + np.where(to_end < threshold, to_end, average_gap / 2)
        )
        result = result * (interval / sampled)
        if is_rate:
            result = result / (range_vector.range_ms / 1000)
        return result, present

    return compute


def _instant(is_rate: bool):
    """irate / idelta: from the window's last two samples."""

    def compute(series, first, last, _range_vector):
        present = (last - first) >= 2
        last_index = np.maximum(last - 1, 1)
        last_value, previous = series.values[last_index], series.values[last_index - 1]
        gap = series.ts[last_index] - series.ts[last_index - 1]
        if is_rate:
            result = np.where(last_value < previous, last_value, last_value - previous)
            result = result / (gap / 1000)
        else:
            result = last_value - previous
        return result, present & (gap != 0)

    return compute


def _counted(flag: Callable[[np.ndarray, np.ndarray], np.ndarray]):
    """changes / resets: how many neighbouring pairs in the window satisfy ``flag``."""

    def compute(series, first, last, _range_vector):
        flags = np.concatenate([[0], flag(series.values[:-1], series.values[1:]).astype(int)])
        cumulative = np.cumsum(flags)
        last_index = np.maximum(last - 1, 0)
        first_index = np.minimum(first, len(series.ts) - 1)
        return (cumulative[last_index] - cumulative[first_index]).astype(float), last > first

    return compute


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (after != before) & ~(np.isnan(after) & np.isnan(before))


def _prefix_sums(series: RangeSeries) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(series.values)])


def _sum_in_windows(series, first, last) -> np.ndarray:
    if np.isfinite(series.values).all():
        sums = _prefix_sums(series)
        return sums[last] - sums[first]
    # A non-finite value would poison every later prefix sum: add each window itself.
    return np.array([series.values[b:e].sum() for b, e in zip(first, last, strict=True)])


def _sum_over_time(series, first, last, _range_vector):
    return _sum_in_windows(series, first, last), last > first


def _avg_over_time(series, first, last, _range_vector):
    count = last - first
    return _sum_in_windows(series, first, last) / np.maximum(count, 1), count > 0


def _count_over_time(series, first, last, _range_vector):
    return (last - first).astype(float), last > first


def _last_over_time(series, first, last, _range_vector):
    return series.values[np.maximum(last - 1, 0)], last > first


def _present_over_time(series, first, last, _range_vector):
    return np.ones(len(first)), last > first


def _fmin(_ts, values):
    return np.fmin.reduce(values)


def _fmax(_ts, values):
    return np.fmax.reduce(values)


def _stdvar(_ts, values):
    return float(np.mean((values - values.mean()) ** 2))


def _kahan_sum(values: np.ndarray) -> float:
    """Prometheus's compensated sum (kahanSumInc): as float64 arithmetic, ±Inf once it
    overflows and never an error (math.fsum raises OverflowError there)."""
    total = compensation = 0.0
    for value in values.tolist():
        added = total + value
        if math.isinf(added):
            compensation = 0.0
        elif abs(total) >= abs(value):
            compensation += (total - added) + value
        else:
            compensation += (value - added) + total
        total = added
    return total + compensation


def _linear_regression(ts: np.ndarray, values: np.ndarray, intercept_ms: int):
    """Least squares as Prometheus computes it (slope per second, intercept at
    ``intercept_ms``)."""
    if (values == values[0]).all():
        if math.isinf(values[0]):
            return math.nan, math.nan
        return 0.0, float(values[0])
    x = (ts - intercept_ms) / 1000
    n = len(values)
    with np.errstate(all="ignore"):
        products = x * values
    sum_x, sum_y = _kahan_sum(x), _kahan_sum(values)
    sum_xy, sum_x2 = _kahan_sum(products), _kahan_sum(x * x)
    covariance = sum_xy - sum_x * sum_y / n
    variance = sum_x2 - sum_x * sum_x / n
    slope = covariance / variance if variance else math.nan
    return slope, sum_y / n - slope * sum_x / n


def _deriv(ts, values):
    return _linear_regression(ts, values, int(ts[0]))[0]


def _predict_linear(call: Call) -> Vector:
    horizon = call.scalar(1)

    def compute(series, first, last, _range_vector):
        values = np.full(len(first), np.nan)
        present = (last - first) >= 2
        for step in np.flatnonzero(present):
            begin, end = first[step], last[step]
            slope, intercept = _linear_regression(
                series.ts[begin:end], series.values[begin:end], int(call.times[step])
            )
            values[step] = slope * horizon[step] + intercept
        return values, present

    return _over_windows(call, compute)


def _quantile_over_time(call: Call) -> Vector:
    phi = call.scalar(0)
    shifted = Call(call.name, call.args[1:], call.nodes[1:], call.times)

    def compute(series, first, last, _range_vector):
        values = np.full(len(first), np.nan)
        present = last > first
        for step in np.flatnonzero(present):
            values[step] = quantile_of(phi[step], series.values[first[step] : last[step]])
        return values, present

    return _over_windows(shifted, compute)


def from_window_figures(name: str, figures: list, steps: int) -> Vector:
    """``name`` (a ``*_over_time`` of ``rollup_windows.ROLLED_UP_FUNCTIONS``) from each series'
    per-window sum, count, min and max."""
    labels, values, present = [], [], []
    for series in figures:
        with np.errstate(all="ignore"):
            value = {
                "sum_over_time": series.sum,
                "count_over_time": series.count,
                "avg_over_time": series.sum / series.count,
                "min_over_time": series.min,
                "max_over_time": series.max,
            }[name]
        labels.append(series.labels)
        values.append(value)
        present.append(series.count > 0)
    return _rows(labels, values, present, steps)


def _window_function(compute, drop_name: bool = True):
    return lambda call: _over_windows(call, compute, drop_name)


# --- functions over instant vectors ---------------------------------------------------------


def _elementwise(operation: Callable[[np.ndarray], np.ndarray]):
    def apply(call: Call) -> Vector:
        vector = call.vector(0)
        with np.errstate(all="ignore"):
            values = operation(vector.values)
        return vector.drop_name().with_values(values).merged()

    return apply


def _round(call: Call) -> Vector:
    vector = call.vector(0)
    to_nearest = call.scalar(1) if len(call.args) > 1 else np.ones(call.steps)
    with np.errstate(all="ignore"):
        inverse = 1.0 / to_nearest
        values = np.floor(vector.values * inverse + 0.5) / inverse
    return vector.drop_name().with_values(values).merged()


def _clamp(call: Call) -> Vector:
    vector = call.vector(0)
    low, high = call.scalar(1), call.scalar(2)
    values = np.maximum(low, np.minimum(high, vector.values))
    # A step whose maximum is below its minimum has no result.
    present = vector.present & ~(high < low)
    return vector.drop_name().with_values(values, present).merged().compact()


def _clamp_min(call: Call) -> Vector:
    vector = call.vector(0)
    return vector.drop_name().with_values(np.maximum(call.scalar(1), vector.values)).merged()


def _clamp_max(call: Call) -> Vector:
    vector = call.vector(0)
    return vector.drop_name().with_values(np.minimum(call.scalar(1), vector.values)).merged()


def _sgn(values: np.ndarray) -> np.ndarray:
    return np.where(values < 0, -1.0, np.where(values > 0, 1.0, values))


def _time_parts(part: str):
    """day_of_week() and friends: of each sample's value as Unix seconds (default: time())."""

    def apply(call: Call) -> Vector:
        if call.args:
            vector = call.vector(0).drop_name()
        else:
            seconds = (call.times / 1000.0)[None, :]
            vector = Vector([{}], seconds, np.ones_like(seconds, dtype=bool))
        values = vector.values
        finite = np.isfinite(values)
        moment = np.where(finite, np.trunc(values), 0).astype(np.int64).astype("datetime64[s]")
        day = moment.astype("datetime64[D]")
        month = moment.astype("datetime64[M]")
        year = moment.astype("datetime64[Y]")
        match part:
            case "minute":
                result = moment.astype("datetime64[m]") - moment.astype("datetime64[h]")
            case "hour":
                result = moment.astype("datetime64[h]") - day
            case "day_of_week":
                result = (day.astype(np.int64) + 4) % 7
            case "day_of_month":
                result = (day - month) + 1
            case "day_of_year":
                result = (day - year) + 1
            case "days_in_month":
                result = (month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")
            case "month":
                result = month.astype(np.int64) % 12 + 1
            case "year":
                result = year.astype(np.int64) + 1970
        result = np.asarray(result).astype(np.int64).astype(np.float64)
        return vector.with_values(np.where(finite, result, np.nan)).merged()

    return apply


def _timestamp(call: Call) -> Vector:
    vector = call.vector(0)
    if vector.sample_ms is not None:
        stamps = vector.sample_ms / 1000.0
    else:
        stamps = np.broadcast_to(call.times / 1000.0, vector.values.shape)
    return vector.drop_name().with_values(np.array(stamps, dtype=np.float64)).merged()


def _scalar(call: Call) -> Scalar:
    vector = call.vector(0)
    single = vector.present.sum(axis=0) == 1
    if not len(vector):
        return Scalar(np.full(call.steps, np.nan))
    values = np.where(vector.present, vector.values, 0.0).sum(axis=0)
    return Scalar(np.where(single, values, np.nan))


def _vector(call: Call) -> Vector:
    values = call.scalar(0)[None, :]
    return Vector([{}], values, np.ones_like(values, dtype=bool))


def _time(call: Call) -> Scalar:
    return Scalar(call.times / 1000.0)


def _identity(call: Call) -> Vector:
    return call.vector(0)


def _absent_labels(node) -> dict:
    """The labels absent() gives its one series: the selector's equality matchers."""
    selector = getattr(node, "vector_selector", node)
    matchers = getattr(getattr(selector, "matchers", None), "matchers", None)
    if matchers is None:
        return {}
    labels, dropped = {}, set()
    for matcher in matchers:
        if matcher.name == METRIC_NAME:
            continue
        if str(matcher.op) == "MatchOp.Equal" and matcher.name not in labels:
            labels[matcher.name] = matcher.value
        else:
            dropped.add(matcher.name)
    return {k: v for k, v in labels.items() if k not in dropped and v}


def _absent(call: Call) -> Vector:
    vector = call.vector(0)
    absent = ~vector.present.any(axis=0) if len(vector) else np.ones(call.steps, dtype=bool)
    return Vector([_absent_labels(call.nodes[0])], np.ones((1, call.steps)), absent[None, :])


def _absent_over_time(call: Call) -> Vector:
    range_vector = call.range_vector(0)
    seen = np.zeros(call.steps, dtype=bool)
    for series in range_vector.series:
        first, last = range_vector.windows(series)
        seen |= last > first
    return Vector([_absent_labels(call.nodes[0])], np.ones((1, call.steps)), ~seen[None, :])


def _go_expand(template: str, match: re.Match) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}; $$ is a dollar; unknown groups are ""."""

    def group(name: str) -> str:
        try:
            return match.group(int(name) if name.isdigit() else name) or ""
        except IndexError:
            return ""

    def replace(found: re.Match) -> str:
        if found.group(0) == "$$":
            return "$"
        return group(found.group(1) or found.group(2))

    return re.sub(r"\$\$|\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z0-9_]+)", replace, template)


def _label_replace(call: Call) -> Vector:
    vector = call.vector(0)
    destination, replacement = call.string(1), call.string(2)
    source, pattern = call.string(3), call.string(4)
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise QueryError(
            f"invalid regular expression in label_replace(): {pattern}: {error}"
        ) from None
    if not LABEL_NAME_PATTERN.match(destination):
        raise QueryError(f"invalid destination label name in label_replace(): {destination}")
    labels = []
    for row in vector.labels:
        found = regex.fullmatch(row.get(source, ""))
        if found is None:
            labels.append(row)
            continue
        value = _go_expand(replacement, found)
        new = {k: v for k, v in row.items() if k != destination}
        if value:
            new[destination] = value
        labels.append(new)
    return Vector(labels, vector.values, vector.present).merged()


def _label_join(call: Call) -> Vector:
    vector = call.vector(0)
    destination, separator = call.string(1), call.string(2)
    sources = [call.string(index) for index in range(3, len(call.args))]
    if not LABEL_NAME_PATTERN.match(destination):
        raise QueryError(f"invalid destination label name in label_join(): {destination}")
    labels = []
    for row in vector.labels:
        value = separator.join(row.get(source, "") for source in sources)
        new = {k: v for k, v in row.items() if k != destination}
        if value:
            new[destination] = value
        labels.append(new)
    return Vector(labels, vector.values, vector.present).merged()


def _bucket_quantile(phi: float, bounds: np.ndarray, counts: np.ndarray) -> float:
    """Prometheus's bucketQuantile over one histogram's cumulative buckets."""
    if math.isnan(phi):
        return math.nan
    if phi < 0:
        return -math.inf
    if phi > 1:
        return math.inf
    order = np.argsort(bounds, kind="stable")
    bounds, counts = bounds[order], counts[order]
    if not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return math.nan
    # Buckets of one bound (from series differing only in other labels) are added up.
    unique_bounds, starts = np.unique(bounds, return_index=True)
    if len(unique_bounds) != len(bounds):
        counts = np.add.reduceat(counts, starts)
        bounds = unique_bounds
    counts = np.maximum.accumulate(counts)
    if len(bounds) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = phi * observations
    bucket = int(np.searchsorted(counts[:-1], rank, side="left"))
    if bucket == len(bounds) - 1:
        return float(bounds[-2])
    if bucket == 0 and bounds[0] <= 0:
        return float(bounds[0])
    start, end, count = 0.0, bounds[bucket], counts[bucket]
    if bucket > 0:
        start = bounds[bucket - 1]
        count -= counts[bucket - 1]
        rank -= counts[bucket - 1]
    return float(start + (end - start) * (rank / count))


def _parse_bound(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _histogram_quantile(call: Call) -> Vector:
    phi = call.scalar(0)
    vector = call.vector(1)
    groups: dict[tuple, tuple[dict, list[int], list[float]]] = {}
    for index, labels in enumerate(vector.labels):
        bound = _parse_bound(labels.get("le", ""))
        if bound is None:
            continue
        group = {k: v for k, v in labels.items() if k not in ("le", METRIC_NAME)}
        entry = groups.setdefault(signature(group), (group, [], []))
        entry[1].append(index)
        entry[2].append(bound)
    labels, values, present = [], [], []
    for group, rows, bounds in groups.values():
        bounds_array = np.array(bounds)
        row_present = vector.present[rows].any(axis=0)
        # Steps where every bucket has a sample (nearly all) are computed together.
        complete = vector.present[rows].all(axis=0)
        row_values = _bucket_quantiles(phi, bounds_array, vector.values[rows], complete)
        for step in np.flatnonzero(row_present & ~complete):
            here = vector.present[rows, step]
            row_values[step] = _bucket_quantile(
                phi[step], bounds_array[here], vector.values[rows, step][here]
            )
        labels.append(group)
        values.append(row_values)
        present.append(row_present)
    return _rows(labels, values, present, call.steps, drop_name=False)


def _bucket_quantiles(
    phi: np.ndarray, bounds: np.ndarray, counts: np.ndarray, steps: np.ndarray
) -> np.ndarray:
    """_bucket_quantile at each of ``steps`` at once (one histogram: buckets x steps)."""
    result = np.full(counts.shape[1], np.nan)
    if not steps.any() or len(np.unique(bounds)) != len(bounds):
        # Buckets of one bound to add up: step by step, as _bucket_quantile does.
        for step in np.flatnonzero(steps):
            result[step] = _bucket_quantile(phi[step], bounds, counts[:, step])
        return result
    order = np.argsort(bounds, kind="stable")
    bounds, counts = bounds[order], np.maximum.accumulate(counts[order][:, steps], axis=0)
    q = phi[steps]
    if len(bounds) < 2 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        values = np.full(len(q), np.nan)
    else:
        observations = counts[-1]
        rank = q * observations
        below = counts[:-1] >= rank
        bucket = np.where(below.any(axis=0), below.argmax(axis=0), len(bounds) - 1)
        columns = np.arange(len(q))
        end, count = bounds[bucket], counts[bucket, columns]
        previous = np.maximum(bucket - 1, 0)
        start = np.where(bucket > 0, bounds[previous], 0.0)
        before = np.where(bucket > 0, counts[previous, columns], 0.0)
        with np.errstate(all="ignore"):
            values = start + (end - start) * ((rank - before) / (count - before))
        values = np.where(bucket == len(bounds) - 1, bounds[-2], values)
        values = np.where((bucket == 0) & (bounds[0] <= 0), bounds[0], values)
        values = np.where(observations == 0, np.nan, values)
    values = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, values))
    result[steps] = np.where(np.isnan(q), np.nan, values)
    return result


FUNCTIONS: dict[str, Callable[[Call], object]] = {
    "rate": _window_function(_extrapolated(is_counter=True, is_rate=True)),
    "increase": _window_function(_extrapolated(is_counter=True, is_rate=False)),
    "delta": _window_function(_extrapolated(is_counter=False, is_rate=False)),
    "irate": _window_function(_instant(is_rate=True)),
    "idelta": _window_function(_instant(is_rate=False)),
    "deriv": _window_function(_per_window(_deriv, minimum=2)),
    "predict_linear": _predict_linear,
    "changes": _window_function(_counted(_changed)),
    "resets": _window_function(_counted(lambda before, after: after < before)),
    "avg_over_time": _window_function(_avg_over_time),
    "sum_over_time": _window_function(_sum_over_time),
    "count_over_time": _window_function(_count_over_time),
    "min_over_time": _window_function(_per_window(_fmin)),
    "max_over_time": _window_function(_per_window(_fmax)),
    "last_over_time": _window_function(_last_over_time, drop_name=False),
    "present_over_time": _window_function(_present_over_time),
    "stdvar_over_time": _window_function(_per_window(_stdvar)),
    "stddev_over_time": _window_function(_per_window(lambda t, v: math.sqrt(_stdvar(t, v)))),
    "quantile_over_time": _quantile_over_time,
    "absent_over_time": _absent_over_time,
    "abs": _elementwise(np.abs),
    "ceil": _elementwise(np.ceil),
    "floor": _elementwise(np.floor),
    "exp": _elementwise(np.exp),
    "ln": _elementwise(np.log),
    "log2": _elementwise(np.log2),
    "log10": _elementwise(np.log10),
    "sqrt": _elementwise(np.sqrt),
    "sgn": _elementwise(_sgn),
    "round": _round,
    "clamp": _clamp,
    "clamp_min": _clamp_min,
    "clamp_max": _clamp_max,
    "histogram_quantile": _histogram_quantile,
    "label_replace": _label_replace,
    "label_join": _label_join,
    "absent": _absent,
    "scalar": _scalar,
    "vector": _vector,
    "time": _time,
    "timestamp": _timestamp,
    "sort": _identity,
    "sort_desc": _identity,
    **{
        part: _time_parts(part)
        for part in (
            "minute",
            "hour",
            "day_of_week",
            "day_of_month",
            "day_of_year",
            "days_in_month",
            "month",
            "year",
        )
    },  # fmt: skip
}
