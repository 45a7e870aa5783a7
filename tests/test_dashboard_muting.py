"""Silenced and inhibited alerts shown as such: the overview, the alerts list, an instance's page,
the alert page and the rules page name what mutes each alert (a silence, an inhibiting alert)
with a link, and the Silences page lists the silences with the alerts they mute; Operators end
them, Viewers may not. The overview lists the open notification groups."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts import grouping, lifecycle
from alerts.models import Alert, AlertRule, InhibitRule, Route, Silence
from instances.models import Instance

pytestmark = pytest.mark.django_db

SILENCES_URL = reverse("dashboard:silences")


@pytest.fixture
def operator(user_with_role):
    return user_with_role(Role.OPERATOR, "olga")


@pytest.fixture
def muted(operator) -> dict:
    """On web-1: instance_down (open) inhibits disk_full by an inhibition rule; on web-2 a CPU
    rule's alert is silenced for a disk swap; on web-3 an alert nothing mutes."""
    InhibitRule.objects.all().delete()
    InhibitRule.objects.create(
        name="Down mutes the rest",
        source_matchers=[{"label": "alertname", "op": "=", "value": "instance_down"}],
        target_matchers=[{"label": "alertname", "op": "!=", "value": "instance_down"}],
        equal=["instance"],
    )
    web1, web2, web3 = (Instance.register(f"web-{n}", name=f"Web {n}") for n in (1, 2, 3))
    cpu = AlertRule.objects.get(name="High CPU usage")
    alerts = {
        "down": Alert.objects.create(
            instance=web1, alert_type="instance_down", severity="critical", source="system"
        ),
        "disk": Alert.objects.create(instance=web1, alert_type="disk_full", severity="warning"),
        "cpu": Alert.objects.create(
            instance=web2, rule=cpu, alert_type=cpu.name, severity="warning", source="rule"
        ),
        "load": Alert.objects.create(instance=web3, alert_type="load_high", severity="warning"),
    }
    lifecycle.mark_inhibited()
    lifecycle.silence(alerts["cpu"], operator, timedelta(hours=4), "disk swap")
    for alert in alerts.values():
        alert.refresh_from_db()
    return alerts


def silence_of(alert: Alert) -> Silence:
    return Silence.objects.get(instance=alert.instance)


def assert_badges_name_what_mutes(html: str, muted: dict) -> None:
    down, cpu = muted["down"], muted["cpu"]
    assert f'<a class="badge silenced muted-by" href="/alerts/{down.pk}/"' in html
    assert ">inhibited by instance_down</a>" in html
    assert f'href="{SILENCES_URL}#silence-{silence_of(cpu).pk}"' in html
    assert ">silenced: disk swap</a>" in html
    assert html.count('class="badge silenced muted-by"') == 2
    ends = timezone.localtime(silence_of(cpu).ends_at)
    assert f'title="Silenced until {ends:%-d %b %H:%M} by olga">silenced: disk swap</a>' in html


def test_the_marks_follow_the_inhibition_rule_and_the_silence(muted):
    flags = {key: (alert.inhibited, alert.silenced) for key, alert in muted.items()}

    assert flags == {
        "down": (False, False),
        "disk": (True, False),
        "cpu": (False, True),
        "load": (False, False),
    }


def test_the_overview_names_what_mutes_each_recent_alert_and_counts_them(client, operator, muted):
    client.force_login(operator)

    response = client.get("/")

    html = response.content.decode()
    assert_badges_name_what_mutes(html, muted)
    assert response.context["summary"].muted_alerts == 2
    assert 'href="/alerts/?muted=muted"' in html


def test_the_alerts_list_names_what_mutes_each_alert(client, operator, muted):
    client.force_login(operator)

    html = client.get("/alerts/").content.decode()

    assert_badges_name_what_mutes(html, muted)


def test_an_instance_page_names_what_mutes_its_alerts(client, operator, muted):
    client.force_login(operator)

    html = client.get(f"/instances/{muted['disk'].instance_id}/").content.decode()

    assert f'<a class="badge silenced muted-by" href="/alerts/{muted["down"].pk}/"' in html
    assert ">inhibited by instance_down</a>" in html


@pytest.mark.parametrize(
    ("muted_filter", "listed"),
    [("muted", {"disk", "cpu"}), ("silenced", {"cpu"}), ("inhibited", {"disk"}), ("", None)],
)
def test_the_alerts_list_filters_by_what_mutes_them(client, operator, muted, muted_filter, listed):
    client.force_login(operator)

    response = client.get("/alerts/", {"muted": muted_filter})

    shown = {alert.pk for alert in response.context["alerts"]}
    expected = set(muted) if listed is None else listed
    assert shown == {muted[key].pk for key in expected}


def test_the_page_of_an_inhibited_alert_links_the_alert_that_mutes_it(client, operator, muted):
    client.force_login(operator)

    html = client.get(f"/alerts/{muted['disk'].pk}/").content.decode()

    assert ">inhibited by instance_down</a>" in html
    assert "<h3>Inhibition</h3>" in html
    down = muted["down"]
    assert f'Muted while <a href="/alerts/{down.pk}/">instance_down on Web 1</a> is open' in html
    assert f'href="{reverse("dashboard:inhibitions")}"' in html


def test_the_page_of_the_inhibiting_alert_lists_what_it_mutes(client, operator, muted):
    load = muted["load"]
    Alert.objects.create(instance=load.instance, alert_type="instance_down", severity="critical")
    lifecycle.mark_inhibited()
    client.force_login(operator)

    response = client.get(f"/alerts/{muted['down'].pk}/")

    html = response.content.decode()
    assert Alert.objects.get(pk=load.pk).inhibited, "web-3's own instance_down mutes it"
    assert response.context["inhibits"] == [muted["disk"]]
    assert (
        f'While open, it mutes <a href="/alerts/{muted["disk"].pk}/">disk_full on Web 1</a>' in html
    )


def test_the_page_of_a_silenced_alert_names_its_silence(client, operator, muted):
    client.force_login(operator)

    html = client.get(f"/alerts/{muted['cpu'].pk}/").content.decode()

    assert ">silenced: disk swap</a>" in html
    silence_link = f'href="{SILENCES_URL}#silence-{silence_of(muted["cpu"]).pk}"'
    assert f"{silence_link}>disk swap</a>" in html, "the Silences list links it too"
    assert "<h3>Inhibition</h3>" not in html


def test_a_resolved_alert_shows_no_muting(client, operator, muted):
    lifecycle.resolve(muted["disk"], operator, note="fixed")
    client.force_login(operator)

    html = client.get(f"/alerts/{muted['disk'].pk}/").content.decode()

    assert "inhibited by" not in html and "<h3>Inhibition</h3>" not in html


def test_the_rules_page_counts_each_rules_silenced_and_inhibited_alerts(client, operator, muted):
    cpu = muted["cpu"].rule
    client.force_login(operator)

    response = client.get(reverse("dashboard:rules"))

    html = response.content.decode()
    rules = {rule.name: rule for rule in response.context["rules"]}
    assert (rules[cpu.name].firing, rules[cpu.name].silenced, rules[cpu.name].inhibited) == (
        1,
        1,
        0,
    )
    assert f'href="/alerts/?rule={cpu.pk}&amp;muted=silenced">1 silenced</a>' in html
    assert "inhibited</a>" not in html


def test_the_rules_page_counts_a_rules_inhibited_alerts(client, operator, muted):
    cpu = muted["cpu"].rule
    Alert.objects.create(
        instance=muted["down"].instance,
        rule=cpu,
        alert_type=cpu.name,
        severity="critical",
        source="rule",
    )
    lifecycle.mark_inhibited()
    client.force_login(operator)

    html = client.get(reverse("dashboard:rules")).content.decode()

    assert f'href="/alerts/?rule={cpu.pk}&amp;muted=inhibited">1 inhibited</a>' in html


def test_the_silences_page_lists_a_silence_with_the_alerts_it_mutes(client, user_with_role, muted):
    silence = silence_of(muted["cpu"])
    client.force_login(user_with_role(Role.VIEWER, "victor"))

    response = client.get(SILENCES_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert [(row, alerts) for row, alerts in response.context["rows"]] == [
        (silence, [muted["cpu"]])
    ]
    assert f'id="silence-{silence.pk}"' in html
    assert "disk swap" in html and "by olga" in html
    assert f'<a href="/alerts/{muted["cpu"].pk}/">High CPU usage on Web 2</a>' in html
    assert reverse("dashboard:silence_expire", args=[silence.pk]) not in html


def test_an_operator_ends_a_silence_and_its_alert_is_no_longer_marked(client, operator, muted):
    silence = silence_of(muted["cpu"])
    client.force_login(operator)
    expire_url = reverse("dashboard:silence_expire", args=[silence.pk])
    assert expire_url in client.get(SILENCES_URL).content.decode()

    response = client.post(expire_url)

    assert response.status_code == 302 and response["Location"] == SILENCES_URL
    muted["cpu"].refresh_from_db()
    assert not muted["cpu"].silenced
    assert not Silence.objects.active().exists()
    (event,) = AuditEvent.objects.filter(action="silence.end")
    assert (event.actor, event.target_id) == (operator, str(silence.pk))
    assert "ended" in client.get(SILENCES_URL).content.decode()


def test_a_viewer_may_not_end_a_silence(client, user_with_role, muted):
    silence = silence_of(muted["cpu"])
    client.force_login(user_with_role(Role.VIEWER, "victor"))

    response = client.post(reverse("dashboard:silence_expire", args=[silence.pk]))

    assert response.status_code == 403
    assert Silence.objects.active().get() == silence


def test_the_overview_lists_open_notification_groups_linked_to_their_alerts(
    client, operator, django_capture_on_commit_callbacks
):
    fleet = Route.objects.create(
        name="fleet",
        parent=grouping.root_route(),
        matchers=[{"label": "alertname", "op": "=", "value": Alert.INSTANCE_DOWN}],
        group_by=["alertname"],
        group_wait=timedelta(seconds=60),
    )
    now = timezone.now()
    # The alerts join their groups as their notices are queued, once each commits.
    with django_capture_on_commit_callbacks(execute=True):
        downs = [
            lifecycle.open_episode(
                Alert(
                    instance=Instance.register(f"node-{n}"),
                    source=Alert.Source.SYSTEM,
                    alert_type=Alert.INSTANCE_DOWN,
                    severity=Alert.Severity.CRITICAL,
                ),
                [],
                now,
            )
            for n in range(3)
        ]
        alone = lifecycle.open_episode(
            Alert(instance=Instance.register("node-0"), alert_type="disk_full", severity="warning"),
            [],
            now,
        )
    client.force_login(operator)

    response = client.get("/")

    (group,) = response.context["open_groups"]
    assert (group.route, group.open_alerts, group.labels) == (
        fleet,
        3,
        {"alertname": "instance_down"},
    )
    html = response.content.decode()
    assert f'href="/alerts/?group={group.pk}"><strong>3 open alerts</strong></a>' in html
    assert '<code>alertname="instance_down"</code>' in html
    rules_html = client.get(reverse("dashboard:rules")).content.decode()
    assert "notification group" not in rules_html, "no rule's alert is in a grouping route"
    listed = client.get("/alerts/", {"group": group.pk}).context["alerts"]
    assert {alert.pk for alert in listed} == {alert.pk for alert in downs}
    assert alone.pk not in {alert.pk for alert in listed}
    assert client.get("/alerts/", {"group": "x"}).context["alerts"] == []


def test_the_rules_page_says_how_many_notification_groups_hold_a_rules_alerts(
    client, user_with_role, django_capture_on_commit_callbacks
):
    cpu = AlertRule.objects.get(name="High CPU usage")
    Route.objects.create(
        name="by region",
        parent=grouping.root_route(),
        matchers=[{"label": "alertname", "op": "=", "value": cpu.name}],
        group_by=["alertname", "region"],
    )
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        for n, region in enumerate(["eu", "eu", "us"]):
            lifecycle.open_episode(
                Alert(
                    instance=Instance.register(f"web-{n}"),
                    rule=cpu,
                    source=Alert.Source.RULE,
                    alert_type=cpu.name,
                    severity="warning",
                    labels={"region": region},
                ),
                [],
                now,
            )
    client.force_login(user_with_role(Role.ADMIN, "ada"))

    html = client.get(reverse("dashboard:rules")).content.decode()

    assert "in 2 notification groups" in html
    row = client.post(
        reverse("dashboard:rule_enabled", args=[cpu.pk]),
        {"enabled": "true"},
        headers={"HX-Request": "true"},
    )
    assert "in 2 notification groups" in row.content.decode(), "the switched row keeps it"
