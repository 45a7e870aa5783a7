"""What a time chart marks beside its lines: the alert episodes of the instances it draws (a
shaded span from firing to resolving, coloured by the episode's worst severity) and the
annotations posted through the API (a dashed line, or a span, with its text on hover).

Marks go into a plotly layout as shapes and hover labels, so they never add a trace: live points
still find their lines by name, and legends list only series.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from alerts.models import Alert
from dashboard import figures
from dashboard.models import Annotation

# At most this many of each kind per chart: a flapping rule must not bury the lines.
MAX_MARKS = 50
# The theme's custom properties (charts.js resolves them).
SEVERITY_COLOURS = {"critical": "var(--unhealthy)", "warning": "var(--error)"}
ANNOTATION_COLOUR = "var(--purple)"
# A span's shading: light enough for the lines to read through on both themes.
SPAN_OPACITY = 0.14


@dataclass(frozen=True)
class Mark:
    start: datetime
    end: datetime | None  # None: a moment
    text: str
    colour: str
    is_alert: bool


def alert_episodes(start: datetime, end: datetime, agent_ids: Collection[str] | None) -> list[Mark]:
    """The alert episodes overlapping ``[start, end]`` of the instances ``agent_ids`` names
    (all instances when None), oldest first."""
    overlapping = Alert.objects.filter(
        Q(fired_at__lte=end) | Q(fired_at__isnull=True, created_at__lte=end),
        Q(resolved_at__isnull=True) | Q(resolved_at__gte=start),
    )
    if agent_ids is not None:
        overlapping = overlapping.filter(instance__agent_id__in=list(agent_ids))
    now = timezone.now()
    marks = []
    for alert in overlapping.select_related("instance").order_by("-created_at")[:MAX_MARKS]:
        severity = alert.peak_severity or alert.severity
        marks.append(
            Mark(
                alert.fired_at or alert.created_at,
                alert.resolved_at or now,
                f"{alert.alert_type} on {alert.instance.name} ({severity})"
                + (f": {alert.message}" if alert.message else ""),
                SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["warning"]),
                True,
            )
        )
    return marks[::-1]


def tagged(start: datetime, end: datetime, tags: Collection[str]) -> QuerySet[Annotation]:
    """The annotations overlapping ``[start, end]`` with any of ``tags`` (all when empty)."""
    found = Annotation.objects.filter(Q(time__lte=end), Q(time__gte=start) | Q(time_end__gte=start))
    if tags:
        found = found.filter(tags__overlap=list(tags))
    return found


def posted(start: datetime, end: datetime, tags: Collection[str]) -> list[Mark]:
    """Marks of the annotations overlapping ``[start, end]`` with any of ``tags`` (all when
    empty)."""
    marks = []
    for annotation in tagged(start, end, tags).order_by("-time")[:MAX_MARKS]:
        tags_note = f" [{', '.join(annotation.tags)}]" if annotation.tags else ""
        marks.append(
            Mark(
                annotation.time,
                annotation.time_end,
                annotation.text + tags_note,
                ANNOTATION_COLOUR,
                False,
            )
        )
    return marks[::-1]


def add_to_layout(layout: dict, marks: Iterable[Mark]) -> None:
    """Draw ``marks`` on a figure's layout: spans as shaded rectangles, moments as dashed
    lines, each with a small marker at the top whose hover says what it is."""
    shapes = layout.setdefault("shapes", [])
    labels = layout.setdefault("annotations", [])
    for mark in marks:
        x0 = figures.plot_time(mark.start)
        if mark.end is not None and mark.end > mark.start:
            x1 = figures.plot_time(mark.end)
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": x0,
                    "x1": x1,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": mark.colour,
                    "opacity": SPAN_OPACITY,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
        else:
            shapes.append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": x0,
                    "x1": x0,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": mark.colour, "width": 1.5, "dash": "dash"},
                }
            )
        labels.append(
            {
                "x": x0,
                "xref": "x",
                "y": 1,
                "yref": "paper",
                "yanchor": "bottom",
                "text": "▲" if mark.is_alert else "◆",
                "showarrow": False,
                "font": {"size": 9, "color": mark.colour},
                "hovertext": mark.text,
            }
        )
