"""What the overview page shows, gathered with a few set-based queries.

The page, its HTMX partials, the polling fallback and the live consumer all build their context
here, so they render the same templates from the same data.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import Coalesce, Greatest
from django.template.loader import render_to_string
from django.utils import timezone

from alerts.grouping import grouping_route_ids
from alerts.models import Alert, AlertGroup, prefetch_muting
from instances.models import Instance
from instances.samples import samples_engine

SPARK_METRICS = {"cpu": "cpu_usage", "mem": "memory_usage"}
SPARK_WINDOW = timedelta(hours=1)
SPARK_BUCKETS = 40
# Sparkline viewBox; percent metrics are drawn on a fixed 0-100 scale.
SPARK_WIDTH, SPARK_HEIGHT = 100, 28
RECENT_ALERTS = 8
RECENT_EVENTS = 8
OPEN_GROUPS_SHOWN = 8
# Cards per grid page: a page renders in tens of milliseconds whatever the fleet's size, and
# 60 fills whole rows at 2, 3, 4, 5 or 6 columns.
GRID_PAGE_SIZE = 60


@dataclass(frozen=True)
class OverviewFilters:
    """The grid's filters, as the query string carries them."""

    status: str = ""
    type: str = ""
    region: str = ""
    q: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query) -> "OverviewFilters":
        status = query.get("status", "").strip()
        page = query.get("page", "").strip()
        return cls(
            status=status if status in Instance.Status.values else "",
            type=query.get("type", "").strip(),
            region=query.get("region", "").strip(),
            q=query.get("q", "").strip()[:100],
            page=int(page) if page.isdigit() and 0 < int(page) < 100_000 else 1,
        )

    def apply(self, instances: QuerySet) -> QuerySet:
        if self.status:
            instances = instances.filter(status=self.status)
        if self.type:
            instances = instances.filter(type=self.type)
        if self.region:
            instances = instances.filter(region=self.region)
        if self.q:
            instances = instances.filter(
                Q(name__icontains=self.q)
                | Q(agent_id__icontains=self.q)
                | Q(endpoint__icontains=self.q)
            )
        return instances

    @property
    def active(self) -> bool:
        return any((self.status, self.type, self.region, self.q))

    def as_query(self) -> str:
        """The filters without the page: what every page link of the grid starts from."""
        return urlencode(
            {key: value for key, value in vars(self).items() if value and key != "page"}
        )


@dataclass(frozen=True)
class Sparkline:
    points: str  # an SVG polyline's points attribute
    latest: float | None


@dataclass(frozen=True)
class InstanceCard:
    instance: Instance
    cpu: Sparkline
    mem: Sparkline


@dataclass(frozen=True)
class Event:
    when: datetime
    text: str
    instance: Instance
    kind: str  # a badge class: status-* or severity-*
    label: str


@dataclass
class Summary:
    total: int = 0
    by_status: dict = field(default_factory=dict)
    active_alerts: int = 0
    critical_alerts: int = 0
    # Open alerts a silence or an inhibiting alert mutes.
    muted_alerts: int = 0
    samples_per_second: float = 0.0


def summary() -> Summary:
    """Instances by status, open alerts, and the ingest rate: three small queries."""
    by_status = dict.fromkeys(Instance.Status.values, 0)
    for row in Instance.objects.order_by().values("status").annotate(count=Count("pk")):
        by_status[row["status"]] = row["count"]
    alerts = Alert.objects.exclude(status=Alert.Status.RESOLVED).aggregate(
        active=Count("pk", filter=Q(status=Alert.Status.ACTIVE)),
        critical=Count("pk", filter=Q(severity=Alert.Severity.CRITICAL)),
        muted=Count("pk", filter=Q(silenced=True) | Q(inhibited=True)),
    )
    return Summary(
        total=sum(by_status.values()),
        by_status=by_status,
        active_alerts=alerts["active"],
        critical_alerts=alerts["critical"],
        muted_alerts=alerts["muted"],
        samples_per_second=samples_engine().samples_per_second(),
    )


@dataclass(frozen=True)
class GridPage:
    """One page of the filtered grid: its instances, how many match, and where it stands."""

    instances: list[Instance]
    total: int
    number: int
    pages: int

    @property
    def first_shown(self) -> int:
        return (self.number - 1) * GRID_PAGE_SIZE + 1 if self.instances else 0

    @property
    def last_shown(self) -> int:
        return (self.number - 1) * GRID_PAGE_SIZE + len(self.instances)

    @property
    def links(self) -> list[int | None]:
        """The page numbers the pager offers: the first, the last and two either side of this
        one; None where numbers are left out."""
        wanted = {1, self.pages, *range(self.number - 2, self.number + 3)}
        shown: list[int | None] = []
        for number in sorted(n for n in wanted if 1 <= n <= self.pages):
            if shown and shown[-1] is not None and number > shown[-1] + 1:
                shown.append(None)
            shown.append(number)
        return shown


def grid_page(filters: OverviewFilters) -> GridPage:
    """The page of matching instances ``filters.page`` asks for (the last one when it asks past
    the end): a count and one page of rows, whatever the fleet's size."""
    matching = filters.apply(Instance.objects.order_by("name", "pk"))
    total = matching.count()
    pages = max(1, -(-total // GRID_PAGE_SIZE))
    number = min(filters.page, pages)
    start = (number - 1) * GRID_PAGE_SIZE
    return GridPage(list(matching[start : start + GRID_PAGE_SIZE]), total, number, pages)


def instance_cards(instances: list[Instance], now: datetime | None = None) -> list[InstanceCard]:
    """A card per instance with its cpu and memory sparklines, from one store query."""
    end = now or timezone.now()
    start = end - SPARK_WINDOW
    trends = (
        samples_engine().metric_trends(
            list(SPARK_METRICS.values()),
            start,
            end,
            SPARK_BUCKETS,
            instance_ids=[instance.pk for instance in instances],
        )
        if instances
        else {}
    )

    def sparkline(instance, metric):
        points = trends.get((instance.pk, metric), [])
        return Sparkline(polyline(points, start, end), points[-1][1] if points else None)

    return [
        InstanceCard(
            instance,
            sparkline(instance, SPARK_METRICS["cpu"]),
            sparkline(instance, SPARK_METRICS["mem"]),
        )
        for instance in instances
    ]


def polyline(points: list[tuple[datetime, float]], start: datetime, end: datetime) -> str:
    """SVG polyline points for ``(ts, percent)`` pairs across ``[start, end)``."""
    span = (end - start).total_seconds()
    coordinates = []
    for ts, value in points:
        x = (ts - start).total_seconds() / span * SPARK_WIDTH
        clamped = min(max(value, 0.0), 100.0)
        # One unit of padding top and bottom so 0 % and 100 % stay visible.
        y = SPARK_HEIGHT - 1 - clamped / 100 * (SPARK_HEIGHT - 2)
        coordinates.append(f"{x:.1f},{y:.1f}")
    return " ".join(coordinates)


def open_groups(limit: int = OPEN_GROUPS_SHOWN) -> list[AlertGroup]:
    """The notification groups holding open alerts, largest first, each with ``open_alerts``;
    the groups of routes that group by every label (an alert each) are left out."""
    open_members = Q(members__alert__resolved_at__isnull=True)
    return list(
        AlertGroup.objects.filter(route_id__in=grouping_route_ids())
        .annotate(open_alerts=Count("members", filter=open_members))
        .filter(open_alerts__gt=0)
        .select_related("route")
        .order_by("-open_alerts", "route__name", "pk")[:limit]
    )


def recent_alerts(limit: int = RECENT_ALERTS) -> list[Alert]:
    """The newest alerts, with what mutes each (silences, inhibiting alerts) for their badges."""
    alerts = list(Alert.objects.select_related("instance").order_by("-created_at")[:limit])
    prefetch_muting(alerts)
    return alerts


def recent_events(limit: int = RECENT_EVENTS) -> list[Event]:
    """Registrations and alert changes, newest first (two queries)."""
    events = [
        Event(instance.created, "registered", instance, "status-healthy", "new")
        for instance in Instance.objects.order_by("-created")[:limit]
    ]
    changed = Alert.objects.select_related("instance").annotate(
        changed=Greatest(
            "created_at",
            Coalesce("acknowledged_at", "created_at"),
            Coalesce("resolved_at", "created_at"),
        )
    )
    for alert in changed.order_by("-changed")[:limit]:
        if alert.status == Alert.Status.RESOLVED and alert.resolved_at:
            when, verb = alert.resolved_at, "resolved"
        elif alert.status == Alert.Status.ACKNOWLEDGED and alert.acknowledged_at:
            when, verb = alert.acknowledged_at, "acknowledged"
        else:
            when, verb = alert.created_at, "raised"
        text = f"{alert.alert_type} {verb}"
        events.append(
            Event(when, text, alert.instance, f"severity-{alert.severity}", alert.severity)
        )
    events.sort(key=lambda event: event.when, reverse=True)
    return events[:limit]


def filter_choices() -> dict:
    """The types and regions instances have, for the filter selects (one query)."""
    pairs = Instance.objects.order_by().values_list("type", "region").distinct()
    return {
        "statuses": Instance.Status.values,
        "types": sorted({kind for kind, _ in pairs if kind}),
        "regions": sorted({region for _, region in pairs if region}),
    }


def grid_context(filters: OverviewFilters) -> dict:
    page = grid_page(filters)
    return {"cards": instance_cards(page.instances), "grid": page, "filters": filters}


def overview_context(filters: OverviewFilters) -> dict:
    """Everything the overview page renders."""
    return {
        **grid_context(filters),
        "summary": summary(),
        "recent_alerts": recent_alerts(),
        "open_groups": open_groups(),
        "recent_events": recent_events(),
        "choices": filter_choices(),
    }


@dataclass(frozen=True)
class LiveView:
    """What one overview socket shows: its grid's filters, the ids of the instances its grid
    lists in order (None when unknown, e.g. right after the page swapped its grid), and whether
    its user gets the alert controls. ``shown_total`` is how many instances its grid said match."""

    filters: OverviewFilters = OverviewFilters()
    shown_ids: tuple[str, ...] | None = None
    shown_total: int | None = None
    can_operate: bool = False


def live_fragment(view: LiveView, updated_ids: frozenset) -> tuple[str, LiveView]:
    """What the overview socket pushes: every part as an out-of-band swap.

    The grid (its page) is sent whole when its membership, order or count changed since the view
    last showed it, else only the cards of ``updated_ids``. Returns the HTML and what the page
    shows afterwards.
    """
    page = grid_page(view.filters)
    ids = tuple(str(instance.pk) for instance in page.instances)
    if ids == view.shown_ids and page.total == view.shown_total:
        grid_mode = "cards"
        cards = instance_cards([one for one in page.instances if str(one.pk) in updated_ids])
    else:
        grid_mode = "grid"
        cards = instance_cards(page.instances)
    context = {
        "summary": summary(),
        "recent_alerts": recent_alerts(),
        "open_groups": open_groups(),
        "recent_events": recent_events(),
        "cards": cards,
        "grid": page,
        "filters": view.filters,
        "grid_mode": grid_mode,
        "can_operate": view.can_operate,
    }
    html = render_to_string("dashboard/partials/overview_live.html", context)
    return html, replace(view, shown_ids=ids, shown_total=page.total)
