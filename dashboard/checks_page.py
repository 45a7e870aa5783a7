"""What the checks pages show, in a few set-based queries: the list (each check's state, last
result, 24-hour latency sparkline and uptime) and one check's page (availability over 24 h, 7 d,
30 d and 90 d, its response times, its incidents and, for a heartbeat, its last pings).

The pages, their polling fallback and the live consumers (dashboard/consumers.py) build their
context here and render the same templates (templates/dashboard/checks.html, check.html).
"""

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from django.template.loader import render_to_string
from django.utils import timezone

from alerts.models import Alert
from checks import history, signals
from checks.models import Check, Ping
from dashboard import figures, overview
from instances.models import Series

SPARK_WINDOW = timedelta(hours=24)
SPARK_BUCKETS = 48
CHART_WINDOW = timedelta(hours=24)
CHART_BUCKETS = 200
INCIDENTS_SHOWN = 20
PINGS_SHOWN = 20

# What each problem of a check is called in its incidents list.
PROBLEM_NAMES = {
    signals.DOWN: "Down",
    signals.LATE: "Late",
    signals.CERTIFICATE: "Certificate",
}


@dataclass(frozen=True)
class CheckRow:
    """One line of the checks list."""

    check: Check
    uptime: float | None
    latency_points: str  # SVG polyline points, scaled to the check's own slowest bucket
    latency_peak: float | None


def check_rows(checks: list[Check], now: datetime | None = None) -> list[CheckRow]:
    """The list's rows: two store queries whatever the number of checks."""
    end = now or timezone.now()
    uptimes = history.uptimes(checks, SPARK_WINDOW, end)
    times = history.response_times(checks, SPARK_WINDOW, SPARK_BUCKETS, end)
    rows = []
    for check in checks:
        points = [(bucket.ts, bucket.avg) for bucket in times[check.pk]]
        peak = max((value for _, value in points), default=None)
        scaled = [(ts, value / peak * 100 if peak else 0.0) for ts, value in points]
        polyline = overview.polyline(scaled, end - SPARK_WINDOW, end)
        rows.append(CheckRow(check, uptimes[check.pk], polyline, peak))
    return rows


def all_checks() -> list[Check]:
    return list(Check.objects.select_related("group").order_by("name", "pk"))


def state_counts(checks: list[Check]) -> dict[str, int]:
    return {state: sum(check.state == state for check in checks) for state in Check.State.values}


def list_context(can_operate: bool) -> dict:
    checks = all_checks()
    return {
        "rows": check_rows(checks),
        "counts": state_counts(checks),
        "checks_count": len(checks),
        "can_operate": can_operate,
        "kinds": Check.Kind.choices,
    }


@dataclass(frozen=True)
class Incident:
    """An episode of one of the check's problems (down, late, certificate), from its alert."""

    alert: Alert
    problem: str
    started: datetime
    ended: datetime | None
    duration: timedelta


def incidents(check: Check, limit: int = INCIDENTS_SHOWN) -> list[Incident]:
    now = timezone.now()
    alerts = Alert.objects.filter(
        instance_id=check.instance_id, alert_type__in=signals.PROBLEMS
    ).order_by("-created_at")[:limit]
    return [
        Incident(
            alert,
            PROBLEM_NAMES[alert.alert_type],
            alert.created_at,
            alert.resolved_at,
            (alert.resolved_at or now) - alert.created_at,
        )
        for alert in alerts
    ]


def availability(check: Check) -> list[tuple[str, float | None]]:
    """``[(window label, share up or None), ...]`` over 24 h, 7 d, 30 d and 90 d."""
    return [
        (label, history.uptimes([check], window)[check.pk])
        for label, window in history.AVAILABILITY_WINDOWS.items()
    ]


def response_time_figure(check: Check) -> str:
    """Plotly JSON of the check's probe durations (a heartbeat's run times) over 24 hours;
    empty when it has none."""
    series = Series.objects.filter(
        instance_id=check.instance_id, name="probe_duration_seconds"
    ).first()
    if series is None:
        return ""
    end = timezone.now()
    buckets = history.response_times([check], CHART_WINDOW, CHART_BUCKETS, end)[check.pk]
    title = "Run time" if check.is_heartbeat else "Response time"
    return figures.metric_figure(
        title,
        "seconds",
        [(series, buckets)],
        end - CHART_WINDOW,
        end,
        names={series.pk: title},
        mode="lines+markers" if check.is_heartbeat else "lines",
    )


def status_context(check: Check, can_operate: bool) -> dict:
    """What changes on a check's page as it is probed or pinged (the live part)."""
    return {
        "check": check,
        "availability": availability(check),
        "incidents": incidents(check),
        "pings": list(Ping.objects.filter(heartbeat=check)[:PINGS_SHOWN])
        if check.is_heartbeat
        else [],
        "can_operate": can_operate,
    }


def check_context(check: Check, can_operate: bool) -> dict:
    return {**status_context(check, can_operate), "figure": response_time_figure(check)}


@dataclass(frozen=True)
class ListView:
    """What one checks list socket shows: whether its user gets controls, and the ids of the
    checks its table lists in order and their counts by state (None until the first push
    sends them whole)."""

    can_operate: bool = False
    shown_ids: tuple[str, ...] | None = None
    counts: tuple[tuple[str, int], ...] | None = None


def live_list_fragment(view: ListView, changes: frozenset = frozenset()) -> tuple[str, ListView]:
    """What the checks list socket pushes, as out-of-band swaps: while the checks listed and
    their counts by state stay as ``view`` says, only the rows of the checks in ``changes`` (a
    thousand checks probed every 20 s change fifty rows a second, not the table); else the
    counts and the table whole.

    Rows go alone: htmx parses a push as one fragment, where table rows after other elements
    would be dropped."""
    checks = all_checks()
    ids = tuple(str(check.pk) for check in checks)
    counts = state_counts(checks)
    context = {"counts": counts, "checks_count": len(checks), "can_operate": view.can_operate}
    if ids == view.shown_ids and tuple(counts.items()) == view.counts:
        context["rows"] = check_rows([check for check in checks if str(check.pk) in changes])
        context["rows_only"] = True
    else:
        context["rows"] = check_rows(checks)
    html = render_to_string("dashboard/partials/checks_live.html", context)
    return html, replace(view, shown_ids=ids, counts=tuple(counts.items()))


@dataclass(frozen=True)
class LiveView:
    """What one check page's socket shows: the check (and its instance's id, once known, as
    text), and whether its user gets controls."""

    check_id: uuid.UUID
    can_operate: bool = False
    instance_id: str | None = None


def live_check_fragment(
    view: LiveView, changes: frozenset = frozenset()
) -> tuple[str | None, LiveView]:
    """What a check page's socket pushes: its state, availability, incidents and pings as
    out-of-band swaps; None when the check is gone."""
    check = Check.objects.select_related("group").filter(pk=view.check_id).first()
    if check is None:
        return None, view
    context = status_context(check, view.can_operate)
    html = render_to_string("dashboard/partials/check_live.html", context)
    return html, replace(view, instance_id=str(check.instance_id))
