"""What a dashboard's socket pushes: each time-series panel's new points, so its lines extend as
samples arrive without the panel being drawn again.

The consumer (dashboard/consumers.py) hands this render to the page's feed (dashboard/live.py),
which calls it at most once a second per distinct view: the dashboard and the page's variable
values and time range, as its URL carries them.
"""

import uuid
from dataclasses import dataclass

import orjson
from django.http import QueryDict
from django.template.loader import render_to_string
from django.utils import timezone

from dashboard import panels, variables
from dashboard.models import Dashboard, Panel
from dashboard.timerange import TimeRange


@dataclass(frozen=True)
class LiveView:
    dashboard_id: uuid.UUID
    # The page's URL query: its ``var-<name>`` choices and its range.
    selection: str


def live_fragment(view: LiveView, changes: frozenset = frozenset()) -> tuple[str | None, LiveView]:
    """The time-series panels' values now, as an out-of-band swap charts.js appends to their
    lines (``{panel id: {line name: [time, value]}}``); empty for a fixed (custom) range, which
    new samples do not extend. None if the dashboard is gone."""
    board = Dashboard.objects.filter(pk=view.dashboard_id).first()
    if board is None:
        return None, view
    query = QueryDict(view.selection, mutable=True)
    query.setdefault("range", board.time_range)
    now = timezone.now()
    time_range = TimeRange.from_query(query, now)
    charts = board.panels.filter(type=Panel.Type.TIMESERIES)
    if not time_range.is_relative or not charts:
        return "", view
    chosen = variables.resolve(board.variables, query, time_range.start)
    points = {str(panel.pk): panels.live_points(panel, time_range, chosen, now) for panel in charts}
    html = render_to_string(
        "dashboard/partials/board_points.html", {"points": orjson.dumps(points).decode()}
    )
    return html, view
