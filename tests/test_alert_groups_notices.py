"""What a group's notice says and when it stays quiet: acknowledged alerts, two routes grouping
by the same labels, a deleted route, the Acknowledge links of a notice of several alerts.
Notices reach a real HTTP receiver on 127.0.0.1, at times the tests pass in."""

import hashlib
import importlib
import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from alerts import grouping, lifecycle, links
from alerts.models import GROUP_BY_ALL, Alert, AlertGroup, AlertGroupMember, Notification, Route
from alerts.tasks import deliver
from instances.models import Instance
from tests.test_alert_routes import FLEET, down, flush, receiver, route, webhook  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def fleet(receiver):  # noqa: F811
    """A route grouping instance_down alerts by alertname, telling the receiver's /fleet."""
    return route("fleet", {"alertname": Alert.INSTANCE_DOWN}, webhook(receiver, "/fleet"), **FLEET)


@pytest.fixture
def told(fleet):
    """Two instances went down; the fleet's group told of both. Returns the time it told and
    the two alerts."""
    start = timezone.now()
    first, second = down(1, start), down(2, start)
    assert flush(start + timedelta(seconds=61)) == 1
    return start + timedelta(seconds=61), first, second


def test_a_group_notice_whose_firing_alerts_were_acknowledged_while_queued_tells_only_resolved(
    receiver,  # noqa: F811
    fleet,
    told,
):
    start, taken, gone = told
    group = AlertGroup.objects.get()
    lifecycle.recover(gone, start + timedelta(minutes=2))
    # The notice of the change was queued, then the firing one was acknowledged before it left.
    lifecycle.acknowledge(taken)
    notice = {
        "group": group.pk,
        "route": fleet.pk,
        "labels": group.labels,
        "firing": [str(taken.pk)],
        "resolved": [str(gone.pk)],
    }
    deliver.delay(
        "7d0f1c4e-0a4b-4c59-9b51-2f4c8f0e6a11",
        group.route.channels.get().pk,
        None,
        "firing",
        notice,
    )

    sent = receiver.json()
    assert sent["kind"] == "resolved"
    assert sent["title"] == "[RESOLVED:1] alertname=instance_down"
    assert [alert["id"] for alert in sent["alerts"]] == [str(gone.pk)]
    assert Notification.objects.latest("created_at").kind == Notification.Kind.RESOLVED


def test_two_routes_grouping_by_the_same_labels_are_two_incidents(receiver):  # noqa: F811
    route("pager", {}, webhook(receiver, "/pager"), position=0, continue_matching=True, **FLEET)
    route("chat", {}, webhook(receiver, "/chat"), position=1, **FLEET)
    start = timezone.now()
    down(1, start)
    assert flush(start + timedelta(seconds=61)) == 2

    pager, chat = sorted(receiver.requests, key=lambda request: request["path"] != "/pager")
    assert (pager["path"], chat["path"]) == ("/pager", "/chat")
    fingerprints = {receiver.json(n)["fingerprint"] for n in range(2)}
    assert len(fingerprints) == 2
    assert all(fingerprint.startswith("group-") for fingerprint in fingerprints)


def test_a_notice_queued_without_its_route_keeps_the_key_its_incident_was_opened_with(
    receiver,  # noqa: F811
    fleet,
    told,
):
    _, first, second = told
    with_route = receiver.json()["fingerprint"]
    notice = {"group": None, "labels": {"alertname": "instance_down"}}
    notice |= {"firing": [str(first.pk), str(second.pk)], "resolved": []}
    channel = fleet.channels.get()
    deliver.delay("0b7e4f2a-6c1d-4e8f-9a3b-5d2c7e1f0a44", channel.pk, None, "repeat", notice)

    without_route = receiver.json()["fingerprint"]
    assert without_route != with_route
    notice["route"] = fleet.pk
    deliver.delay("5e2a9c1b-3f4d-4a6e-8b7c-1d0e9f8a2b33", channel.pk, None, "repeat", notice)
    assert receiver.json()["fingerprint"] == with_route


def test_a_group_that_told_before_keys_named_routes_keeps_its_key_and_a_new_group_names_its_route(
    receiver,  # noqa: F811
    fleet,
):
    start = timezone.now()
    old = down(1, start)
    # Its group told before the upgrade: the migration marks it as keyed by its labels alone.
    AlertGroup.objects.update(keyed_by_route=False)
    assert flush(start + timedelta(seconds=61)) == 1
    labels = json.dumps([["alertname", "instance_down"]])
    opened = receiver.json()["fingerprint"]
    assert opened == "group-" + hashlib.sha256(labels.encode()).hexdigest()

    assert flush(start + timedelta(hours=1, seconds=62)) == 1
    assert (receiver.json()["kind"], receiver.json()["fingerprint"]) == ("repeat", opened)
    lifecycle.recover(old, start + timedelta(hours=2))
    assert flush(start + timedelta(hours=2, seconds=1)) == 1
    assert (receiver.json()["kind"], receiver.json()["fingerprint"]) == ("resolved", opened)
    assert not AlertGroup.objects.exists()

    # A group made since names its route in its key.
    down(2, start + timedelta(hours=3))
    assert AlertGroup.objects.get().keyed_by_route
    assert flush(start + timedelta(hours=3, seconds=61)) == 1
    assert receiver.json()["kind"] == "firing"
    named = f"route:{fleet.pk}/{labels}"
    assert receiver.json()["fingerprint"] == "group-" + hashlib.sha256(named.encode()).hexdigest()


def test_deleting_a_route_does_not_page_again_for_its_alerts_and_closes_their_incident(
    receiver,  # noqa: F811
    fleet,
    told,
    settings,
):
    told_at, first, second = told
    opened = receiver.json()["fingerprint"]
    Route.objects.filter(pk=fleet.pk).delete()

    # Their notify tasks long done, the root route takes them in: as told, not as news.
    later = told_at + grouping.PLACING_GRACE + timedelta(seconds=1)
    assert flush(later) == 0
    assert len(receiver.requests) == 1
    assert first.group_memberships.get().group.route == grouping.root_route()
    assert second.group_memberships.count() == 1

    # Each in a group of its own now, they repeat on the incident they were told in.
    repeat_at = later + timedelta(seconds=settings.ALERT_REPEAT_INTERVAL_SECONDS)
    assert flush(repeat_at) == 2
    repeats = [receiver.json(n) for n in (1, 2)]
    assert {(notice["kind"], notice["fingerprint"]) for notice in repeats} == {("repeat", opened)}

    # One resolves: the incident goes on, the other still firing.
    lifecycle.recover(first, repeat_at + timedelta(minutes=1))
    assert flush(repeat_at + timedelta(minutes=2)) == 1
    told_first = receiver.json()
    assert (receiver.requests[-1]["path"], told_first["kind"]) == ("/fleet", "repeat")
    assert told_first["fingerprint"] == opened
    states = {alert["id"]: alert["state"] for alert in told_first["alerts"]}
    assert states == {str(first.pk): "resolved", str(second.pk): "firing"}

    # The other resolves: the incident opened by the deleted route's group is closed.
    lifecycle.recover(second, repeat_at + timedelta(minutes=3))
    assert flush(repeat_at + timedelta(minutes=4)) == 1
    closed = receiver.json()
    assert (closed["kind"], closed["fingerprint"]) == ("resolved", opened)
    assert [alert["id"] for alert in closed["alerts"]] == [str(second.pk)]
    assert len(receiver.requests) == 5
    assert not AlertGroup.objects.exists()
    assert set(Notification.objects.values_list("incident_key", flat=True)) == {opened}


def test_an_upgrade_keeps_the_incident_keys_open_alerts_were_told_under(
    receiver,  # noqa: F811
    fleet,
    told,
):
    migration = importlib.import_module("alerts.migrations.0021_incident_keys")
    alone = Alert(
        instance=Instance.register("db-1"),
        source=Alert.Source.SYSTEM,
        alert_type="disk_full",
        severity=Alert.Severity.CRITICAL,
    )
    lifecycle.open_episode(alone, [], timezone.now())  # the root route tells it at once
    assert len(receiver.requests) == 2
    Notification.objects.update(incident_key="")  # sent before keys were kept

    migration.keep_told_keys(apps, None)

    keys = {note.alert_id: note.incident_key for note in Notification.objects.all()}
    assert keys == {None: receiver.json(0)["fingerprint"], alone.pk: alone.fingerprint}
    assert receiver.json(1)["fingerprint"] == alone.fingerprint


def test_an_upgrade_keeps_the_incident_key_an_alert_carried_into_its_group_was_told_under(
    receiver,  # noqa: F811
):
    pager = webhook(receiver, "/pager")
    each = route("each", {"alertname": Alert.INSTANCE_DOWN}, pager, group_by=[GROUP_BY_ALL])
    start = timezone.now()
    carried = down(1, start)  # its own group tells it at once, under its fingerprint
    assert receiver.json()["fingerprint"] == carried.fingerprint
    # Before the upgrade, its route gave way to one grouping by alertname: the alert was
    # carried into that group as told, and a new alert was told by the group.
    each.delete()
    route("fleet", {"alertname": Alert.INSTANCE_DOWN}, pager, **FLEET)
    later = start + grouping.PLACING_GRACE + timedelta(seconds=1)
    assert flush(later) == 0
    fresh = down(2, later)
    assert flush(later + timedelta(seconds=61)) == 1
    group_key = receiver.json()["fingerprint"]

    # The database as it was before 0021 (the keys placing kept dropped with their column),
    # then the upgrade.
    executor = MigrationExecutor(connection)
    executor.migrate([("alerts", "0020_group_keyed_by_route")])
    executor.loader.build_graph()
    executor.migrate([("alerts", "0022_told_keys_of_members_placed_before")])

    told_keys = dict(AlertGroupMember.objects.values_list("alert_id", "told_keys"))
    assert told_keys == {carried.pk: {str(pager.pk): carried.fingerprint}, fresh.pk: {}}
    # Its resolution closes the incident its firing opened, not one of the group's.
    lifecycle.recover(carried, later + timedelta(minutes=2))
    assert flush(later + timedelta(minutes=7)) == 1
    resolved = receiver.json()
    assert (resolved["kind"], resolved["fingerprint"]) == ("resolved", carried.fingerprint)
    assert resolved["fingerprint"] != group_key


def test_a_notice_of_several_alerts_has_an_acknowledge_link_for_each_firing_one(
    receiver,  # noqa: F811
    fleet,
):
    start = timezone.now()
    alerts = [down(number, start) for number in range(3)]
    lifecycle.recover(alerts[2], start + timedelta(seconds=30))
    assert flush(start + timedelta(seconds=61)) == 1

    notice = receiver.json()
    listed = {alert["id"]: alert for alert in notice["alerts"]}
    for alert in alerts[:2]:
        ack_url = listed[str(alert.pk)]["ack_url"]
        assert f"  Acknowledge: {ack_url}" in notice["text"].splitlines()
        token = ack_url.rstrip("/").rsplit("/", 1)[-1]
        assert links.unsign(token).alert_id == str(alert.pk)
    assert notice["text"].count("Acknowledge: ") == 2
    assert notice["ack_url"] == ""  # no one link for the notice: one per alert


def test_an_alert_that_worsens_into_another_route_is_resolved_once_on_each(
    receiver,  # noqa: F811
):
    at_once = {"group_by": ["alertname"], "group_wait": timedelta(0)}
    at_once["group_interval"] = timedelta(0)
    route("warn", {"severity": "warning"}, webhook(receiver, "/warn"), position=0, **at_once)
    route("crit", {"severity": "critical"}, webhook(receiver, "/crit"), position=1, **at_once)
    alert = Alert(
        instance=Instance.register("db-1"),
        source=Alert.Source.SYSTEM,
        alert_type="disk_full",
        severity=Alert.Severity.WARNING,
        message="Disk 85% full",
    )
    lifecycle.open_episode(alert, [], timezone.now())
    lifecycle.update_firing(alert, [], timezone.now(), severity=Alert.Severity.CRITICAL)
    assert [(r["path"], receiver.json(n)["kind"]) for n, r in enumerate(receiver.requests)] == [
        ("/warn", "firing"),
        ("/crit", "firing"),
    ]

    lifecycle.recover(alert, timezone.now())
    resolved = {r["path"]: receiver.json(n) for n, r in enumerate(receiver.requests) if n > 1}
    assert len(receiver.requests) == 4 and sorted(resolved) == ["/crit", "/warn"]
    for n, path in enumerate(["/warn", "/crit"]):
        assert resolved[path]["kind"] == "resolved"
        assert resolved[path]["fingerprint"] == receiver.json(n)["fingerprint"]
