"""The Routes page: everyone reads the tree, Admins add, edit and delete routes; the alert
page names the groups an alert is in and when each was last notified."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts import grouping, lifecycle
from alerts.models import Alert, Notification, NotificationChannel, Route
from instances.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(user_with_role) -> Client:
    client = Client()
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    return client


def test_an_admin_adds_a_route_below_the_root_edits_it_and_deletes_it(admin):
    pager = NotificationChannel.objects.create(name="pager", kind="webhook", target="https://x.io")
    root = grouping.root_route()
    response = admin.post(
        reverse("dashboard:route_create"),
        {
            "name": "database team",
            "parent": root.pk,
            "position": 1,
            "matchers": '[{"label": "team", "op": "=", "value": "db"}]',
            "channels": [pager.pk],
            "group_by": '["alertname", "team"]',
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "",
        },
    )
    assert response.status_code == 302
    route = Route.objects.get(name="database team")
    assert (route.parent, route.group_by, route.group_wait) == (
        root,
        ["alertname", "team"],
        timedelta(seconds=30),
    )
    assert route.repeat_interval is None  # taken from the root
    assert list(route.channels.all()) == [pager]
    assert AuditEvent.objects.filter(action="route.create").exists()

    page = admin.get(reverse("dashboard:routes")).content.decode()
    assert "database team" in page and 'team="db"' in page
    form = admin.get(reverse("dashboard:route_create")).content.decode()
    # A new route's unset group_by shows as an empty box to type in, not as JSON null.
    (group_by,) = re.findall(r'<input[^>]*name="group_by"[^>]*>', form)
    assert "value=" not in group_by
    assert "every enabled channel" in page  # the root's channels

    data = {"name": "db", "parent": root.pk, "position": 1, "matchers": "[]", "group_by": ""}
    response = admin.post(reverse("dashboard:route_edit", args=[route.pk]), data)
    assert response.status_code == 302
    route.refresh_from_db()
    assert (route.name, route.group_by, route.group_wait) == ("db", None, None)

    response = admin.post(reverse("dashboard:route_delete", args=[route.pk]))
    assert response.status_code == 302
    assert list(Route.objects.all()) == [root]


def test_a_route_can_not_go_below_itself_and_the_root_stays(admin):
    root = grouping.root_route()
    parent = Route.objects.create(name="parent", parent=root)
    child = Route.objects.create(name="child", parent=parent)
    data = {"name": "parent", "parent": child.pk, "position": 0, "matchers": "[]"}
    response = admin.post(reverse("dashboard:route_edit", args=[parent.pk]), data)
    assert response.status_code == 400
    assert Route.objects.get(pk=parent.pk).parent == root

    bad = {"name": "odd", "parent": root.pk, "position": 0, "matchers": "[]", "group_by": '"x"'}
    assert admin.post(reverse("dashboard:route_create"), bad).status_code == 400

    admin.post(reverse("dashboard:route_delete", args=[root.pk]))
    assert Route.objects.filter(pk=root.pk).exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_read_the_tree_and_may_not_change_it(client, user_with_role, role):
    client.force_login(user_with_role(role))
    root = grouping.root_route()
    child = Route.objects.create(name="web team", parent=root)

    page = client.get(reverse("dashboard:routes"))
    assert page.status_code == 200
    assert "web team" in page.text and "Add a route" not in page.text
    assert client.get(reverse("dashboard:route_create")).status_code == 403
    data = {"name": "x", "parent": root.pk, "position": 0, "matchers": "[]"}
    assert client.post(reverse("dashboard:route_create"), data).status_code == 403
    assert client.post(reverse("dashboard:route_edit", args=[child.pk]), data).status_code == 403
    assert client.post(reverse("dashboard:route_delete", args=[child.pk])).status_code == 403
    assert Route.objects.filter(pk=child.pk, name="web team").exists()


def test_the_alert_page_names_its_groups_and_when_each_was_last_notified(admin):
    grouping.root_route()
    fleet = Route.objects.create(
        name="fleet",
        parent=grouping.root_route(),
        group_by=["alertname"],
        group_wait=timedelta(seconds=30),
    )
    start = timezone.now()
    alert = Alert(
        instance=Instance.register("node-1"),
        source=Alert.Source.SYSTEM,
        alert_type=Alert.INSTANCE_DOWN,
        severity=Alert.Severity.CRITICAL,
    )
    lifecycle.open_episode(alert, [], start)
    # Its notify task places it in its group, which waits (the task is queued on commit, which
    # this test's transaction never reaches: done here as the task does it).
    grouping.receive(alert, Notification.Kind.FIRING, start)

    page = admin.get(reverse("dashboard:alert", args=[alert.pk])).content.decode()
    assert "fleet" in page and 'alertname="instance_down"' in page
    assert "not yet" in page

    grouping.flush_due([], start + timedelta(seconds=31))
    page = admin.get(reverse("dashboard:alert", args=[alert.pk])).content.decode()
    assert "not yet" not in page
    assert fleet.groups.get().last_notified_at == start + timedelta(seconds=31)
