"""PromQL answered by VictoriaMetrics (``METRICS_ENGINE=victoriametrics``), as the values Vigil's
own engine gives: its Prometheus API's JSON made into Scalar, String, Vector and RangeVector.

An instant query (start = end) is VictoriaMetrics' ``/api/v1/query``, a range query its
``/api/v1/query_range``; the query is parsed here first, so what Vigil refuses is refused the same
on both engines.
"""

import numpy as np

from instances.victoriametrics import (
    VictoriaMetricsEngine,
    VictoriaMetricsRefused,
    VictoriaMetricsUnavailable,
)
from query.values import (
    ExecutionError,
    QueryError,
    RangeSeries,
    RangeVector,
    Scalar,
    String,
    Vector,
)


class EngineUnavailable(QueryError):
    """VictoriaMetrics could not be reached: answered as Prometheus answers a storage it cannot
    read (503, ``unavailable``)."""

    error_type = "unavailable"
    status = 503


def _refusal(error: VictoriaMetricsRefused) -> QueryError:
    message = error.answer.get("error", str(error))
    return QueryError(message) if error.status == 400 else ExecutionError(message)


def evaluate(
    engine: VictoriaMetricsEngine,
    text: str,
    times: np.ndarray,
    timeout_seconds: float | None,
    allow_range: bool,
) -> Scalar | String | Vector | RangeVector:
    """The value of ``text`` at each of ``times`` (ms, evenly stepped), from VictoriaMetrics."""
    start_ms, end_ms = int(times[0]), int(times[-1])
    try:
        if len(times) == 1:
            data = engine.instant_query(text, start_ms, timeout_seconds)
        else:
            step_ms = int(times[1] - times[0])
            data = engine.range_query(text, start_ms, end_ms, step_ms, timeout_seconds)
    except VictoriaMetricsUnavailable as error:
        raise EngineUnavailable(str(error)) from None
    except VictoriaMetricsRefused as error:
        raise _refusal(error) from None
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return Scalar(np.full(len(times), float(result[1])))
    if kind == "string":
        return String(result[1])
    if kind == "vector":
        return _vector([(row["metric"], [row["value"]]) for row in result], times)
    if len(times) == 1:
        if not allow_range:
            raise QueryError(
                'invalid expression type "range vector" for range query, must be Scalar or '
                "instant Vector"
            )
        return _range_vector(result, start_ms)
    return _vector([(row["metric"], row["values"]) for row in result], times)


def _vector(rows: list[tuple[dict, list]], times: np.ndarray) -> Vector:
    values = np.zeros((len(rows), len(times)))
    present = np.zeros((len(rows), len(times)), dtype=bool)
    for index, (_, points) in enumerate(rows):
        stamps = np.array([round(float(ts) * 1000) for ts, _ in points], dtype=np.int64)
        steps = np.searchsorted(times, stamps)
        on_grid = (steps < len(times)) & (times[np.minimum(steps, len(times) - 1)] == stamps)
        values[index, steps[on_grid]] = [
            float(value) for (_, value), kept in zip(points, on_grid, strict=True) if kept
        ]
        present[index, steps[on_grid]] = True
    return Vector([labels for labels, _ in rows], values, present).compact()


def _range_vector(result: list[dict], at_ms: int) -> RangeVector:
    series = [
        RangeSeries(
            row["metric"],
            np.array([round(float(ts) * 1000) for ts, _ in row["values"]], dtype=np.int64),
            np.array([float(value) for _, value in row["values"]]),
        )
        for row in result
    ]
    # The window VictoriaMetrics read is not in its answer: one wide enough for every sample.
    first_ms = min((int(one.ts[0]) for one in series if len(one.ts)), default=at_ms)
    return RangeVector(series, np.array([at_ms], dtype=np.int64), at_ms - first_ms)
