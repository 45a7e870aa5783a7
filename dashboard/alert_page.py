"""What the alert page shows ("why is this firing").

The chart is the rule's metric around the episode on the alert's instance, with the rule's
thresholds and the episode's moments drawn in, and a few other instances in the rule's scope
for comparison: three queries (series, instances, points) whatever the scope's size.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count
from django.utils import timezone

from alerts.grouping import RouteTree
from alerts.models import (
    GROUP_BY_ALL,
    Alert,
    AlertGroup,
    AlertRule,
    Notification,
    labels_match,
)
from dashboard import figures
from instances.models import Instance, Series
from instances.samples import samples_engine

CHART_POINTS = 300
# Shown before the episode started and after it ended, so the chart says what "normal" was.
CONTEXT_BEFORE = timedelta(minutes=30)
CONTEXT_AFTER = timedelta(minutes=15)
COMPARISON_INSTANCES = 8
COMPARISON_SERIES = 12
PREVIOUS_EPISODES = 10
NOTIFICATIONS_SHOWN = 50
SILENCE_DURATIONS = {
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
DEFAULT_SILENCE = "4h"


@dataclass(frozen=True)
class Moment:
    label: str
    when: datetime


def moments(alert: Alert) -> list[Moment]:
    """The episode's milestones, in time order."""
    marks = [
        ("pending", alert.pending_since),
        ("firing", alert.fired_at or alert.created_at),
        ("acknowledged", alert.acknowledged_at),
        ("resolved", alert.resolved_at),
    ]
    return sorted((Moment(label, when) for label, when in marks if when), key=lambda m: m.when)


def episode_window(alert: Alert, now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    started = alert.pending_since or alert.fired_at or alert.created_at
    start = started - CONTEXT_BEFORE
    if alert.rule is not None:
        start -= alert.rule.window
    end = min(now, alert.resolved_at + CONTEXT_AFTER) if alert.resolved_at else now
    return start, max(end, started + timedelta(minutes=1))


def scope_instances(rule: AlertRule):
    """The instances a rule watches, as a queryset (the same scopes as ``rule.in_scope``)."""
    instances = Instance.objects.all()
    if rule.scope == AlertRule.Scope.INSTANCE:
        return instances.filter(pk=rule.scope_instance_id)
    if rule.scope == AlertRule.Scope.TYPE:
        return instances.filter(type=rule.scope_value)
    if rule.scope == AlertRule.Scope.REGION:
        return instances.filter(region=rule.scope_value)
    return instances


def rule_figure(alert: Alert, now: datetime | None = None) -> str | None:
    """The rule's metric around the episode, as plotly JSON; None for an alert no rule raised."""
    rule = alert.rule
    if rule is None:
        return None
    start, end = episode_window(alert, now)
    candidates = Series.objects.filter(
        name=rule.metric, instance__in=scope_instances(rule)
    ).order_by("instance_id", "id")
    own, others = [], []
    for series in candidates:
        if not labels_match(series.labels, rule.label_matchers):
            continue
        if series.instance_id == alert.instance_id:
            # The breaching series when the alert names it, else every matching one.
            if all(series.labels.get(key) == value for key, value in alert.labels.items()):
                own.append(series)
        else:
            others.append(series)
    other_ids = list(dict.fromkeys(series.instance_id for series in others))
    other_ids = other_ids[:COMPARISON_INSTANCES]
    others = [series for series in others if series.instance_id in other_ids]
    others = others[:COMPARISON_SERIES]
    names = dict(Instance.objects.filter(pk__in=other_ids).values_list("pk", "name"))
    points = samples_engine().points_of_series(
        [series.pk for series in own + others], start, end, CHART_POINTS
    )

    def label(series, instance_name):
        labels = figures.labels_text(series.labels)
        return f"{instance_name} {labels}".strip()

    unit = next((series.unit for series in own + others if series.unit), "")
    return figures.alert_figure(
        rule,
        unit,
        [(series.pk, label(series, alert.instance.name), points[series.pk]) for series in own],
        [
            (series.pk, label(series, names[series.instance_id]), points[series.pk])
            for series in others
        ],
        [(moment.label, moment.when) for moment in moments(alert)],
        start,
        end,
    )


def page_context(alert: Alert) -> dict:
    """Everything the alert page renders."""
    return {
        **summary_context(alert),
        "figure": rule_figure(alert),
        "previous": list(
            Alert.objects.filter(fingerprint=alert.fingerprint)
            .exclude(pk=alert.pk)
            .order_by("-created_at")[:PREVIOUS_EPISODES]
        ),
        "notifications": alert_notifications(alert),
        "groups": alert_groups(alert),
    }


def alert_notifications(alert: Alert) -> list[Notification]:
    """The latest notices of the alert: its own and the group notices that listed it."""
    own, grouped = (
        list(notes.select_related("channel").order_by("-created_at")[:NOTIFICATIONS_SHOWN])
        for notes in (alert.notifications, alert.group_notifications)
    )
    return sorted(own + grouped, key=lambda note: note.created_at, reverse=True)[
        :NOTIFICATIONS_SHOWN
    ]


def alert_groups(alert: Alert) -> list[AlertGroup]:
    """The groups the alert is in, each with its ``size`` and whether it is ``per_alert``
    (its route groups by every label)."""
    tree = RouteTree()
    # Not filter(members__alert=...): Count would then count over that join, always 1.
    groups = list(
        AlertGroup.objects.filter(pk__in=alert.group_memberships.values("group_id"))
        .select_related("route")
        .annotate(size=Count("members"))
        .order_by("route__name")
    )
    for group in groups:
        group.per_alert = GROUP_BY_ALL in tree.setting(group.route, "group_by")
    return groups


def summary_context(alert: Alert) -> dict:
    """The alert's head panel: status, moments, actions, the silences covering it and the
    alerts it inhibits."""
    return {
        "alert": alert,
        "moments": moments(alert),
        "silences": alert.covering_silences(),
        "inhibits": alert.inhibits(),
        "silence_durations": SILENCE_DURATIONS,
        "default_silence": DEFAULT_SILENCE,
    }
