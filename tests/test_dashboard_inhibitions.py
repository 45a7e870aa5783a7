"""The Inhibition page: everyone with a role reads the inhibition rules and the alerts each mutes
now; Admins create, edit and delete them (audited, applied to the open alerts at once), and every
edit endpoint answers Operators and Viewers 403."""

import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts import lifecycle
from alerts.forms import InhibitRuleForm
from alerts.models import Alert, InhibitRule
from instances.models import Instance
from tests.test_dashboard_rules import posted_back

pytestmark = pytest.mark.django_db

LIST_URL = reverse("dashboard:inhibitions")
NEW_URL = reverse("dashboard:inhibition_create")
CRITICAL_MUTES_WARNINGS = {
    "name": "Criticals mute warnings",
    "source_matchers": '[{"label": "severity", "op": "=", "value": "critical"}]',
    "target_matchers": '[{"label": "severity", "op": "=", "value": "warning"}]',
    "equal": "instance, mount",
    "enabled": "on",
}


@pytest.fixture
def down_rule(db) -> InhibitRule:
    InhibitRule.objects.all().delete()
    return InhibitRule.objects.create(
        name="Down mutes the rest",
        source_matchers=[{"label": "alertname", "op": "=", "value": "instance_down"}],
        target_matchers=[{"label": "alertname", "op": "!=", "value": "instance_down"}],
        equal=["instance"],
    )


@pytest.fixture
def admin(client, user_with_role):
    user = user_with_role(Role.ADMIN, "ada")
    client.force_login(user)
    return user


def edit_url(rule: InhibitRule) -> str:
    return reverse("dashboard:inhibition_edit", args=[rule.pk])


def delete_url(rule: InhibitRule) -> str:
    return reverse("dashboard:inhibition_delete", args=[rule.pk])


def web_alerts() -> tuple[Alert, Alert]:
    """A critical and a warning alert on web-1 (the warning on the root mount)."""
    web = Instance.register("web-1", name="Web 1")
    critical = Alert.objects.create(
        instance=web, alert_type="disk_full", severity="critical", labels={"mount": "/"}
    )
    warning = Alert.objects.create(
        instance=web, alert_type="disk_filling", severity="warning", labels={"mount": "/"}
    )
    return critical, warning


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_viewers_and_operators_read_the_rules_and_what_they_mute_without_controls(
    client, user_with_role, down_rule, role
):
    web = Instance.register("web-1", name="Web 1")
    down = Alert.objects.create(instance=web, alert_type="instance_down", severity="critical")
    disk = Alert.objects.create(instance=web, alert_type="disk_full", severity="warning")
    lifecycle.mark_inhibited()
    client.force_login(user_with_role(role))

    response = client.get(LIST_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert response.context["rows"] == [(down_rule, [disk])]
    assert "<strong>Down mutes the rest</strong>" in html
    assert "{alertname=&quot;instance_down&quot;}" in html
    assert "{alertname!=&quot;instance_down&quot;}" in html
    assert f'<a href="/alerts/{disk.pk}/">disk_full on Web 1</a>' in html
    assert f'href="/alerts/{down.pk}/"' not in html
    assert NEW_URL not in html and edit_url(down_rule) not in html


def test_the_alerting_pages_link_to_each_other(client, admin, down_rule):
    html = client.get(reverse("dashboard:rules")).content.decode()

    assert f'<a href="{LIST_URL}">Inhibition</a>' in html
    assert f'<a href="{reverse("dashboard:silences")}">Silences</a>' in html
    assert f'<a href="{LIST_URL}" aria-current="page">Inhibition</a>' in (
        client.get(LIST_URL).content.decode()
    )


def test_an_admin_gets_the_new_and_edit_links(client, admin, down_rule):
    html = client.get(LIST_URL).content.decode()

    assert f'href="{NEW_URL}"' in html and f'href="{edit_url(down_rule)}"' in html


def test_creating_a_rule_saves_it_audits_it_and_mutes_at_once(client, admin, down_rule):
    critical, warning = web_alerts()

    response = client.post(NEW_URL, CRITICAL_MUTES_WARNINGS)

    assert response.status_code == 302 and response["Location"] == LIST_URL
    rule = InhibitRule.objects.get(name="Criticals mute warnings")
    assert rule.source_matchers == [{"label": "severity", "op": "=", "value": "critical"}]
    assert (rule.equal, rule.enabled) == (["instance", "mount"], True)
    (event,) = AuditEvent.objects.filter(action="inhibitrule.create")
    assert (event.actor, event.target_id) == (admin, str(rule.pk))
    warning.refresh_from_db()
    critical.refresh_from_db()
    assert (warning.inhibited, critical.inhibited) == (True, False)
    assert warning.inhibited_by == [critical]
    assert "Inhibition rule Criticals mute warnings created." in (
        client.get(LIST_URL).content.decode()
    )


def test_the_edit_form_writes_the_rule_as_it_is_stored(client, admin, down_rule):
    response = client.get(edit_url(down_rule))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="equal" value="instance"' in html
    assert "&quot;instance_down&quot;" in html
    assert f'hx-post="{delete_url(down_rule)}"' in html


def test_editing_a_rule_audits_the_fields_that_changed_and_unmutes_at_once(
    client, admin, down_rule
):
    critical, warning = web_alerts()
    client.post(NEW_URL, CRITICAL_MUTES_WARNINGS)
    rule = InhibitRule.objects.get(name="Criticals mute warnings")
    response = client.post(
        edit_url(rule), posted_back(InhibitRuleForm(instance=rule), equal="instance, region")
    )

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.equal == ["instance", "region"]
    (event,) = AuditEvent.objects.filter(action="inhibitrule.change")
    assert event.details["fields"] == ["equal"]
    warning.refresh_from_db()
    assert warning.inhibited, "neither has a region label: both have the same (empty) value"
    client.post(
        edit_url(rule), posted_back(InhibitRuleForm(instance=rule), equal="instance, alertname")
    )
    warning.refresh_from_db()
    assert not warning.inhibited


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("source_matchers", '[{"label": "severity"', "Enter a valid JSON."),
        (
            "target_matchers",
            '[{"label": "severity", "op": "==", "value": "warning"}]',
            "matcher 0: op must be one of =, !=, =~, !~",
        ),
        ("equal", "instance, not a label", "&#x27;not a label&#x27; is not a label name."),
        ("name", "", "This field is required."),
        ("source_matchers", "", "This field is required."),
    ],
)
def test_a_refused_rule_is_shown_again_with_its_problem(
    client, admin, down_rule, field, value, message
):
    response = client.post(NEW_URL, {**CRITICAL_MUTES_WARNINGS, field: value})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["form"].errors[field]
    assert not InhibitRule.objects.filter(name="Criticals mute warnings").exists()


def test_deleting_a_rule_audits_it_and_unmutes_its_alerts(client, admin, down_rule):
    web = Instance.register("web-1")
    Alert.objects.create(instance=web, alert_type="instance_down", severity="critical")
    disk = Alert.objects.create(instance=web, alert_type="disk_full", severity="warning")
    lifecycle.mark_inhibited()

    response = client.post(delete_url(down_rule), headers={"HX-Request": "true"})

    assert response.status_code == 200 and response["HX-Redirect"] == LIST_URL
    assert not InhibitRule.objects.exists()
    assert AuditEvent.objects.filter(action="inhibitrule.delete").count() == 1
    disk.refresh_from_db()
    assert not disk.inhibited


@pytest.mark.parametrize("role", [None, Role.VIEWER, Role.OPERATOR])
def test_every_edit_endpoint_refuses_anyone_but_an_admin(client, user_with_role, down_rule, role):
    client.force_login(user_with_role(role))
    attempts = [
        ("get", NEW_URL, {}),
        ("post", NEW_URL, CRITICAL_MUTES_WARNINGS),
        ("get", edit_url(down_rule), {}),
        ("post", edit_url(down_rule), {**CRITICAL_MUTES_WARNINGS, "name": "Taken over"}),
        ("post", delete_url(down_rule), {}),
    ]

    statuses = [getattr(client, method)(url, data).status_code for method, url, data in attempts]

    assert statuses == [403] * len(attempts)
    assert list(InhibitRule.objects.values_list("name", flat=True)) == ["Down mutes the rest"]
    assert not AuditEvent.objects.filter(action__startswith="inhibitrule.").exists()


def test_deleting_needs_post(client, admin, down_rule):
    assert client.get(delete_url(down_rule)).status_code == 405
    assert InhibitRule.objects.filter(pk=down_rule.pk).exists()


def test_no_target_matchers_mutes_every_other_alert(client, admin, down_rule):
    critical, warning = web_alerts()

    client.post(NEW_URL, {**CRITICAL_MUTES_WARNINGS, "target_matchers": "", "equal": "instance"})

    assert InhibitRule.objects.get(name="Criticals mute warnings").target_matchers == []
    warning.refresh_from_db()
    critical.refresh_from_db()
    assert (warning.inhibited, critical.inhibited) == (True, False)
