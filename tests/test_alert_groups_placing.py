"""Placing alerts in their groups: a batch of alerts (a storm, a mass mute ending) is placed in
a fixed number of statements, with the outcome of receiving them one after another."""

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from alerts import grouping
from alerts.models import Alert, AlertGroup, AlertGroupMember, Notification, NotificationChannel
from instances.models import Instance

pytestmark = pytest.mark.django_db

# The deadlock test's rounds and alerts a round: before the placings took their locks in
# order, each run of it tried on this machine deadlocked (on groups and on members alike).
ROUNDS = 3
SIZE = 400


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


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("contended", [AlertGroup, AlertGroupMember], ids=["groups", "members"])
def test_two_placings_of_the_same_alerts_in_opposite_orders_at_once_do_not_deadlock(
    request, start, contended
):
    # As two workers placing overlapping batches (a storm's notify tasks, the evaluation's tail):
    # each takes its groups' and members' row locks in the same order, so one waits for the
    # other instead of each waiting for a row the other holds.
    # The root route is there before (an earlier test's flush may have removed the one the
    # migrations made): the placings would otherwise both create it, one waiting on the other's
    # insert before reaching the contended one.
    grouping.root_route()
    if contended is AlertGroupMember:
        # Groups of many alerts each, there before: the placings insert only members.
        request.getfixturevalue("routes")
        grouping.place(make_alerts(6, start), Notification.Kind.FIRING, start)
    contended_insert = f"INSERT INTO {contended._meta.db_table} ("
    failures, met = [], []

    def place_in_a_transaction(alerts: list[Alert], together: threading.Barrier) -> None:
        def start_the_contended_insert_together(execute, sql, params, many, context):
            # Both threads' statement at once, not the few ms apart that let one finish first.
            if sql.startswith(contended_insert):
                met.append(together.wait(timeout=10))
            return execute(sql, params, many, context)

        try:
            with (
                connection.execute_wrapper(start_the_contended_insert_together),
                transaction.atomic(),
            ):
                grouping.place(alerts, Notification.Kind.FIRING, start)
        except Exception as error:
            failures.append(error)
        finally:
            connection.close()

    for _ in range(ROUNDS):
        alerts = make_alerts(SIZE, start)
        together = threading.Barrier(2)
        placers = [
            threading.Thread(target=place_in_a_transaction, args=(order, together))
            for order in (alerts, alerts[::-1])
        ]
        for placer in placers:
            placer.start()
        for placer in placers:
            placer.join()
        assert failures == []
        placed = AlertGroupMember.objects.filter(alert__in=alerts).values("alert").distinct()
        assert placed.count() == len(alerts)
    assert len(met) == 2 * ROUNDS
