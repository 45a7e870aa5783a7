"""The values a PromQL expression evaluates to, over every step of a query at once.

An instant vector is a matrix: one row per series, one column per evaluation step, with a mask
saying at which steps the series has a sample. Evaluating all steps together lets each operator
run as one array operation instead of once per step; each row's label set is unique (rows that
would share one are merged, as Prometheus would output them as one series).
"""

import re
from dataclasses import dataclass, field

import numpy as np

METRIC_NAME = "__name__"
LABEL_NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

Labels = dict[str, str]


class QueryError(Exception):
    """A query Prometheus would refuse: answered as ``bad_data`` (HTTP 400)."""

    error_type = "bad_data"
    status = 400


class ExecutionError(QueryError):
    """A valid query that cannot be answered within the limits: ``execution`` (HTTP 422)."""

    error_type = "execution"
    status = 422


class QueryTimeout(QueryError):
    error_type = "timeout"
    status = 503


def signature(labels: Labels) -> tuple:
    return tuple(sorted(labels.items()))


def without_name(labels: Labels) -> Labels:
    return {key: value for key, value in labels.items() if key != METRIC_NAME}


@dataclass
class Scalar:
    values: np.ndarray  # (steps,)


@dataclass
class String:
    value: str


@dataclass
class Vector:
    labels: list[Labels]
    values: np.ndarray  # (series, steps) float64
    present: np.ndarray  # (series, steps) bool
    # The sample's own time where a selector read it (for timestamp()); else the step's time.
    sample_ms: np.ndarray | None = field(default=None)

    @classmethod
    def empty(cls, steps: int) -> "Vector":
        return cls([], np.empty((0, steps)), np.zeros((0, steps), dtype=bool))

    def __len__(self) -> int:
        return len(self.labels)

    def with_values(self, values: np.ndarray, present: np.ndarray | None = None) -> "Vector":
        return Vector(self.labels, values, self.present if present is None else present)

    def drop_name(self) -> "Vector":
        return Vector([without_name(labels) for labels in self.labels], self.values, self.present)

    def merged(self) -> "Vector":
        """Rows with one label set become one row; if two have a sample at one step, the query
        is refused as Prometheus does."""
        rows: dict[tuple, list[int]] = {}
        for index, labels in enumerate(self.labels):
            rows.setdefault(signature(labels), []).append(index)
        if len(rows) == len(self.labels):
            return self
        labels, values, present = [], [], []
        for indexes in rows.values():
            row_present = self.present[indexes]
            if (row_present.sum(axis=0) > 1).any():
                raise ExecutionError("vector cannot contain metrics with the same labelset")
            labels.append(self.labels[indexes[0]])
            values.append(np.where(row_present, self.values[indexes], 0.0).sum(axis=0))
            present.append(row_present.any(axis=0))
        return Vector(labels, np.array(values), np.array(present))

    def compact(self) -> "Vector":
        """Without rows that have no sample at any step."""
        keep = self.present.any(axis=1)
        if keep.all():
            return self
        sample_ms = None if self.sample_ms is None else self.sample_ms[keep]
        return Vector(
            [labels for labels, kept in zip(self.labels, keep, strict=True) if kept],
            self.values[keep],
            self.present[keep],
            sample_ms,
        )


@dataclass
class RangeSeries:
    """One series' samples for a range vector: times in ms and values, by time."""

    labels: Labels
    ts: np.ndarray
    values: np.ndarray


@dataclass
class RangeVector:
    """A range vector at every step: each series' samples, and per step the window
    ``[ends - range_ms, ends]`` over them (``ends`` already moved by offset and @)."""

    series: list[RangeSeries]
    ends: np.ndarray  # (steps,) ms
    range_ms: int

    def windows(self, series: RangeSeries) -> tuple[np.ndarray, np.ndarray]:
        """Per step, the index of the window's first sample and one past its last."""
        first = np.searchsorted(series.ts, self.ends - self.range_ms, side="left")
        last = np.searchsorted(series.ts, self.ends, side="right")
        return first, last
