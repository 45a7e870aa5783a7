"""PromQL evaluation over the samples store, with Prometheus's semantics (as of its 2.x line).

``evaluate(text, start_ms, end_ms, step_ms)`` parses with ``promql_parser`` and walks the tree.
Every node is evaluated for all steps at once (see ``query.values``); each selector reads the
samples of all its series in one set-based query. Times are integer milliseconds, as in
Prometheus, so windows and extrapolation round exactly as there.
"""

import time
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import promql_parser as parser
from django.conf import settings

from instances import store
from instances.formats import EPOCH
from instances.samples import VICTORIAMETRICS, samples_engine
from query import functions, rollup_windows, shared_reads, victoriametrics
from query.aggregations import aggregate
from query.binary import binary_operation
from query.values import (
    METRIC_NAME,
    ExecutionError,
    QueryError,
    QueryTimeout,
    RangeSeries,
    RangeVector,
    Scalar,
    String,
    Vector,
)

LOOKBACK_MS = 5 * 60 * 1000
# A subquery without a step of its own steps by Prometheus's default evaluation interval.
DEFAULT_SUBQUERY_STEP_MS = 60 * 1000


class SampleLimitExceeded(ExecutionError):
    def __init__(self):
        super().__init__(
            "query processing would load too many samples into memory in query execution"
        )


# As Prometheus: a range query may ask for at most this many points per series.
MAX_POINTS_PER_SERIES = 11_000

_MATCH_OPS = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}


def parse(text: str) -> parser.Expr:
    try:
        return parser.parse(text)
    except (ValueError, TypeError) as error:
        raise QueryError(f'invalid parameter "query": {error}') from None


def ms(delta) -> int:
    """A parser duration (a timedelta, or None) in milliseconds."""
    if delta is None:
        return 0
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass
class Context:
    """One evaluation: the step grid, and the limits shared by every node."""

    times: np.ndarray  # (steps,) ms
    query_start_ms: int
    query_end_ms: int
    deadline: float
    max_samples: int
    samples_read: list[int] = field(default_factory=lambda: [0])

    @property
    def steps(self) -> int:
        return len(self.times)

    def check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise QueryTimeout("query timed out in expression evaluation")

    def count_samples(self, count: int) -> None:
        self.samples_read[0] += count
        if self.samples_read[0] > self.max_samples:
            raise SampleLimitExceeded

    def remaining_samples(self) -> int:
        return self.max_samples - self.samples_read[0]

    def on_grid(self, times: np.ndarray) -> "Context":
        return Context(
            times, self.query_start_ms, self.query_end_ms, self.deadline, self.max_samples,
            self.samples_read,
        )  # fmt: skip


def step_times(start_ms: int, end_ms: int, step_ms: int) -> np.ndarray:
    if step_ms <= 0:
        raise QueryError(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    if end_ms < start_ms:
        raise QueryError("end timestamp must not be before start time")
    if (end_ms - start_ms) // step_ms + 1 > MAX_POINTS_PER_SERIES:
        raise QueryError(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    return np.arange(start_ms, end_ms + 1, step_ms, dtype=np.int64)


def evaluate(
    text: str,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    timeout_seconds: float | None = None,
    max_samples: int | None = None,
    allow_range: bool = False,
) -> Scalar | String | Vector | RangeVector:
    """The value of PromQL ``text`` at every step from ``start_ms`` to ``end_ms`` (a range
    vector only if ``allow_range``: an instant query may ask for raw samples)."""
    expression = parse(text)
    times = step_times(start_ms, end_ms, step_ms)
    timeout = timeout_seconds if timeout_seconds is not None else settings.PROMQL_TIMEOUT_SECONDS
    engine = samples_engine()
    if engine.name == VICTORIAMETRICS:
        return victoriametrics.evaluate(engine, text, times, timeout, allow_range)
    context = Context(
        times,
        start_ms,
        end_ms,
        time.monotonic() + timeout,
        max_samples if max_samples is not None else settings.PROMQL_MAX_SAMPLES,
    )
    result = Evaluator(context).eval(expression)
    if isinstance(result, RangeVector) and not allow_range:
        raise QueryError(
            'invalid expression type "range vector" for range query, must be Scalar or '
            "instant Vector"
        )
    if isinstance(result, Vector):
        return result.merged().compact()
    return result


class Evaluator:
    def __init__(self, context: Context):
        self.context = context

    def eval(self, node):
        self.context.check_deadline()
        handler = getattr(self, f"eval_{type(node).__name__}", None)
        if handler is None:
            raise QueryError(f"unsupported expression: {node}")
        result = handler(node)
        self.context.check_deadline()
        return result

    def eval_NumberLiteral(self, node) -> Scalar:
        return Scalar(np.full(self.context.steps, node.val, dtype=np.float64))

    def eval_StringLiteral(self, node) -> String:
        return String(node.val)

    def eval_ParenExpr(self, node):
        return self.eval(node.expr)

    def eval_UnaryExpr(self, node):
        operand = self.eval(node.expr)
        if isinstance(operand, Scalar):
            return Scalar(-operand.values)
        if isinstance(operand, Vector):
            return operand.drop_name().with_values(-operand.values).merged()
        raise QueryError("unary expression only allowed on expressions of type scalar or vector")

    def eval_BinaryExpr(self, node):
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        return binary_operation(str(node.op), lhs, rhs, node.modifier)

    def eval_AggregateExpr(self, node) -> Vector:
        param = self.eval(node.param) if node.param is not None else None
        operand = self.eval(node.expr)
        if not isinstance(operand, Vector):
            raise QueryError("expected type instant vector in aggregation expression")
        return aggregate(str(node.op), operand, param, node.modifier)

    def eval_Call(self, node):
        name = node.func.name
        implementation = functions.FUNCTIONS.get(name)
        if implementation is None:
            raise QueryError(f"function {name!r} is not supported by Vigil")
        if name in rollup_windows.ROLLED_UP_FUNCTIONS:
            rolled_up = self._from_rollups(name, node.args[0])
            if rolled_up is not None:
                return rolled_up
        args = [self.eval(argument) for argument in node.args]
        call = functions.Call(name, args, node.args, self.context.times)
        return implementation(call)

    def _from_rollups(self, name: str, argument) -> Vector | None:
        """``name(selector[range])`` answered from rollup buckets and the raw samples at the
        windows' edges, when the range spans enough buckets; None: read the raw samples."""
        if not isinstance(argument, parser.MatrixSelector):
            return None
        selector = argument.vector_selector
        ends = self._effective_times(selector.at, selector.offset)
        range_ms = ms(argument.range)
        if range_ms < rollup_windows.MIN_RANGE_MS:
            return None
        since = EPOCH + timedelta(milliseconds=int(ends.min()) - range_ms)
        matched = store.match_series([matchers_of(selector)], since=since)
        try:
            read = rollup_windows.window_figures(
                matched, ends, range_ms, self.context.remaining_samples()
            )
        except store.TooManySamples:
            raise SampleLimitExceeded from None
        if read is None:
            return None
        figures, rows = read
        self.context.count_samples(rows)
        return functions.from_window_figures(name, figures, self.context.steps)

    # --- selectors ---------------------------------------------------------------------------

    def _effective_times(self, at, offset) -> np.ndarray:
        """Per step, the time a selector reads at: the step (or the @ time) minus the offset."""
        if at is not None:
            base = self._at_ms(at)
            return np.full(self.context.steps, base - ms(offset), dtype=np.int64)
        return self.context.times - ms(offset)

    def _at_ms(self, at) -> int:
        kind = str(at.type).rsplit(".", 1)[-1]
        if kind == "Start":
            return self.context.query_start_ms
        if kind == "End":
            return self.context.query_end_ms
        stamp = at.at
        return round(stamp.timestamp() * 1000)

    def _read(self, selector, first_ms: int, last_ms: int) -> list[RangeSeries]:
        """Every series ``selector`` matches, with its samples in ``[first_ms, last_ms]``."""
        matchers = matchers_of(selector)
        matched, arrays = shared_reads.shared(
            (repr(matchers), first_ms, last_ms),
            lambda: self._read_samples(matchers, first_ms, last_ms),
        )
        if not matched:
            return []
        self.context.count_samples(len(arrays.value))
        bounds = np.searchsorted(
            arrays.series_id, [series.series_id for series in matched], side="left"
        )
        ends = np.append(bounds[1:], len(arrays.value))
        return [
            RangeSeries(series.labels, arrays.ts_ms[begin:end], arrays.value[begin:end])
            for series, begin, end in zip(matched, bounds, ends, strict=True)
            if end > begin
        ]

    def _read_samples(
        self, matchers: list[dict], first_ms: int, last_ms: int
    ) -> tuple[tuple[list[store.LabelledSeries], store.SampleArrays | None], int]:
        """The series ``matchers`` select and their samples in ``[first_ms, last_ms]``, read-only
        (a read may be shared), and how many samples that is."""
        since = EPOCH + timedelta(milliseconds=first_ms)
        matched = store.match_series([matchers], since=since)
        if not matched:
            return (matched, None), 0
        try:
            arrays = samples_engine().sample_arrays(
                [series.series_id for series in matched],
                first_ms,
                last_ms,
                self.context.remaining_samples(),
            )
        except store.TooManySamples:
            raise SampleLimitExceeded from None
        for array in arrays:
            array.flags.writeable = False
        return (matched, arrays), len(arrays.value)

    def eval_VectorSelector(self, node) -> Vector:
        reads_at = self._effective_times(node.at, node.offset)
        found = self._read(node, int(reads_at.min()) - LOOKBACK_MS, int(reads_at.max()))
        labels, values, present, sample_ms = [], [], [], []
        for series in found:
            index = np.searchsorted(series.ts, reads_at, side="right") - 1
            safe = np.maximum(index, 0)
            # A staleness marker (NaN: stored samples are finite) ends the series at once.
            has = (
                (index >= 0)
                & (series.ts[safe] >= reads_at - LOOKBACK_MS)
                & ~np.isnan(series.values[safe])
            )
            if not has.any():
                continue
            labels.append(series.labels)
            values.append(series.values[safe])
            present.append(has)
            sample_ms.append(series.ts[safe])
        steps = self.context.steps
        if not labels:
            return Vector.empty(steps)
        return Vector(labels, np.array(values), np.array(present), np.array(sample_ms))

    def eval_MatrixSelector(self, node) -> RangeVector:
        selector = node.vector_selector
        ends = self._effective_times(selector.at, selector.offset)
        range_ms = ms(node.range)
        found = self._read(selector, int(ends.min()) - range_ms, int(ends.max()))
        # Range vectors leave staleness markers out, as Prometheus does.
        samples = [
            RangeSeries(series.labels, series.ts[kept], series.values[kept])
            for series in found
            if (kept := ~np.isnan(series.values)).any()
        ]
        return RangeVector(samples, ends, range_ms)

    def eval_SubqueryExpr(self, node) -> RangeVector:
        ends = self._effective_times(node.at, node.offset)
        range_ms, step = ms(node.range), ms(node.step) or DEFAULT_SUBQUERY_STEP_MS
        # As Prometheus: the inner steps are multiples of the subquery's step.
        first = int(ends.min()) - range_ms
        first = step * (first // step) + (step if first % step else 0)
        inner_times = np.arange(first, int(ends.max()) + 1, step, dtype=np.int64)
        if len(inner_times) > MAX_POINTS_PER_SERIES * 10:
            raise ExecutionError("subquery would evaluate too many steps")
        inner = Evaluator(self.context.on_grid(inner_times)).eval(node.expr)
        if isinstance(inner, Scalar):
            raise QueryError("subquery is only allowed on instant vector")
        if not isinstance(inner, Vector):
            raise QueryError("subquery is only allowed on instant vector")
        inner = inner.merged()
        series = [
            RangeSeries(labels, inner_times[row_present], row_values[row_present])
            for labels, row_values, row_present in zip(
                inner.labels, inner.values, inner.present, strict=True
            )
            if row_present.any()
        ]
        return RangeVector(series, ends, range_ms)


def matchers_of(selector) -> list[dict]:
    """A vector selector's matchers as the store takes them."""
    matchers = []
    if selector.name:
        matchers.append({"label": METRIC_NAME, "op": "=", "value": selector.name})
    found = selector.matchers
    if found.or_matchers:
        raise QueryError("'or' inside a selector's braces is not supported by Vigil")
    for matcher in found.matchers:
        matchers.append(
            {"label": matcher.name, "op": _MATCH_OPS[str(matcher.op)], "value": matcher.value}
        )
    return matchers
