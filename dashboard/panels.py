"""A dashboard panel's content: its queries (variables interpolated) evaluated by the PromQL
engine over the dashboard's time range, and shown as its type draws them — a line chart, big
numbers with a sparkline, gauges, bars, a table of the latest values, or Markdown.

Each panel is its own HTMX request (the page loads them in parallel); a query the engine refuses
becomes that panel's error, never the page's.
"""

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import orjson
import plotly.graph_objects as go
from markdown_it import MarkdownIt

from dashboard import annotations, figures, query_charts, variables
from dashboard.models import Panel
from dashboard.timerange import TimeRange
from instances import humanize
from query.values import QueryError

CHART_POINTS = 250
# Series one panel draws at most (as Explore); stat, gauge and bar panels show fewer.
MAX_SERIES = 100
MAX_VALUES = 12
# Threshold colours a panel may name (Grafana's names): for gauges and bars, the theme's custom
# property (charts.js resolves it) that the name's class in vigil.css gives a stat's number.
THRESHOLD_COLOURS = {
    "green": "var(--healthy-text)",
    "blue": "var(--info-text)",
    "yellow": "var(--warning-text)",
    "orange": "var(--warning-text)",
    "red": "var(--unhealthy-text)",
    "purple": "var(--purple-text)",
}
# Raw HTML in Markdown is written out as text, and markdown-it refuses javascript: links.
MARKDOWN = MarkdownIt("commonmark", {"html": False})


@dataclass(frozen=True)
class ShownValue:
    name: str
    text: str
    colour: str  # a THRESHOLD_COLOURS key, or ""


@dataclass
class PanelContent(query_charts.QueryOutcome):
    panel: Panel
    figure: str = ""
    values: list[ShownValue] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    html: str = ""
    error: QueryError | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.figure or self.values or self.rows or self.html or self.error)


def display_value(value: float, unit: str, decimals: int | None) -> str:
    """A value as a panel shows it: in its unit's scale (instances.humanize), or with exactly
    ``decimals`` decimals when the panel asks for them."""
    if decimals is None or not np.isfinite(value):
        return humanize.quantity(value, unit)
    suffix = " %" if unit.lower() in humanize.PERCENT_UNITS else f" {unit}" if unit else ""
    return f"{value:,.{decimals}f}{suffix}"


def content(panel: Panel, time_range: TimeRange, chosen: list[variables.Variable]) -> PanelContent:
    """What ``panel`` shows over ``time_range`` with the ``chosen`` variable values."""
    if panel.type == Panel.Type.TEXT:
        return PanelContent(panel, html=MARKDOWN.render(panel.text))
    try:
        if panel.type == Panel.Type.TABLE:
            return _table(panel, time_range, chosen)
        result, names = _evaluate(panel, time_range, chosen)
    except QueryError as error:
        return PanelContent(panel, error=error)
    if not names:
        return PanelContent(panel)
    if panel.type == Panel.Type.TIMESERIES:
        figure = query_charts.figure(
            result,
            time_range,
            names,
            unit=panel.unit,
            y_range=(panel.min, panel.max),
            marks=_marks(panel, time_range, result),
        )
        return PanelContent(panel, figure=figure)
    latest = _latest(panel, result, names)
    if panel.type == Panel.Type.STAT:
        return PanelContent(panel, values=latest, figure=_sparkline(result))
    if panel.type == Panel.Type.GAUGE:
        return PanelContent(panel, figure=_gauges(panel, result, latest))
    return PanelContent(panel, figure=_bars(panel, result, latest))


def _evaluate(
    panel: Panel, time_range: TimeRange, chosen: list[variables.Variable], instant: bool = False
) -> tuple[query_charts.RangeResult | None, list[str]]:
    """Every query of the panel over the range (at its end only if ``instant``), one after the
    other as one result, and each series' legend name."""
    step_ms = query_charts.auto_step_ms(time_range, CHART_POINTS)
    over = TimeRange(time_range.key, time_range.end, time_range.end) if instant else time_range
    results, names = [], []
    for query in panel.queries:
        if not query.get("expr", "").strip():
            continue
        expr = variables.interpolate(query["expr"], chosen, step_ms, time_range.seconds * 1000)
        result = query_charts.evaluate_range(expr, over, step_ms, MAX_SERIES)
        results.append(result)
        names += _series_names(query, expr, result)
    if not results:
        return None, []
    combined = query_charts.RangeResult(
        results[0].times_ms,
        [labels for result in results for labels in result.labels],
        np.vstack([result.values for result in results]),
        np.vstack([result.present for result in results]),
        sum(result.total for result in results),
    )
    return combined, names


def _marks(
    panel: Panel, time_range: TimeRange, result: query_charts.RangeResult
) -> list[annotations.Mark]:
    """The alert episodes of the instances the panel's series name (of every instance when
    none does, as for a sum over the fleet) and the annotations its dashboard's tags pick."""
    agent_ids = {labels["instance"] for labels in result.labels if "instance" in labels}
    episodes = annotations.alert_episodes(time_range.start, time_range.end, agent_ids or None)
    posted = annotations.posted(time_range.start, time_range.end, panel.dashboard.annotation_tags)
    return sorted([*episodes, *posted], key=lambda mark: mark.start)


def _series_names(query: dict, expr: str, result: query_charts.RangeResult) -> list[str]:
    """Each series' legend name; a series without labels (a sum, a scalar) is named by its
    query unless a format says."""
    legend = query.get("legend", "")
    return [
        query_charts.formatted_legend(legend, labels) if labels or legend.strip() else expr
        for labels in result.labels
    ]


def live_points(
    panel: Panel, time_range: TimeRange, chosen: list[variables.Variable], at: datetime
) -> dict[str, list]:
    """A time-series panel's value of each series at ``at`` (the moment of a live push), by its
    line's name: ``{name: [plot time, value]}``. Variables interpolate as for the whole chart
    (``$__rate_interval`` for its step), so the new point continues its line. A query the
    engine refuses, or a series without a value at ``at``, adds nothing."""
    step_ms = query_charts.auto_step_ms(time_range, CHART_POINTS)
    moment = TimeRange(time_range.key, at, at)
    when = figures.plot_time(at)
    points = {}
    for query in panel.queries:
        if not query.get("expr", "").strip():
            continue
        expr = variables.interpolate(query["expr"], chosen, step_ms, time_range.seconds * 1000)
        try:
            # A step of 1 ms evaluates at ``at`` itself, not at the chart's last whole step.
            result = query_charts.evaluate_range(expr, moment, 1, MAX_SERIES)
        except QueryError:
            continue
        for name, values, present in zip(
            _series_names(query, expr, result), result.values, result.present, strict=True
        ):
            if present[-1] and np.isfinite(values[-1]):
                # Keyed as the chart's trace is named (plotly-escaped), so the point finds it.
                points[figures.plotly_text(name)] = [when, float(values[-1])]
    return points


def _latest(panel: Panel, result: query_charts.RangeResult, names: list[str]) -> list[ShownValue]:
    shown = []
    for name, (_, value, at) in zip(names, result.latest(), strict=True):
        if at is None:
            continue
        colour = panel.threshold_colour(value)
        shown.append(
            ShownValue(
                name,
                display_value(value, panel.unit, panel.decimals),
                colour if colour in THRESHOLD_COLOURS else "",
            )
        )
    return shown[:MAX_VALUES]


def _sparkline(result: query_charts.RangeResult) -> str:
    """The first series from its first value to the range's end, small and without axes, under
    the stat's number (a series younger than the range fills the width, not a sliver of it)."""
    shown = result.present[0] & np.isfinite(result.values[0])
    first = int(np.argmax(shown)) if shown.any() else 0
    values = np.where(shown, result.values[0], None)[first:]
    trace = {
        "type": "scatter",
        "x": result.plot_times()[first:],
        "y": values.tolist(),
        "mode": "lines",
        "line": {"width": 1.5},
        "fill": "tozeroy",
        "hoverinfo": "skip",
    }
    layout = {
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "xaxis": {"visible": False, "fixedrange": True},
        "yaxis": {"visible": False, "fixedrange": True},
        "showlegend": False,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
    }
    return orjson.dumps({"data": [trace], "layout": layout}).decode()


def _value_range(panel: Panel, result: query_charts.RangeResult) -> tuple[float, float]:
    """The panel's min and max; else 0-100 for a percentage, else 0 to the largest value."""
    if panel.unit.lower() in humanize.PERCENT_UNITS:
        default_high = 100.0
    else:
        finite = result.values[result.present & np.isfinite(result.values)]
        default_high = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    low = panel.min if panel.min is not None else 0.0
    high = panel.max if panel.max is not None else default_high
    return low, max(high, low + 1e-9)


def _colour(panel: Panel, value: float) -> str:
    return THRESHOLD_COLOURS.get(panel.threshold_colour(value), THRESHOLD_COLOURS["blue"])


def _gauges(panel: Panel, result: query_charts.RangeResult, latest: list[ShownValue]) -> str:
    """A gauge per series, its bar in its threshold's colour and the top threshold marked on
    the dial. Several gauges share the panel: each is named, and its dial labelled at its min
    and max only; charts.js lays them out in rows and columns for the size they are drawn at,
    and drops the labels of a dial too small for them."""
    low, high = _value_range(panel, result)
    rows = [(labels, value) for labels, value, at in result.latest() if at is not None]
    rows = rows[:MAX_VALUES]
    figure = go.Figure()
    steps = sorted(panel.thresholds, key=lambda step: step["value"])
    number_format = f".{panel.decimals}f" if panel.decimals is not None else ".3~s"
    suffix = figures.value_format(panel.unit)[0].get("ticksuffix", "")
    several = len(rows) > 1
    axis = {"range": [low, high], "tickfont": {"size": 9}}
    if several:
        # The unlabelled tick at the top keeps plotly's title above the dial, not on its number.
        axis |= {
            "tickmode": "array",
            "tickvals": [low, (low + high) / 2, high],
            "ticktext": [
                display_value(low, panel.unit, panel.decimals),
                "",
                display_value(high, panel.unit, panel.decimals),
            ],
        }
    for (_, value), shown in zip(rows, latest, strict=False):
        figure.add_trace(
            go.Indicator(
                mode="gauge+number",
                value=value,
                number={"valueformat": number_format, "suffix": suffix},
                title={
                    "text": figures.plotly_text(shown.name) if several else "",
                    "font": {"size": 11},
                },
                gauge={
                    "axis": axis,
                    "bar": {"color": _colour(panel, value)},
                    "threshold": {
                        "value": steps[-1]["value"],
                        "line": {"color": _colour(panel, steps[-1]["value"]), "width": 2},
                    }
                    if steps
                    else None,
                },
            )
        )
    figure.update_layout(
        margin={"l": 16, "r": 16, "t": 16, "b": 8},
        paper_bgcolor="rgba(0,0,0,0)",
        font={"size": 11},
    )
    return figure.to_json()


def _bars(panel: Panel, result: query_charts.RangeResult, latest: list[ShownValue]) -> str:
    """A horizontal bar per series from the panel's min to its latest value, coloured by its
    threshold, the value written beside it."""
    low, high = _value_range(panel, result)
    rows = [value for _, value, at in result.latest() if at is not None][:MAX_VALUES]
    figure = go.Figure(
        go.Bar(
            orientation="h",
            x=rows,
            y=[figures.plotly_text(shown.name) for shown in latest],
            text=[shown.text for shown in latest],
            textposition="auto",
            # Level, inside a long bar or beside a short one (plotly would turn it on its side).
            textangle=0,
            marker={"color": [_colour(panel, value) for value in rows]},
            # Inside a bar, the panel's own colour: each threshold colour is a text shade
            # legible on the panel, so the panel's colour is legible on it (plotly would pick
            # white, 3:1 on the dark theme's red).
            insidetextfont={"color": "var(--panel)"},
            hoverinfo="skip",
        )
    )
    figure.update_layout(
        margin={"l": 8, "r": 8, "t": 4, "b": 4},
        xaxis={"range": [low, high], "visible": False, "fixedrange": True},
        yaxis={"autorange": "reversed", "automargin": True, "fixedrange": True},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 11},
        bargap=0.25,
    )
    return figure.to_json()


def _table(panel: Panel, time_range: TimeRange, chosen: list[variables.Variable]) -> PanelContent:
    """An instant query at the range's end: a row per series, a column per label, then the
    value."""
    result, names = _evaluate(panel, time_range, chosen, instant=True)
    if not names:
        return PanelContent(panel)
    columns = sorted({name for labels in result.labels for name in labels})
    rows = [
        [labels.get(column, "") for column in columns]
        + [display_value(value, panel.unit, panel.decimals)]
        for labels, value, at in result.latest()
        if at is not None
    ]
    return PanelContent(panel, columns=[*columns, "Value"], rows=rows)
