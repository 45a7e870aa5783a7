"""What the instance page shows: its charts and its side panels, in a few set-based queries.

The page, its HTMX partial, the polling fallback and the live consumer build their context here.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import groupby

import orjson
from django.db.models import Count, Max
from django.template.loader import render_to_string

from alerts.models import Alert, prefetch_muting
from dashboard import annotations, figures, query_charts
from dashboard.timerange import TimeRange
from instances.models import Instance, Series
from instances.samples import samples_engine
from query.values import QueryError

CHART_POINTS = 300
# Charts drawn with the page, while their lines number at most EAGER_SERIES (the first chart
# always is); the rest load as they scroll into view, so an instance with thousands of series
# costs one grouped query for their names until its charts are looked at. Building a plotly
# figure costs about 7 ms a line: the budget bounds the page's time.
EAGER_CHARTS = 6
EAGER_SERIES = 24
INSTANCE_ALERTS = 20
LIVE_POINTS_LIMIT = 5000
# The most a live socket catches up on when it (re)connects with an old ``since``: a page left
# open overnight, or a hand-made ``since=0``, must not pull hours of samples per series.
LIVE_CATCH_UP = timedelta(minutes=10)


# Units that say a series counts up (the name's ``_total`` suffix says it too).
COUNTER_UNITS = {"counter", "total"}


@dataclass(frozen=True)
class Chart:
    name: str
    unit: str
    series_count: int
    figure: str  # plotly figure JSON
    problem: str = ""  # why there is no figure
    lazy: bool = False  # drawn when it scrolls into view (its own request)


def is_counter(name: str, unit: str) -> bool:
    return name.endswith("_total") or unit.lower() in COUNTER_UNITS


def chart_groups(instance: Instance, names: list[str] | None = None) -> list[tuple[str, str, list]]:
    """The instance's series of ``names`` (all when None) grouped by metric name, as
    ``(name, unit, series)`` (one query)."""
    series = Series.objects.filter(instance=instance).order_by("name", "id")
    if names is not None:
        series = series.filter(name__in=names)
    groups = [(name, list(group)) for name, group in groupby(series, key=lambda one: one.name)]
    return [
        (name, next((one.unit for one in group if one.unit), ""), group) for name, group in groups
    ]


def charts(
    instance: Instance, time_range: TimeRange, eager: int | None = EAGER_CHARTS
) -> list[Chart]:
    """A chart per metric name, a line per series. The first ``eager`` (all when None), within
    EAGER_SERIES lines, are drawn: one points query for their gauges, one engine query per
    counter, drawn as its per-second rate; the others come back ``lazy``, to be fetched with
    ``chart_named``."""
    names = list(
        Series.objects.filter(instance=instance)
        .order_by("name")
        .values_list("name")
        .annotate(count=Count("id"), unit=Max("unit"))
    )
    drawn_names, lines = [], 0
    for name, count, _ in names:
        if eager is not None and (
            len(drawn_names) >= eager or (drawn_names and lines + count > EAGER_SERIES)
        ):
            break
        drawn_names.append(name)
        lines += count
    drawn = chart_groups(instance, drawn_names)
    marks = chart_marks(instance, time_range)
    gauges = [one for name, unit, group in drawn if not is_counter(name, unit) for one in group]
    points = samples_engine().points_of_series(
        [one.pk for one in gauges], time_range.start, time_range.end, CHART_POINTS
    )
    result = [
        draw_chart(instance, name, unit, group, points, time_range, marks)
        for name, unit, group in drawn
    ]
    result += [Chart(name, unit, count, "", lazy=True) for name, count, unit in names[len(drawn) :]]
    return result


def chart_named(instance: Instance, name: str, time_range: TimeRange) -> Chart | None:
    """The chart of one metric name (None when the instance has no such series)."""
    groups = chart_groups(instance, [name])
    if not groups:
        return None
    name, unit, group = groups[0]
    points = (
        {}
        if is_counter(name, unit)
        else samples_engine().points_of_series(
            [one.pk for one in group], time_range.start, time_range.end, CHART_POINTS
        )
    )
    marks = chart_marks(instance, time_range)
    return draw_chart(instance, name, unit, group, points, time_range, marks)


def chart_marks(instance: Instance, time_range: TimeRange) -> list[annotations.Mark]:
    """What the instance's charts mark, as a dashboard's do: its own alert episodes, and the
    posted annotations (all of them, as on a dashboard without annotation tags)."""
    start, end = time_range.start, time_range.end
    return annotations.alert_episodes(start, end, [instance.agent_id]) + annotations.posted(
        start, end, ()
    )


def draw_chart(
    instance: Instance,
    name: str,
    unit: str,
    group: list,
    points: dict,
    time_range: TimeRange,
    marks: list[annotations.Mark],
) -> Chart:
    if is_counter(name, unit):
        return rate_chart(instance, name, unit, len(group), time_range, marks)
    traces = [(one, points.get(one.pk, [])) for one in group]
    marked = {}
    annotations.add_to_layout(marked, marks)
    figure = figures.metric_figure(
        name, unit, traces, time_range.start, time_range.end, layout=marked
    )
    return Chart(name, unit, len(group), figure)


def rate_chart(
    instance: Instance,
    name: str,
    unit: str,
    series_count: int,
    time_range: TimeRange,
    marks: list[annotations.Mark],
) -> Chart:
    """A counter as its per-second rate over a window that fits the chart's step."""
    step_ms = query_charts.auto_step_ms(time_range, CHART_POINTS)
    window = query_charts.duration(query_charts.rate_window_ms(step_ms))
    counter = query_charts.selector(name, {"instance": instance.agent_id})
    rate_unit = f"{unit if unit.lower() not in COUNTER_UNITS else ''}/s"
    try:
        result = query_charts.evaluate_range(f"rate({counter}[{window}])", time_range, step_ms)
    except QueryError as error:
        return Chart(name, rate_unit, series_count, "", problem=f"Rate not available: {error}")
    names = [
        figures.labels_text({k: v for k, v in labels.items() if k != "instance"}) or name
        for labels in result.labels
    ]
    suffix = rate_unit if rate_unit == "/s" else f" {rate_unit}"
    figure = query_charts.figure(result, time_range, names, value_suffix=suffix, marks=marks)
    return Chart(name, rate_unit, series_count, figure)


def instance_alerts(instance: Instance, limit: int = INSTANCE_ALERTS) -> list[Alert]:
    """Its newest alerts, with what mutes each for their badges."""
    alerts = list(instance.alerts.select_related("instance").order_by("-created_at")[:limit])
    prefetch_muting(alerts)
    return alerts


def side_context(instance: Instance) -> dict:
    return {
        "instance": instance,
        "alerts": instance_alerts(instance),
        "series_count": Series.objects.filter(instance=instance).count(),
    }


def live_points(instance_id, since: datetime) -> tuple[dict[str, list], datetime]:
    """Raw samples of the instance newer than ``since``, for ``Plotly.extendTraces``.

    Returns ``{series_id: [[plot time, value], ...]}`` in time order, and the newest sample's
    time (``since`` when there is none).
    """
    recent = samples_engine().recent_samples(
        instance_ids=[instance_id], start=since, limit=LIVE_POINTS_LIMIT
    )
    points: dict[str, list] = {}
    newest = since
    for sample in sorted(recent, key=lambda sample: sample.ts):
        if sample.ts > since:
            points.setdefault(str(sample.series_id), []).append(
                [figures.plot_time(sample.ts), sample.value]
            )
            newest = max(newest, sample.ts)
    return points, newest


@dataclass(frozen=True)
class LiveView:
    """What one instance socket shows: the instance, chart points up to ``since``, and whether
    its user gets the alert controls."""

    instance_id: uuid.UUID
    since: datetime
    can_operate: bool = False


def live_fragment(view: LiveView, changes: frozenset = frozenset()) -> tuple[str | None, LiveView]:
    """What the instance socket pushes: status, details and alerts as out-of-band swaps, and the
    chart points newer than ``view.since``. Returns the HTML (None if the instance is gone) and
    what the page shows afterwards.
    """
    instance = Instance.objects.filter(pk=view.instance_id).first()
    if instance is None:
        return None, view
    points, newest = live_points(view.instance_id, view.since)
    context = {
        **side_context(instance),
        "points": orjson.dumps(points).decode(),
        "can_operate": view.can_operate,
    }
    html = render_to_string("dashboard/partials/instance_live.html", context)
    return html, replace(view, since=newest)
