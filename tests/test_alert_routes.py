"""The routing tree and alert groups: notices reach a real HTTP receiver on 127.0.0.1, at
times the tests pass in (``now``), not by sleeping."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.permissions import Role
from alerts import grouping, lifecycle
from alerts.models import Alert, AlertGroup, AlertRule, Notification, NotificationChannel, Route
from alerts.tasks import deliver
from dashboard.alert_page import alert_groups
from instances.models import Instance
from tests.test_notifications import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


def webhook(receiver, path: str) -> NotificationChannel:
    return NotificationChannel.objects.create(
        name=path.strip("/"), kind="webhook", target=receiver.url(path)
    )


def route(name: str, matchers: dict, *channels, parent=None, **settings) -> Route:
    created = Route.objects.create(
        name=name,
        parent=parent or grouping.root_route(),
        matchers=[{"label": key, "op": "=", "value": value} for key, value in matchers.items()],
        **settings,
    )
    created.channels.set(channels)
    return created


def down(number: int, now, team: str = "web") -> Alert:
    """Instance ``node-<number>`` goes down at ``now``: its alert opens and asks for a notice."""
    instance = Instance.register(f"node-{number}")
    alert = Alert(
        instance=instance,
        source=Alert.Source.SYSTEM,
        alert_type=Alert.INSTANCE_DOWN,
        severity=Alert.Severity.CRITICAL,
        message=f"No data from node-{number}",
        labels={"team": team},
    )
    return lifecycle.open_episode(alert, [], now)


def flush(now) -> int:
    return grouping.flush_due([], now)


FLEET = {
    "group_by": ["alertname"],
    "group_wait": timedelta(seconds=60),
    "group_interval": timedelta(minutes=5),
    "repeat_interval": timedelta(hours=1),
}


def test_twenty_instances_down_at_once_make_one_notice_after_group_wait_then_only_changes(
    receiver,
):
    route("fleet", {"alertname": Alert.INSTANCE_DOWN}, webhook(receiver, "/fleet"), **FLEET)
    start = timezone.now()
    alerts = [down(number, start) for number in range(20)]
    assert receiver.requests == []  # the group waits for the rest of the storm

    assert flush(start + timedelta(seconds=30)) == 0
    assert flush(start + timedelta(seconds=90)) == 1
    (request,) = receiver.requests
    notice = receiver.json()
    assert notice["kind"] == "firing"
    assert notice["title"] == "[FIRING:20] [CRITICAL] alertname=instance_down"
    assert notice["group_labels"] == {"alertname": "instance_down"}
    assert sorted(alert["id"] for alert in notice["alerts"]) == sorted(str(a.pk) for a in alerts)
    assert notice["text"].count("\n- [CRITICAL] instance_down on node-") == 20
    (group,) = AlertGroup.objects.all()
    assert group.members.count() == 20

    # Nothing changed: nothing more, however often the group is looked at.
    assert flush(start + timedelta(seconds=200)) == 0
    # A 21st instance goes down: told only once group_interval has passed since the notice.
    latecomer = down(20, start + timedelta(seconds=120))
    assert flush(start + timedelta(seconds=300)) == 0
    assert flush(start + timedelta(seconds=400)) == 1
    assert receiver.json()["title"] == "[FIRING:21] [CRITICAL] alertname=instance_down"
    # One recovers: the next notice lists it resolved; the group's others fire on.
    lifecycle.recover(alerts[0], start + timedelta(seconds=500))
    assert flush(start + timedelta(seconds=600)) == 0
    assert flush(start + timedelta(seconds=700)) == 1
    notice = receiver.json()
    assert notice["title"] == "[STILL FIRING:20] [CRITICAL] alertname=instance_down (1 resolved)"
    states = {alert["id"]: alert["state"] for alert in notice["alerts"]}
    assert states[str(alerts[0].pk)] == "resolved" and states[str(latecomer.pk)] == "firing"
    assert group.members.count() == 20  # told of its resolution, it left the group


def test_a_group_repeats_after_repeat_interval_and_acknowledged_alerts_drop_out(receiver):
    route("fleet", {"alertname": Alert.INSTANCE_DOWN}, webhook(receiver, "/fleet"), **FLEET)
    start = timezone.now()
    first, second = down(1, start), down(2, start)
    assert flush(start + timedelta(seconds=61)) == 1
    assert flush(start + timedelta(minutes=50)) == 0
    lifecycle.acknowledge(first)
    assert flush(start + timedelta(minutes=62)) == 1
    repeat = receiver.json()
    assert repeat["kind"] == "repeat"
    assert repeat["title"].startswith("[STILL FIRING:1] ")
    assert [alert["id"] for alert in repeat["alerts"]] == [str(second.pk)]
    lifecycle.acknowledge(second)
    assert flush(start + timedelta(hours=3)) == 0
    assert len(receiver.requests) == 2


def test_matchers_send_each_team_to_its_channel_and_continue_also_tells_the_next_route(
    receiver,
):
    database = webhook(receiver, "/database")
    route("database", {"team": "db"}, database, group_by=["team"], position=1)
    route("web", {"team": "web"}, webhook(receiver, "/web"), group_by=["team"], position=2)
    start = timezone.now()
    down(1, start, team="db")
    down(2, start, team="web")
    flush(start)
    assert sorted(request["path"] for request in receiver.requests) == ["/database", "/web"]

    receiver.requests.clear()
    audit = route(
        "audit everything", {}, webhook(receiver, "/audit"), group_by=["alertname"], position=0
    )
    audit.continue_matching = True
    audit.save()
    down(3, start, team="db")
    flush(start)
    assert sorted(request["path"] for request in receiver.requests) == ["/audit", "/database"]
    # Without continue, the first matching route is the only one.
    audit.continue_matching = False
    audit.save()
    receiver.requests.clear()
    down(4, start, team="db")
    flush(start)
    assert [request["path"] for request in receiver.requests] == ["/audit"]


def test_a_rule_that_names_channels_overrides_the_routes_channels(receiver):
    chosen = webhook(receiver, "/chosen")
    route("everything", {}, webhook(receiver, "/route"), group_by=["alertname"])
    rule = AlertRule.objects.create(name="Disk", metric="disk_usage", critical_threshold=90)
    rule.channels.add(chosen)
    start = timezone.now()
    alert = Alert(
        instance=Instance.register("db-1"),
        rule=rule,
        source=Alert.Source.RULE,
        alert_type=rule.name,
        severity=Alert.Severity.CRITICAL,
        fingerprint="disk-db-1",
    )
    lifecycle.open_episode(alert, [], start)
    down(1, start)
    flush(start)
    assert sorted(request["path"] for request in receiver.requests) == ["/chosen", "/route"]
    assert receiver.json(0)["alerts"][0]["id"] != receiver.json(1)["alerts"][0]["id"]


def test_a_flush_or_a_delivery_run_twice_delivers_once(receiver):
    route("fleet", {"alertname": Alert.INSTANCE_DOWN}, webhook(receiver, "/fleet"), **FLEET)
    start = timezone.now()
    down(1, start), down(2, start)
    due = start + timedelta(seconds=61)
    assert flush(due) == 1
    assert flush(due) == 0  # the group moved on with the notice it queued
    sent = Notification.objects.get()
    notice = {"group": sent.group_id, "labels": {}, "firing": [], "resolved": []}
    notice["firing"] = [str(alert.pk) for alert in Alert.objects.all()]
    deliver.delay(str(sent.dispatch), sent.channel_id, None, "firing", notice)
    assert len(receiver.requests) == 1
    assert (sent.kind, sent.status, sent.alert) == ("firing", "sent", None)


def test_the_shipped_root_route_tells_each_alert_at_once_by_its_severity(receiver, settings):
    settings.PAGERDUTY_EVENTS_URL = receiver.url("/pager")
    NotificationChannel.objects.create(name="pager", kind="pagerduty", secret="key")
    webhook(receiver, "/hook")
    root = grouping.root_route()
    assert (root.group_by, root.group_wait, root.group_interval) == (
        ["..."],
        timedelta(0),
        timedelta(0),
    )
    start = timezone.now()
    critical = down(1, start)
    warning = Alert(
        instance=Instance.register("node-2"),
        source=Alert.Source.SYSTEM,
        alert_type="disk_full",
        severity=Alert.Severity.WARNING,
    )
    lifecycle.open_episode(warning, [], start)
    paths = sorted(request["path"] for request in receiver.requests)
    assert paths == ["/hook", "/hook", "/pager"]  # no flush needed: each alert its own group
    assert Notification.objects.filter(alert=critical).count() == 2
    assert Notification.objects.filter(alert=warning).count() == 1


def test_a_channel_template_reads_the_groups_alerts(receiver):
    listing = NotificationChannel.objects.create(
        name="listing",
        kind="webhook",
        target=receiver.url("/listing"),
        message_template="{{ group.labels.alertname }}:{% for alert in group.alerts %} "
        "{{ alert.instance }}={{ alert.state }}{% endfor %}",
    )
    route("fleet", {"alertname": Alert.INSTANCE_DOWN}, listing, **FLEET)
    start = timezone.now()
    down(1, start), down(2, start)
    flush(start + timedelta(seconds=61))
    assert receiver.json()["text"] in (
        "instance_down: node-1=firing node-2=firing",
        "instance_down: node-2=firing node-1=firing",
    )


def test_an_alert_page_lists_the_group_notices_that_listed_the_alert(receiver, user_with_role):
    fleet_hook = webhook(receiver, "/fleet")
    route("fleet", {"alertname": Alert.INSTANCE_DOWN}, fleet_hook, **FLEET)
    start = timezone.now()
    first, second = down(0, start), down(1, start)
    assert flush(start + timedelta(seconds=90)) == 1
    latecomer = down(2, start + timedelta(seconds=120))
    assert flush(start + timedelta(seconds=400)) == 1
    lifecycle.recover(first, start + timedelta(seconds=500))
    assert flush(start + timedelta(seconds=700)) == 1  # first resolved: it leaves the group
    assert not AlertGroup.objects.filter(members__alert=first).exists()

    client = Client()
    client.force_login(user_with_role(Role.VIEWER, "reader"))

    def group_notices_shown(alert: Alert) -> int:
        page = client.get(reverse("dashboard:alert", args=[alert.pk])).content.decode()
        return page.count("group notice")

    # Every notice listed the first alert, the last one as resolved though it had left.
    assert group_notices_shown(first) == 3
    assert group_notices_shown(second) == 3
    assert group_notices_shown(latecomer) == 2  # it joined after the first notice
    assert Notification.objects.filter(listed_alerts=first, alert=None).count() == 3
    # The page's groups of the second alert: one, holding it and the latecomer.
    assert [group.size for group in alert_groups(second)] == [2]

    admin = Client()
    admin.force_login(user_with_role(Role.ADMIN, "boss"))
    page = admin.get(reverse("dashboard:channel_edit", args=[fleet_hook.pk])).content.decode()
    assert page.count("group of 3 alerts") == 2 and page.count("group of 2 alerts") == 1
    assert ">test<" not in page


def test_the_evaluation_leaves_a_just_opened_alert_to_its_notify_task_unless_the_task_is_lost(
    receiver,
):
    """A storm's fresh alerts are placed in their groups by their notify tasks, not one by one
    in the evaluation's tail; an alert whose task never ran is placed there after a grace."""
    webhook(receiver, "/all/")
    now = timezone.now()
    told = Alert.objects.create(
        instance=Instance.register("node-queued"),
        source=Alert.Source.SYSTEM,
        alert_type=Alert.INSTANCE_DOWN,
        severity=Alert.Severity.CRITICAL,
        message="No data from node-queued",
        last_notified_at=now,
    )

    assert flush(now) == 0
    assert not told.group_memberships.exists()

    later = now + grouping.PLACING_GRACE + timedelta(seconds=1)
    assert flush(later) == 1
    assert told.group_memberships.count() == 1
    (request,) = receiver.requests
    notice = receiver.json()
    assert notice["title"].startswith("[FIRING] ") and "node-queued" in notice["title"]
    assert notice["kind"] == "firing"  # its first notice, though placed late


def test_an_alert_that_resolves_after_its_route_was_regrouped_is_told_resolved_where_it_fired(
    receiver,
):
    fleet = route("fleet", {"alertname": Alert.INSTANCE_DOWN}, webhook(receiver, "/fleet"), **FLEET)
    start = timezone.now()
    first, second = down(1, start), down(2, start)
    assert flush(start + timedelta(seconds=61)) == 1
    Route.objects.filter(pk=fleet.pk).update(group_by=["alertname", "team"])

    lifecycle.recover(first, start + timedelta(minutes=10))
    lifecycle.recover(second, start + timedelta(minutes=10))
    flush(start + timedelta(minutes=11))

    assert [receiver.json(n)["kind"] for n in range(len(receiver.requests))] == [
        "firing",
        "resolved",
    ]
