"""PromQL aggregation operators over instant vectors, grouped ``by`` or ``without`` labels."""

import numpy as np

from query.functions import format_value, quantile_of
from query.values import METRIC_NAME, QueryError, Scalar, String, Vector, signature

SIMPLE = {"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"}


def _grouping(modifier):
    """A function from a series' labels to its group's labels."""
    if modifier is None:
        return lambda labels: {}
    names = set(modifier.labels)
    if str(modifier.type).endswith("Without"):
        dropped = names | {METRIC_NAME}
        return lambda labels: {k: v for k, v in labels.items() if k not in dropped}
    return lambda labels: {k: v for k, v in labels.items() if k in names}


def _groups(vector: Vector, group_labels_of) -> list[tuple[dict, list[int]]]:
    groups: dict[tuple, tuple[dict, list[int]]] = {}
    for index, labels in enumerate(vector.labels):
        group = group_labels_of(labels)
        groups.setdefault(signature(group), (group, []))[1].append(index)
    return list(groups.values())


def aggregate(op: str, vector: Vector, param, modifier) -> Vector:
    group_labels_of = _grouping(modifier)
    steps = vector.present.shape[1]
    if op in ("topk", "bottomk"):
        return _top(op, vector, _scalar_param(param, op), group_labels_of)
    if op == "count_values":
        if not isinstance(param, String):
            raise QueryError("expected type string in aggregation parameter of count_values")
        return _count_values(param.value, vector, group_labels_of)
    if op == "quantile":
        phi = _scalar_param(param, op)
    elif op not in SIMPLE:
        raise QueryError(f"aggregation {op!r} is not supported by Vigil")
    labels, values, present = [], [], []
    for group, rows in _groups(vector, group_labels_of):
        row_values, row_present = vector.values[rows], vector.present[rows]
        count = row_present.sum(axis=0)
        with np.errstate(all="ignore"):
            if op == "quantile":
                result = np.array(
                    [quantile_of(phi[step], row_values[row_present[:, step], step])
                     for step in range(steps)]
                ) if steps else np.empty(0)  # fmt: skip
            else:
                result = _simple(op, row_values, row_present, count)
        labels.append(group)
        values.append(result)
        present.append(count > 0)
    if not labels:
        return Vector.empty(steps)
    return Vector(labels, np.array(values, dtype=np.float64), np.array(present)).compact()


def _simple(op: str, values: np.ndarray, present: np.ndarray, count: np.ndarray) -> np.ndarray:
    zeroed = np.where(present, values, 0.0)
    match op:
        case "sum":
            return zeroed.sum(axis=0)
        case "count":
            return count.astype(np.float64)
        case "group":
            return np.ones(values.shape[1])
        case "avg":
            return _mean(values, present, count)
        case "min" | "max":
            # Like Prometheus, NaN loses to any number: it is the result only if all are NaN.
            reduce = np.fmin if op == "min" else np.fmax
            return reduce.reduce(np.where(present, values, np.nan), axis=0)
        case "stddev" | "stdvar":
            mean = _mean(values, present, count)
            variance = np.where(present, (values - mean) ** 2, 0.0).sum(axis=0) / count
            return np.sqrt(variance) if op == "stddev" else variance
    raise QueryError(f"aggregation {op!r} is not supported by Vigil")


def _mean(values: np.ndarray, present: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The mean, computed incrementally as Prometheus does when a plain sum would overflow."""
    zeroed = np.where(present, values, 0.0)
    total = zeroed.sum(axis=0)
    mean = total / count
    overflowed = np.isinf(total) & np.isfinite(zeroed).all(axis=0)
    if overflowed.any():
        scaled = np.where(present, values / np.maximum(count, 1), 0.0).sum(axis=0)
        mean = np.where(overflowed, scaled, mean)
    return mean


def _scalar_param(param, op: str) -> np.ndarray:
    if not isinstance(param, Scalar):
        raise QueryError(f"expected type scalar in aggregation parameter of {op}")
    return param.values


def _top(op: str, vector: Vector, k_values: np.ndarray, group_labels_of) -> Vector:
    """topk / bottomk: per group and step the k largest (smallest) samples, labels kept."""
    present = np.zeros_like(vector.present)
    steps = vector.present.shape[1]
    for _, rows in _groups(vector, group_labels_of):
        rows = np.array(rows)
        for step in range(steps):
            k = k_values[step]
            if np.isnan(k):
                raise QueryError(f"Parameter value is NaN for {op}")
            k = int(k)
            here = rows[vector.present[rows, step]]
            if k < 1 or len(here) == 0:
                continue
            values = vector.values[here, step]
            # NaN sorts last either way, as in Prometheus; stable sort keeps series order.
            key = np.where(np.isnan(values), np.inf, -values if op == "topk" else values)
            chosen = here[np.argsort(key, kind="stable")[:k]]
            present[chosen, step] = True
    return Vector(vector.labels, vector.values, present).compact()


def _count_values(label: str, vector: Vector, group_labels_of) -> Vector:
    if (
        not label
        or not (label[0].isalpha() or label[0] == "_")
        or not all(ch.isalnum() or ch == "_" for ch in label)
    ):
        raise QueryError(f"invalid label name {label!r}")
    steps = vector.present.shape[1]
    counts: dict[tuple, tuple[dict, np.ndarray]] = {}
    for index, labels in enumerate(vector.labels):
        group = group_labels_of(labels)
        for step in np.flatnonzero(vector.present[index]):
            row_labels = {**group, label: format_value(vector.values[index, step])}
            entry = counts.setdefault(signature(row_labels), (row_labels, np.zeros(steps)))
            entry[1][step] += 1
    if not counts:
        return Vector.empty(steps)
    labels = [entry[0] for entry in counts.values()]
    values = np.array([entry[1] for entry in counts.values()])
    return Vector(labels, values, values > 0)
