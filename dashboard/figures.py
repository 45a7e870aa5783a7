"""Plotly figures for the chart pages, as JSON for ``Plotly.newPlot`` (static/js/charts.js).

Times are UTC wall-clock strings (plotly.js has no time zones), which charts.js rewrites as the
wall time of the zone the page shows times in. Colours are left to charts.js, which takes them
from the theme's custom properties.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from instances import humanize
from instances.models import Series
from instances.store import Bucket

PLOT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def value_format(unit: str) -> tuple[dict, str]:
    """The y axis settings and hover value of a series in ``unit``, as instances.humanize
    writes them: ``1.93GB`` not plotly's ``1.93B`` ("billions"), ``250ms``, ``45%``."""
    key = unit.lower()
    if key in humanize.PERCENT_UNITS:
        return {"range": [0, 100], "ticksuffix": "%"}, "%{y:.3~r}%"
    for units, suffix in (
        (humanize.BYTE_UNITS, "B"),
        (humanize.BYTE_RATE_UNITS, "B/s"),
        (humanize.SECOND_UNITS, "s"),
    ):
        if key in units:
            return {"tickformat": ".3~s", "ticksuffix": suffix}, "%{y:.3~s}" + suffix
    axis = {"exponentformat": "SI"}
    if unit:
        axis["title"] = {"text": unit, "font": {"size": 11}}
    return axis, "%{y:,.4~r}" + (f" {unit}" if unit else "")


def plotly_text(text: str) -> str:
    """``text`` as plotly shows it literally. Plotly reads <a href>, <b>, <br> and entities in
    trace names, titles and labels; names come from agents (instance names, label values), so
    one named ``<a href="https://evil.example">`` must not become a link on an Operator's
    chart."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plot_time(moment: datetime) -> str:
    """A moment as plotly.js reads it on a date axis: UTC, no offset."""
    return moment.astimezone(UTC).strftime(PLOT_TIME_FORMAT)


def labels_text(labels: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


def time_chart_layout(start: datetime, end: datetime, yaxis: dict, showlegend: bool) -> dict:
    """The layout every chart shares: a UTC date axis over ``[start, end]``, tight margins, a
    transparent background (charts.js adds the theme's colours)."""
    return {
        "margin": {"l": 8, "r": 8, "t": 6, "b": 8},
        "xaxis": {"type": "date", "range": [plot_time(start), plot_time(end)], "automargin": True},
        "yaxis": yaxis,
        "showlegend": showlegend,
        "legend": {"orientation": "h", "y": -0.18, "font": {"size": 11}},
        "hovermode": "x unified",
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"size": 11},
    }


def metric_figure(
    name: str,
    unit: str,
    traces: Sequence[tuple[Series, Sequence[Bucket]]],
    start: datetime,
    end: datetime,
    value: str = "avg",
    names: dict[int, str] | None = None,
    mode: str = "lines",
    layout: dict | None = None,
) -> str:
    """One chart of a metric: a line per series (label set), ``value`` of each bucket;
    ``mode`` ``lines+markers`` marks each point too (for sparse series, such as a daily job's
    run times, whose lone points a line alone does not show).

    Each trace carries its series id in ``meta``, so live points find their line; ``names``
    overrides a trace's legend name (by series id); ``layout`` adds to the chart's layout (the
    shapes and labels of annotations.add_to_layout).
    """
    axis, hover_value = value_format(unit)
    figure = go.Figure()
    for series, buckets in traces:
        figure.add_trace(
            go.Scatter(
                x=[plot_time(bucket.ts) for bucket in buckets],
                y=[getattr(bucket, value) for bucket in buckets],
                mode=mode,
                line={"width": 1.6},
                name=plotly_text(
                    (names or {}).get(series.pk) or labels_text(series.labels) or name
                ),
                meta=series.pk,
                hovertemplate=hover_value + "<extra>%{fullData.name}</extra>",
            )
        )
    yaxis = {"zeroline": False, "automargin": True, **axis}
    figure.update_layout(time_chart_layout(start, end, yaxis, showlegend=len(traces) > 1))
    figure.update_layout(layout or {})
    return figure.to_json()


# Threshold bands and episode marks in the theme's custom properties (charts.js resolves them);
# the bands translucent so the lines read through them. A moment's label is text, so amber is
# its text shade.
BAND_COLOURS = {"warning": "var(--warning)", "critical": "var(--unhealthy)"}
BAND_OPACITY = 0.14
MOMENT_COLOURS = {
    "pending": "var(--warning-text)",
    "firing": "var(--unhealthy)",
    "acknowledged": "var(--muted)",
    "resolved": "var(--healthy)",
}
COMPARISON_LINE = {"width": 1, "color": "rgba(128, 128, 128, 0.55)", "dash": "dot"}


def alert_figure(
    rule,
    unit: str,
    own: Sequence[tuple[int, str, Sequence[Bucket]]],
    others: Sequence[tuple[int, str, Sequence[Bucket]]],
    moments: Sequence[tuple[str, datetime]],
    start: datetime,
    end: datetime,
) -> str:
    """ "Why is this firing": the alert's series (``(series_id, name, buckets)``) against the
    rule's warning and critical thresholds as bands, the episode's ``moments`` (pending, firing,
    acknowledged, resolved) as marked vertical lines, and other instances' series dotted grey.
    """
    axis, hover_value = value_format(unit)
    figure = go.Figure()
    for index, (series_id, name, buckets) in enumerate(others):
        # One legend entry for them all (a phone has no room for ten); hovering names each.
        trace = _line(series_id, name, buckets, hover_value, COMPARISON_LINE)
        trace.update(name="other instances", legendgroup="others", showlegend=index == 0)
        figure.add_trace(trace)
    for series_id, name, buckets in own:
        figure.add_trace(_line(series_id, name, buckets, hover_value, {"width": 2}))
    values = [bucket.avg for _, _, buckets in (*own, *others) for bucket in buckets]
    thresholds = [t for t in (rule.warning_threshold, rule.critical_threshold) if t is not None]
    if "range" in axis:
        low, high = axis["range"]
    else:
        low = min([0.0, *values, *thresholds])
        high = max([*values, *thresholds, 1.0])
        high += (high - low) * 0.1
    figure.update_layout(shapes=_threshold_bands(rule, low, high) + _moment_lines(moments))
    figure.update_layout(
        annotations=[
            {
                "x": plot_time(when),
                # Staggered, so marks a minute apart do not print over each other.
                "y": 1 - 0.08 * (index % 2),
                "xref": "x",
                "yref": "paper",
                "text": label,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "font": {"size": 10, "color": MOMENT_COLOURS[label]},
            }
            for index, (label, when) in enumerate(moments)
            if start <= when <= end
        ]
    )
    yaxis = {"zeroline": False, "automargin": True, **axis, "range": [low, high]}
    figure.update_layout(
        time_chart_layout(start, end, yaxis, showlegend=bool(others) or len(own) > 1)
    )
    return figure.to_json()


def _line(series_id, name: str, buckets, hover_value: str, line: dict) -> go.Scatter:
    # The name is in the hover text itself, so a trace can share a legend entry.
    name = plotly_text(name)
    label = name.replace("%", "%%").replace("{", "(").replace("}", ")")
    return go.Scatter(
        x=[plot_time(bucket.ts) for bucket in buckets],
        y=[bucket.avg for bucket in buckets],
        mode="lines",
        line=line,
        name=name,
        meta=series_id,
        hovertemplate=hover_value + f"<extra>{label}</extra>",
    )


def _threshold_bands(rule, low: float, high: float) -> list[dict]:
    """Where the value breaches: above the thresholds for > and >=, below them for < and <=."""
    upward = rule.comparator in (">", ">=")
    edge = high if upward else low
    bands = []
    if rule.critical_threshold is not None:
        bands.append(("critical", rule.critical_threshold, edge))
    if rule.warning_threshold is not None:
        bands.append(("warning", rule.warning_threshold, rule.critical_threshold or edge))
    return [
        {
            "type": "rect",
            "xref": "paper",
            "x0": 0,
            "x1": 1,
            "yref": "y",
            "y0": bottom,
            "y1": top,
            "fillcolor": BAND_COLOURS[severity],
            "opacity": BAND_OPACITY,
            "line": {"width": 0},
            "layer": "below",
            "name": f"{severity} {rule.comparator} {humanize.quantity(bottom)}",
        }
        for severity, bottom, top in bands
    ]


def _moment_lines(moments: Sequence[tuple[str, datetime]]) -> list[dict]:
    return [
        {
            "type": "line",
            "xref": "x",
            "x0": plot_time(when),
            "x1": plot_time(when),
            "yref": "paper",
            "y0": 0,
            "y1": 1,
            "line": {"color": MOMENT_COLOURS[label], "width": 1.5, "dash": "dash"},
            "name": label,
        }
        for label, when in moments
    ]
