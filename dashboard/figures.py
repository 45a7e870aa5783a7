"""Plotly figures for the chart pages, as JSON for ``Plotly.newPlot`` (static/js/charts.js).

Times are UTC wall-clock strings (plotly.js has no time zones); the pages say so. Colours are left
to charts.js, which takes them from the theme's custom properties.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from instances.models import Series
from instances.store import Bucket

PERCENT_UNITS = {"percent", "%"}
PLOT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def plot_time(moment: datetime) -> str:
    """A moment as plotly.js reads it on a date axis: UTC, no offset."""
    return moment.astimezone(UTC).strftime(PLOT_TIME_FORMAT)


def labels_text(labels: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


def metric_figure(
    name: str,
    unit: str,
    traces: Sequence[tuple[Series, Sequence[Bucket]]],
    start: datetime,
    end: datetime,
    value: str = "avg",
    names: dict[int, str] | None = None,
) -> str:
    """One chart of a metric: a line per series (label set), ``value`` of each bucket.

    Each trace carries its series id in ``meta``, so live points find their line; ``names``
    overrides a trace's legend name (by series id).
    """
    suffix = "%" if unit in PERCENT_UNITS else (f" {unit}" if unit else "")
    figure = go.Figure()
    for series, buckets in traces:
        figure.add_trace(
            go.Scatter(
                x=[plot_time(bucket.ts) for bucket in buckets],
                y=[getattr(bucket, value) for bucket in buckets],
                mode="lines",
                line={"width": 1.6},
                name=(names or {}).get(series.pk) or labels_text(series.labels) or name,
                meta=series.pk,
                hovertemplate="%{y:.4~g}" + suffix + "<extra>%{fullData.name}</extra>",
            )
        )
    yaxis = {"zeroline": False, "automargin": True}
    if unit in PERCENT_UNITS:
        yaxis.update(range=[0, 100], ticksuffix="%")
    elif unit:
        yaxis.update(title={"text": unit, "font": {"size": 11}})
    figure.update_layout(
        margin={"l": 8, "r": 8, "t": 6, "b": 8},
        xaxis={"type": "date", "range": [plot_time(start), plot_time(end)], "automargin": True},
        yaxis=yaxis,
        showlegend=len(traces) > 1,
        legend={"orientation": "h", "y": -0.18, "font": {"size": 11}},
        hovermode="x unified",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 11},
    )
    return figure.to_json()
