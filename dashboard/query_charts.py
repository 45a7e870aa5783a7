"""PromQL on the chart pages: a query evaluated over a page's time range and drawn as one plotly
line per returned series. Explore draws any query with it, the instance page its counters' rates.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import orjson
import plotly.graph_objects as go

from dashboard import annotations, figures
from dashboard.timerange import TimeRange
from instances.formats import EPOCH
from query import engine
from query.values import METRIC_NAME, QueryError, Scalar, String, Vector

# Steps a chart may use: the smallest one giving at most the wanted number of points.
NICE_STEPS_SECONDS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
DURATION_UNITS_MS = (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1))
METRIC_NAME_PATTERN = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
# How the engine names the query text in a parse error (it speaks to the HTTP API).
API_PARAMETER_PREFIX = 'invalid parameter "query": '
# The agent's default interval: a rate window must hold at least two of its samples.
SAMPLE_INTERVAL_MS = 30_000


def auto_step_ms(time_range: TimeRange, points: int) -> int:
    """A round step giving at most ``points`` points over the range (15 s at least)."""
    wanted = time_range.seconds / points
    seconds = next((step for step in NICE_STEPS_SECONDS if step >= wanted), None)
    return (seconds or NICE_STEPS_SECONDS[-1]) * 1000


def rate_window_ms(step_ms: int) -> int:
    """Grafana's ``$__rate_interval``: a window that spans the step plus one sample interval and
    never fewer than four samples, so a rate at every step sees every increase."""
    return max(step_ms + SAMPLE_INTERVAL_MS, 4 * SAMPLE_INTERVAL_MS)


def duration(milliseconds: int) -> str:
    """A PromQL duration: 90000 -> ``1m30s``."""
    parts, rest = [], milliseconds
    for unit, size in DURATION_UNITS_MS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def quoted(value: str) -> str:
    """A PromQL string literal (JSON's escapes are a subset of PromQL's)."""
    return json.dumps(value, ensure_ascii=False)


def selector(name: str, labels: dict[str, str]) -> str:
    """``name{label="value", ...}``; a name PromQL cannot write bare goes inside the braces."""
    matchers = [f"{key}={quoted(value)}" for key, value in labels.items()]
    if not METRIC_NAME_PATTERN.match(name):
        return "{" + ", ".join([f"{METRIC_NAME}={quoted(name)}", *matchers]) + "}"
    return name + ("{" + ", ".join(matchers) + "}" if matchers else "")


LEGEND_FORMAT_REFERENCE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def formatted_legend(legend_format: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: ``{{instance}} {{mode}}`` with the series' labels (a label it
    lacks reads as nothing); a blank format names the series as ``legend`` does."""
    if not legend_format.strip():
        return legend(labels)
    return LEGEND_FORMAT_REFERENCE.sub(lambda match: labels.get(match[1], ""), legend_format)


def legend(labels: dict[str, str]) -> str:
    """A series as Prometheus and Grafana name it: ``name{instance="a", mode="idle"}``."""
    name = labels.get(METRIC_NAME, "")
    rest = [f"{key}={quoted(value)}" for key, value in sorted(labels.items()) if key != METRIC_NAME]
    if not rest:
        return name or "{}"
    return name + "{" + ", ".join(rest) + "}"


@dataclass(frozen=True)
class RangeResult:
    """A range query's answer: the step times and, per series, its labels, values and at which
    steps it has one. ``total`` counts the series before the cut to ``limit``."""

    times_ms: np.ndarray
    labels: list[dict[str, str]]
    values: np.ndarray  # (series, steps)
    present: np.ndarray  # (series, steps) bool
    total: int

    def plot_times(self) -> list[str]:
        return [figures.plot_time(self.moment(int(ms))) for ms in self.times_ms]

    @staticmethod
    def moment(ms: int) -> datetime:
        return EPOCH + timedelta(milliseconds=ms)

    def latest(self) -> list[tuple[dict[str, str], float, datetime] | None]:
        """Each series' newest value and its time (None if it has none)."""
        rows = []
        for labels, values, present in zip(self.labels, self.values, self.present, strict=True):
            steps = np.flatnonzero(present)
            if len(steps):
                last = steps[-1]
                rows.append((labels, float(values[last]), self.moment(int(self.times_ms[last]))))
            else:
                rows.append((labels, float("nan"), None))
        return rows


class QueryOutcome:
    """What a page shows of a query's refusal: its HTTP status and the engine's message without
    the HTTP API's parameter name (the page's box is the query)."""

    error: QueryError | None

    @property
    def status(self) -> int:
        return self.error.status if self.error else 200

    @property
    def error_message(self) -> str:
        return str(self.error).removeprefix(API_PARAMETER_PREFIX)


def evaluate_range(
    promql: str, time_range: TimeRange, step_ms: int, limit: int | None = None
) -> RangeResult:
    """``promql`` at every step over the range (steps aligned to multiples of the step, as
    Grafana does, so a refresh draws the same points). Raises QueryError for what the engine
    refuses, and for a string, which has no place on a chart (as in Prometheus)."""
    start_ms = _ms(time_range.start) // step_ms * step_ms
    end_ms = _ms(time_range.end) // step_ms * step_ms
    times = engine.step_times(start_ms, end_ms, step_ms)
    result = engine.evaluate(promql, start_ms, end_ms, step_ms)
    if isinstance(result, String):
        raise QueryError(
            'invalid expression type "string" for range query, must be Scalar or instant Vector'
        )
    if isinstance(result, Scalar):
        values = result.values[np.newaxis, :]
        return RangeResult(times, [{}], values, np.ones(values.shape, dtype=bool), 1)
    assert isinstance(result, Vector)
    order = sorted(range(len(result)), key=lambda row: sorted(result.labels[row].items()))
    kept = order[:limit]
    labels = [result.labels[row] for row in kept]
    return RangeResult(times, labels, result.values[kept], result.present[kept], len(result))


def _ms(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() * 1000)


def figure(
    result: RangeResult,
    time_range: TimeRange,
    names: list[str],
    value_suffix: str = "",
    always_legend: bool = False,
    unit: str | None = None,
    y_range: tuple[float | None, float | None] = (None, None),
    marks: Iterable[annotations.Mark] = (),
) -> str:
    """A line per series, named ``names``; a step without a value (or an infinite one) is a gap.
    A long legend scrolls instead of squeezing the plot. Given a ``unit``, the axis and hover
    write values in it (figures.value_format) instead of adding ``value_suffix``; ``y_range``
    fixes the y axis (or makes it reach the one end given); ``marks`` (alert episodes,
    annotations) are drawn behind the lines.

    The traces are written as plain dicts: plotly validating a hundred of them took 0.3 s (25 ms
    this way). The layout still goes through plotly, for the default template the other charts
    have.
    """
    x = result.plot_times()
    unit_axis, hover_value = figures.value_format(unit) if unit is not None else ({}, "")
    hover = (hover_value or "%{y:.4~g}" + value_suffix) + "<extra>%{fullData.name}</extra>"
    traces = [
        {
            "type": "scatter",
            "x": x,
            "y": np.where(present & np.isfinite(values), values, None).tolist(),
            "mode": "lines",
            "line": {"width": 1.6},
            "name": figures.plotly_text(name),
            "hovertemplate": hover,
        }
        for name, values, present in zip(names, result.values, result.present, strict=True)
    ]
    yaxis = {"zeroline": False, "automargin": True, "exponentformat": "SI", **unit_axis}
    if None not in y_range:
        yaxis["range"] = list(y_range)
    elif y_range != (None, None):
        # One end given: the axis fits the data (not a percentage's whole 0-100), and reaches
        # that end.
        yaxis.pop("range", None)
        yaxis["autorangeoptions"] = {"include": [end for end in y_range if end is not None]}
    showlegend = always_legend or len(names) > 1
    layout = figures.time_chart_layout(time_range.start, time_range.end, yaxis, showlegend)
    # At the figure's foot, below the axis labels whatever the chart's height.
    layout["legend"].update(yref="container", y=0, yanchor="bottom", maxheight=0.3)
    layout["hoverlabel"] = {"namelength": -1}
    annotations.add_to_layout(layout, marks)
    plotted = go.Figure(layout=layout).to_plotly_json()["layout"]
    return orjson.dumps({"data": traces, "layout": plotted}).decode()
