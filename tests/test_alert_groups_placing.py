"""Placing alerts in their groups: a batch of alerts (a storm, a mass mute ending) is placed in
a fixed number of statements, with the outcome of receiving them one after another."""

import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from alerts import grouping
from alerts.models import Alert, AlertGroup, AlertGroupMember, Notification, NotificationChannel
from instances.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def start():
    return timezone.now()


@pytest.fixture
def routes():
    """A fleet route grouping by alertname that lets alerts go on to a per-team route."""
    root = grouping.root_route()
    grouping.Route.objects.create(
        name="fleet",
        parent=root,
        position=0,
        continue_matching=True,
        matchers=[{"label": "alertname", "op": "=", "value": Alert.INSTANCE_DOWN}],
        group_by=["alertname"],
        group_wait=timedelta(seconds=30),
        group_interval=timedelta(minutes=5),
    )
    grouping.Route.objects.create(
        name="teams", parent=root, position=1, group_by=["team"], group_wait=timedelta(0)
    )


def make_alerts(count: int, start) -> list[Alert]:
    """``count`` open alerts of three teams, half of them instance_down; every fourth was told
    before it was in a group (a notice sent), every fifth is new (never told)."""
    channel, _ = NotificationChannel.objects.get_or_create(
        name="hook", defaults={"kind": "webhook", "target": "http://127.0.0.1:9/"}
    )
    alerts = []
    for number in range(count):
        alert = Alert.objects.create(
            instance=Instance.register(f"node-{uuid.uuid4().hex[:8]}"),
            source=Alert.Source.SYSTEM,
            alert_type=Alert.INSTANCE_DOWN if number % 2 else "disk_full",
            severity=Alert.Severity.CRITICAL,
            labels={"team": f"team-{number % 3}"},
            last_notified_at=None if number % 5 == 0 else start - timedelta(minutes=number),
        )
        if number % 4 == 0 and alert.last_notified_at:
            Notification.objects.create(
                dispatch=uuid.uuid4(),
                alert=alert,
                channel=channel,
                kind=Notification.Kind.FIRING,
                status=Notification.Status.SENT,
            )
        alerts.append(Alert.objects.select_related("instance", "rule").get(pk=alert.pk))
    return alerts


def placed_state() -> tuple[list, list]:
    groups = sorted(
        (g.route.name, g.key, g.labels, g.created_at, g.last_notified_at, g.next_flush_at)
        for g in AlertGroup.objects.select_related("route")
    )
    members = sorted(
        (
            m.group.route.name,
            m.group.key,
            str(m.alert_id),
            m.notified_severity,
            m.told_at,
            m.firing_asked,
            m.told_channels,
        )
        for m in AlertGroupMember.objects.select_related("group__route")
    )
    return groups, members


@pytest.mark.parametrize(
    "kind",
    [Notification.Kind.FIRING, Notification.Kind.RESOLVED, ""],
    ids=["firing", "resolved", "placed"],
)
def test_placing_a_batch_ends_as_placing_its_alerts_one_by_one(routes, start, kind):
    alerts = make_alerts(12, start)
    # Some are already in groups: one told a while ago, one where the route since regrouped.
    grouping.receive(alerts[1], Notification.Kind.FIRING, start - timedelta(hours=1))
    AlertGroup.objects.update(last_notified_at=start - timedelta(minutes=30), next_flush_at=None)
    grouping.Route.objects.filter(name="teams").update(group_by=["team", "alertname"])
    grouping.receive(alerts[2], "", start - timedelta(hours=1))
    grouping.Route.objects.filter(name="teams").update(group_by=["team"])

    savepoint = transaction.savepoint()
    groups = grouping.place(alerts, kind, start)
    in_batch = placed_state()
    transaction.savepoint_rollback(savepoint)
    assert placed_state() != in_batch
    one_by_one = {}
    for alert in alerts:
        one_by_one.update({group.key: group for group in grouping.receive(alert, kind, start)})

    assert placed_state() == in_batch
    assert sorted(group.key for group in groups) == sorted(one_by_one)
    asked = AlertGroupMember.objects.filter(firing_asked=True).exclude(alert=alerts[1])
    assert asked.exists() == (kind == "firing")
    assert AlertGroupMember.objects.exclude(told_channels=[]).exists()  # told before: kept


def test_placing_alerts_takes_as_many_statements_for_a_storm_as_for_a_few(
    routes, start, django_assert_max_num_queries, django_assert_num_queries
):
    few, storm = make_alerts(6, start), make_alerts(60, start)
    tree = grouping.RouteTree()
    with django_assert_max_num_queries(10) as placing_few:
        grouping.place(few, Notification.Kind.FIRING, start, tree)
    with django_assert_num_queries(len(placing_few.captured_queries)):
        grouping.place(storm, Notification.Kind.FIRING, start, tree)
    assert AlertGroupMember.objects.count() == 66 + 33  # instance_down alerts: two routes each
