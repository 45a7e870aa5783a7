"""Dashboards people build: a grid of panels, each drawing PromQL queries, with template variables.

A dashboard's whole definition reads and writes as one JSON document (``to_dict`` /
``replace_with``): export and import use it, and every save keeps the previous one as a
DashboardVersion, so any earlier state can be rolled back to.
"""

import uuid
from collections.abc import Callable

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models, transaction
from django.utils.text import slugify

from accounts.models import AuditEvent
from dashboard.timerange import DEFAULT_RANGE, RANGES

# The grid is twelve columns wide (a phone stacks the panels); heights count rows of 80 px.
GRID_COLUMNS = 12
# The widths the panel menu offers: a quarter, a third, a half, two thirds, all.
WIDTH_PRESETS = (3, 4, 6, 8, 12)
# Auto-refresh of a dashboard's panels: off, or every so many seconds.
REFRESH_SECONDS = {"off": None, "30s": 30, "1m": 60, "5m": 300}
PANEL_FIELDS = [
    "type",
    "title",
    "description",
    "x",
    "y",
    "width",
    "height",
    "queries",
    "unit",
    "decimals",
    "min",
    "max",
    "thresholds",
    "text",
]


class Dashboard(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, blank=True)
    # The group it is listed under ("" lists it with no folder, first).
    folder = models.CharField(max_length=100, blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    time_range = models.CharField(
        max_length=8, choices=[(key, key) for key in RANGES], default=DEFAULT_RANGE
    )
    refresh = models.CharField(
        max_length=8, choices=[(key, key) for key in REFRESH_SECONDS], default="off"
    )
    # [{"name", "kind": "query" | "custom", "query", "options", "multi", "include_all"}]:
    # see dashboard/variables.py.
    variables = models.JSONField(default=list, blank=True)
    # The posted annotations its time charts mark: those with any of these tags (none: all).
    annotation_tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.PositiveIntegerField(default=1)
    # The DASHBOARDS_DIR file this dashboard is kept in step with (then read-only in the UI).
    provisioned_from = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["provisioned_from"],
                condition=~models.Q(provisioned_from=""),
                name="one_dashboard_per_provisioned_file",
            )
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args, **kwargs):
        self.slug = slugify(self.title)[:200]
        if kwargs.get("update_fields") is not None and "title" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "slug"}
        super().save(*args, **kwargs)

    @property
    def refresh_seconds(self) -> int | None:
        return REFRESH_SECONDS.get(self.refresh)

    def to_dict(self) -> dict:
        """The whole definition, as exported and as kept by each version."""
        return {
            "title": self.title,
            "folder": self.folder,
            "tags": list(self.tags),
            "time_range": self.time_range,
            "refresh": self.refresh,
            "variables": self.variables,
            "annotation_tags": list(self.annotation_tags),
            "panels": [panel.to_dict() for panel in self.panels.all()],
        }

    @classmethod
    def create_from_dict(cls, data: dict, owner) -> "Dashboard":
        """A new dashboard from an exported definition (``to_dict``'s shape)."""
        with transaction.atomic():
            dashboard = cls(owner=owner)
            dashboard._apply(data)
            dashboard.save()
            dashboard._replace_panels(data.get("panels", []))
        return dashboard

    def change(self, user, note: str, apply: Callable[[], object]) -> "DashboardVersion":
        """Run ``apply`` (which saves this dashboard's or its panels' edits) as a new version,
        audited; the definition as it was before is kept. Returns that kept version."""
        with transaction.atomic():
            locked = Dashboard.objects.select_for_update().get(pk=self.pk)
            kept = DashboardVersion.objects.create(
                dashboard=locked,
                version=locked.version,
                data=locked.to_dict(),
                saved_by=user,
                note=note,
            )
            apply()
            self.version = locked.version + 1
            self.save(update_fields=["version", "updated_at"])
            AuditEvent.record(user, "dashboard.change", self, version=self.version, note=note)
        return kept

    def replace_with(self, data: dict, user, note: str = "") -> "DashboardVersion":
        """Make ``data`` (``to_dict``'s shape) this dashboard's definition, as a new version."""

        def apply() -> None:
            self._apply(data)
            self.save()
            if "panels" in data:
                self._replace_panels(data["panels"])

        return self.change(user, note, apply)

    def matches(self, data: dict) -> bool:
        """Whether saving ``data`` (``to_dict``'s shape) would leave this dashboard as it is."""
        wanted = Dashboard()
        wanted._apply(data)
        panels = [
            Panel(**{key: panel[key] for key in PANEL_FIELDS if key in panel}).to_dict()
            for panel in data.get("panels", [])
        ]
        wanted_panels = sorted(panels, key=lambda panel: (panel["y"], panel["x"]))
        mine = self.to_dict()
        return (
            wanted.title,
            wanted.folder,
            wanted.tags,
            wanted.time_range,
            wanted.refresh,
            wanted.variables,
            wanted.annotation_tags,
            wanted_panels,
        ) == (
            mine["title"],
            mine["folder"],
            mine["tags"],
            mine["time_range"],
            mine["refresh"],
            mine["variables"],
            mine["annotation_tags"],
            mine["panels"],
        )

    @property
    def is_read_only(self) -> bool:
        """A provisioned dashboard is edited in its file, not in the UI."""
        return bool(self.provisioned_from)

    def roll_back_to(self, version: "DashboardVersion", user) -> None:
        """Make an earlier version current again (the current one is kept too)."""
        self.replace_with(version.data, user, note=f"Rolled back to version {version.version}")

    def _apply(self, data: dict) -> None:
        self.title = data.get("title", self.title)
        self.folder = str(data.get("folder", self.folder))[:100]
        self.tags = list(data.get("tags", self.tags))
        self.time_range = data.get("time_range", self.time_range)
        self.refresh = data.get("refresh", self.refresh)
        self.variables = data.get("variables", self.variables)
        self.annotation_tags = list(data.get("annotation_tags", self.annotation_tags))

    def _replace_panels(self, panels: list[dict]) -> None:
        self.panels.all().delete()
        Panel.objects.bulk_create(
            Panel(dashboard=self, **{key: panel[key] for key in PANEL_FIELDS if key in panel})
            for panel in panels
        )


class Panel(models.Model):
    class Type(models.TextChoices):
        TIMESERIES = "timeseries", "Time series"
        STAT = "stat", "Stat"
        GAUGE = "gauge", "Gauge"
        BARGAUGE = "bargauge", "Bar gauge"
        TABLE = "table", "Table"
        TEXT = "text", "Text"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="panels")
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.TIMESERIES)
    title = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    # Where the panel stands: the page places the panels in (y, x) order, each spanning its width
    # (of 12 columns) and height (in rows), packed densely.
    x = models.PositiveSmallIntegerField(default=0)
    y = models.PositiveSmallIntegerField(default=0)
    width = models.PositiveSmallIntegerField(default=6)
    height = models.PositiveSmallIntegerField(default=4)
    # [{"expr": PromQL, "legend": "{{instance}} {{mode}}"}]
    queries = models.JSONField(default=list, blank=True)
    unit = models.CharField(max_length=32, blank=True)
    decimals = models.PositiveSmallIntegerField(null=True, blank=True)
    min = models.FloatField(null=True, blank=True)
    max = models.FloatField(null=True, blank=True)
    # [{"value": 80, "color": "orange"}], ascending: a value at or above one takes its colour.
    thresholds = models.JSONField(default=list, blank=True)
    # A text panel's Markdown.
    text = models.TextField(blank=True)

    class Meta:
        ordering = ["y", "x"]

    def __str__(self) -> str:
        return self.title or self.get_type_display()

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in PANEL_FIELDS}

    def move(self, offset: int) -> None:
        """Swap places with the panel ``offset`` places before (-1) or after (+1) it in the
        grid's reading order; at either end it stays."""
        order = list(self.dashboard.panels.all())
        index = next(i for i, panel in enumerate(order) if panel.pk == self.pk)
        other = index + offset
        if 0 <= other < len(order):
            order[index], order[other] = order[other], order[index]
        _renumber(order)

    def duplicate(self) -> "Panel":
        """A copy of this panel, placed right after it."""
        copy = Panel(dashboard=self.dashboard, **self.to_dict())
        copy.save()
        order = [panel for panel in self.dashboard.panels.all() if panel.pk != copy.pk]
        index = next(i for i, panel in enumerate(order) if panel.pk == self.pk)
        _renumber([*order[: index + 1], copy, *order[index + 1 :]])
        return copy

    def threshold_colour(self, value: float) -> str:
        """The colour of the highest threshold ``value`` reaches ("" below them all)."""
        colour = ""
        for step in sorted(self.thresholds, key=lambda step: step["value"]):
            if value >= step["value"]:
                colour = step["color"]
        return colour


def _renumber(order: list[Panel]) -> None:
    """Give the panels the rows of ``order``: the grid places them in that order, each at its
    width, packing them densely."""
    for row, panel in enumerate(order):
        panel.x, panel.y = 0, row
    Panel.objects.bulk_update(order, ["x", "y"])


class DashboardStar(models.Model):
    """A user's favourite: starred dashboards come first in their list."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="stars")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "dashboard"], name="one_star_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} ★ {self.dashboard}"

    @classmethod
    def toggle(cls, user, dashboard: Dashboard) -> bool:
        """Star ``dashboard`` for ``user``, or unstar it if it was; returns whether it is now."""
        deleted, _ = cls.objects.filter(user=user, dashboard=dashboard).delete()
        if deleted:
            return False
        cls.objects.get_or_create(user=user, dashboard=dashboard)
        return True


class DashboardVersion(models.Model):
    """A dashboard's definition as it was before a save; ``note`` says what that save changed."""

    dashboard = models.ForeignKey(Dashboard, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    data = models.JSONField()
    note = models.CharField(max_length=200, blank=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    saved_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["dashboard", "version"], name="one_row_per_version")
        ]

    def __str__(self) -> str:
        return f"{self.dashboard} v{self.version}"


# What one annotation may carry, through the API and the annotations page alike.
ANNOTATION_TEXT_MAX_LENGTH = 10_000
ANNOTATION_MAX_TAGS = 20
TAG_MAX_LENGTH = 50


class Annotation(models.Model):
    """A moment (or span) worth marking on time charts, posted through the API: a deploy, a
    config change. Tags let each dashboard mark only its own (``Dashboard.annotation_tags``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    time = models.DateTimeField(db_index=True)
    # The end of a span; None for a moment.
    time_end = models.DateTimeField(null=True, blank=True)
    text = models.TextField()
    tags = ArrayField(models.CharField(max_length=TAG_MAX_LENGTH), default=list, blank=True)
    # The API token that posted it, by name (the token may be revoked since).
    posted_by = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["time"]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M} {self.text[:50]}"

    def to_dict(self) -> dict:
        return {
            "id": str(self.id),
            "time": self.time.isoformat(),
            "timeEnd": self.time_end.isoformat() if self.time_end else None,
            "text": self.text,
            "tags": list(self.tags),
        }
