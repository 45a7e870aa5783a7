"""PromQL binary operators: arithmetic, comparison (filtering or ``bool``), and the set
operators, with vector matching (``on``/``ignoring``, ``group_left``/``group_right``)."""

import numpy as np

from query.values import (
    METRIC_NAME,
    ExecutionError,
    QueryError,
    Scalar,
    Vector,
    signature,
    without_name,
)

ARITHMETIC = {"+", "-", "*", "/", "%", "^", "atan2"}
# As in Prometheus 2.x, atan2 keeps the metric name; the other arithmetic operators drop it.
DROPS_NAME = ARITHMETIC - {"atan2"}
COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
SET_OPERATORS = {"and", "or", "unless"}


def apply(op: str, lhs: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``lhs op rhs`` elementwise with IEEE 754 results (x/0 is ±Inf, 0/0 NaN), as Go's."""
    with np.errstate(all="ignore"):
        match op:
            case "+":
                return lhs + rhs
            case "-":
                return lhs - rhs
            case "*":
                return lhs * rhs
            case "/":
                return lhs / rhs
            case "%":
                return np.fmod(lhs, rhs)
            case "^":
                return np.power(lhs, rhs)
            case "atan2":
                return np.arctan2(lhs, rhs)
            case "==":
                return lhs == rhs
            case "!=":
                return lhs != rhs
            case ">":
                return lhs > rhs
            case "<":
                return lhs < rhs
            case ">=":
                return lhs >= rhs
            case "<=":
                return lhs <= rhs
    raise QueryError(f"operator {op!r} is not supported by Vigil")


def binary_operation(op: str, lhs, rhs, modifier):
    returns_bool = bool(modifier is not None and modifier.return_bool)
    if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
        result = apply(op, lhs.values, rhs.values)
        return Scalar(result.astype(np.float64))
    if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
        return _vector_scalar(op, lhs, rhs.values, returns_bool, scalar_on_left=False)
    if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
        return _vector_scalar(op, rhs, lhs.values, returns_bool, scalar_on_left=True)
    if isinstance(lhs, Vector) and isinstance(rhs, Vector):
        if op in SET_OPERATORS:
            return _set_operation(op, lhs, rhs, modifier)
        return _vector_vector(op, lhs, rhs, modifier, returns_bool)
    raise QueryError(f"binary expression must contain only scalar and instant vector types ({op})")


def _vector_scalar(
    op: str, vector: Vector, scalar: np.ndarray, returns_bool: bool, scalar_on_left: bool
) -> Vector:
    left, right = (scalar[None, :], vector.values) if scalar_on_left else (vector.values, scalar)
    result = apply(op, left, right)
    if op in COMPARISON:
        if returns_bool:
            return vector.drop_name().with_values(result.astype(np.float64)).merged()
        # A filter: the vector's own value is kept, whichever side it is on.
        return Vector(vector.labels, vector.values, vector.present & result).compact()
    named = vector.drop_name() if op in DROPS_NAME else vector
    return named.with_values(result).merged()


def _matching(modifier) -> tuple[bool, list[str]]:
    """(on?, labels) of ``on(...)`` / ``ignoring(...)``; no modifier means ignoring()."""
    matching = modifier.matching if modifier is not None else None
    if matching is None:
        return False, []
    return str(matching.type).endswith("Include"), list(matching.labels)


def _signature_function(on: bool, names: list[str]):
    if on:
        wanted = set(names)
        return lambda labels: tuple(sorted((k, v) for k, v in labels.items() if k in wanted))
    ignored = set(names) | {METRIC_NAME}
    return lambda labels: tuple(sorted((k, v) for k, v in labels.items() if k not in ignored))


def _groups(vector: Vector, signature_of) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for index, labels in enumerate(vector.labels):
        groups.setdefault(signature_of(labels), []).append(index)
    return groups


def _set_operation(op: str, lhs: Vector, rhs: Vector, modifier) -> Vector:
    signature_of = _signature_function(*_matching(modifier))
    steps = lhs.present.shape[1]
    rhs_present = {
        sig: rhs.present[rows].any(axis=0) for sig, rows in _groups(rhs, signature_of).items()
    }
    nowhere = np.zeros(steps, dtype=bool)
    if op == "and":
        present = np.array(
            [lhs.present[i] & rhs_present.get(signature_of(labels), nowhere)
             for i, labels in enumerate(lhs.labels)]
        ).reshape(lhs.present.shape)  # fmt: skip
        return Vector(lhs.labels, lhs.values, present).compact()
    if op == "unless":
        present = np.array(
            [lhs.present[i] & ~rhs_present.get(signature_of(labels), nowhere)
             for i, labels in enumerate(lhs.labels)]
        ).reshape(lhs.present.shape)  # fmt: skip
        return Vector(lhs.labels, lhs.values, present).compact()
    lhs_present = {
        sig: lhs.present[rows].any(axis=0) for sig, rows in _groups(lhs, signature_of).items()
    }
    extra = np.array(
        [rhs.present[i] & ~lhs_present.get(signature_of(labels), nowhere)
         for i, labels in enumerate(rhs.labels)]
    ).reshape(rhs.present.shape)  # fmt: skip
    return (
        Vector(
            lhs.labels + rhs.labels,
            np.concatenate([lhs.values, rhs.values]),
            np.concatenate([lhs.present, extra]),
        )
        .merged()
        .compact()
    )


def _one_per_step(vector: Vector, rows: list[int], side: str, op: str):
    """The rows of one match group as one row; two samples at one step is an error."""
    if len(rows) == 1:
        return vector.values[rows[0]], vector.present[rows[0]]
    present = vector.present[rows]
    if (present.sum(axis=0) > 1).any():
        raise ExecutionError(
            f"found duplicate series for the match group on the {side} hand-side of the "
            f"operation ({op}); many-to-many matching not allowed: matching labels must be "
            "unique on one side"
        )
    return np.where(present, vector.values[rows], 0.0).sum(axis=0), present.any(axis=0)


def _result_labels(many: dict, one: dict, op: str, on: bool, names, card, include) -> dict:
    labels = without_name(many) if op in DROPS_NAME else dict(many)
    if card == "OneToOne":
        if on:
            labels = {k: v for k, v in labels.items() if k in set(names)}
        else:
            labels = {k: v for k, v in labels.items() if k not in set(names)}
    for name in include:
        if one.get(name):
            labels[name] = one[name]
        else:
            labels.pop(name, None)
    return labels


def _vector_vector(op: str, lhs: Vector, rhs: Vector, modifier, returns_bool: bool) -> Vector:
    on, names = _matching(modifier)
    card = str(modifier.card).rsplit(".", 1)[-1] if modifier is not None else "OneToOne"
    if card == "ManyToMany":
        raise QueryError(f"many-to-many matching is only allowed for set operators ({op})")
    include = list(modifier.group_labels or []) if modifier is not None else []
    signature_of = _signature_function(on, names)
    # Prometheus puts the "many" side on the left and swaps the operands back per element.
    many, one, swapped = (rhs, lhs, True) if card == "OneToMany" else (lhs, rhs, False)
    one_rows = {
        sig: _one_per_step(one, rows, "right" if not swapped else "left", op)
        for sig, rows in _groups(one, signature_of).items()
    }
    labels, values, present, group_of = [], [], [], []
    for index, many_labels in enumerate(many.labels):
        sig = signature_of(many_labels)
        matched = one_rows.get(sig)
        if matched is None:
            continue
        one_values, one_present = matched
        left, right = (one_values, many.values[index]) if swapped else (
            many.values[index], one_values)  # fmt: skip
        both = many.present[index] & one_present
        result = apply(op, left, right)
        if op in COMPARISON:
            if returns_bool:
                row_values = result.astype(np.float64)
            else:
                row_values = left
                both = both & result
        else:
            row_values = result
        one_labels = one.labels[_groups(one, signature_of)[sig][0]]
        row_labels = _result_labels(many_labels, one_labels, op, on, names, card, include)
        if returns_bool:
            row_labels = without_name(row_labels)
        labels.append(row_labels)
        values.append(row_values)
        present.append(both)
        group_of.append(sig)
    steps = lhs.present.shape[1]
    if not labels:
        return Vector.empty(steps)
    result = Vector(labels, np.array(values), np.array(present))
    _check_unique_matches(result, group_of, card)
    return result.merged().compact()


def _check_unique_matches(result: Vector, group_of: list, card: str) -> None:
    """One-to-one: each match group yields one sample per step; many-to-one: each result
    label set at most once per match group and step."""
    by_key: dict[tuple, list[int]] = {}
    for index, sig in enumerate(group_of):
        key = sig if card == "OneToOne" else (sig, signature(result.labels[index]))
        by_key.setdefault(key, []).append(index)
    for rows in by_key.values():
        if len(rows) > 1 and (result.present[rows].sum(axis=0) > 1).any():
            if card == "OneToOne":
                raise ExecutionError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            raise ExecutionError(
                "multiple matches for matching labels: grouping labels must ensure unique matches"
            )
