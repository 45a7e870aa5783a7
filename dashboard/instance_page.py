"""What the instance page shows: its charts and its side panels, in a few set-based queries.

The page, its HTMX partial, the polling fallback and the live consumer build their context here.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import groupby

import orjson
from django.template.loader import render_to_string

from alerts.models import Alert
from dashboard import figures
from dashboard.timerange import TimeRange
from instances import store
from instances.models import Instance, Series

CHART_POINTS = 300
INSTANCE_ALERTS = 20
LIVE_POINTS_LIMIT = 5000


@dataclass(frozen=True)
class Chart:
    name: str
    unit: str
    series_count: int
    figure: str  # plotly figure JSON


def charts(instance: Instance, time_range: TimeRange) -> list[Chart]:
    """A chart per metric name, a line per series: two queries whatever the series count."""
    series = list(Series.objects.filter(instance=instance).order_by("name", "id"))
    points = store.points_of_series(
        [one.pk for one in series], time_range.start, time_range.end, CHART_POINTS
    )
    result = []
    for name, group in groupby(series, key=lambda one: one.name):
        group = list(group)
        unit = next((one.unit for one in group if one.unit), "")
        traces = [(one, points.get(one.pk, [])) for one in group]
        figure = figures.metric_figure(name, unit, traces, time_range.start, time_range.end)
        result.append(Chart(name, unit, len(group), figure))
    return result


def instance_alerts(instance: Instance, limit: int = INSTANCE_ALERTS) -> list[Alert]:
    return list(instance.alerts.select_related("instance").order_by("-created_at")[:limit])


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
    samples = store.recent_samples(instance_ids=[instance_id], start=since, limit=LIVE_POINTS_LIMIT)
    points: dict[str, list] = {}
    newest = since
    for sample in sorted(samples, key=lambda sample: sample.ts):
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
