"""The Rules page: everyone with a role reads the rules; Admins create, edit, enable, disable and
delete them, each change audited."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts.forms import AlertRuleForm
from alerts.models import Alert, AlertRule, Silence
from instances.models import Instance

pytestmark = pytest.mark.django_db

RULES_URL = reverse("dashboard:rules")
NEW_URL = reverse("dashboard:rule_create")
HTMX = {"HX-Request": "true"}
NEW_RULE = {
    "name": "Root disk filling",
    "description": "The root filesystem.",
    "enabled": "on",
    "runbook_url": "https://runbooks.example.com/disk",
    "metric": "disk_usage",
    "label_matchers": '[{"label": "mount", "op": "=", "value": "/"}]',
    "denominator_matchers": "",
    "aggregation": "last",
    "window": "5m",
    "reduce": "worst",
    "scope": "all",
    "scope_instance": "",
    "scope_value": "",
    "comparator": ">",
    "warning_threshold": "85",
    "critical_threshold": "95",
    "for_duration": "2m",
    "no_data": "keep",
}


@pytest.fixture
def boss(client, user_with_role):
    user = user_with_role(Role.ADMIN, "boss")
    client.force_login(user)
    return user


@pytest.fixture
def cpu_rule(db) -> AlertRule:
    """The shipped CPU rule: warn 80, crit 90, avg over 1m, for 2m."""
    return AlertRule.objects.get(name="High CPU usage")


def edit_url(rule) -> str:
    return reverse("dashboard:rule_edit", args=[rule.pk])


def enabled_url(rule) -> str:
    return reverse("dashboard:rule_enabled", args=[rule.pk])


def form_data(rule, **changes) -> dict:
    return posted_back(AlertRuleForm(instance=rule), **changes)


def posted_back(form, **changes) -> dict:
    """What an edit form posts back untouched (hidden initial values too), with ``changes``
    on top."""
    data = {}
    for field in form:
        value = field.value()
        if value is True:
            value = "on"
        if value not in (None, False):
            data[field.name] = value
            if field.field.show_hidden_initial:
                data[field.html_initial_name] = value
    return {**data, **changes}


def open_alert(rule, instance, **fields) -> Alert:
    fields = {"alert_type": rule.name, "source": Alert.Source.RULE, **fields}
    return Alert.objects.create(instance=instance, rule=rule, **fields)


def test_a_viewer_reads_every_rule_with_its_firing_count_and_no_controls(
    client, user_with_role, cpu_rule
):
    instance = Instance.objects.create(agent_id="web-1", name="Web 1")
    other = Instance.objects.create(agent_id="web-2", name="Web 2")
    open_alert(cpu_rule, instance)
    open_alert(cpu_rule, other, status=Alert.Status.ACKNOWLEDGED)
    open_alert(cpu_rule, other, alert_type="earlier", resolved_at=timezone.now())
    client.force_login(user_with_role(Role.VIEWER, "victor"))

    response = client.get(RULES_URL)

    html = response.content.decode()
    assert response.status_code == 200
    rules = {rule.name: rule for rule in response.context["rules"]}
    assert set(rules) == set(AlertRule.objects.values_list("name", flat=True))
    assert rules["High CPU usage"].firing == 2
    assert rules["High memory usage"].firing == 0
    assert f'href="/alerts/?rule={cpu_rule.pk}"' in html
    assert '<code class="selector">cpu_usage</code>' in html
    assert "avg over 1m" in html and "Warning &gt; 80" not in html
    assert "warning &gt; 80" in html and "critical &gt; 90" in html
    assert 'role="switch"' not in html and NEW_URL not in html and edit_url(cpu_rule) not in html


def test_an_admin_gets_the_new_rule_link_edit_links_and_switches(client, boss, cpu_rule):
    html = client.get(RULES_URL).content.decode()

    assert f'href="{NEW_URL}"' in html
    assert f'href="{edit_url(cpu_rule)}"' in html
    assert f'hx-post="{enabled_url(cpu_rule)}"' in html
    assert html.count('role="switch"') == AlertRule.objects.count()


def test_the_alerts_page_lists_only_the_alerts_of_the_rule_asked_for(client, boss, cpu_rule):
    instance = Instance.objects.create(agent_id="web-1", name="Web 1")
    mine = open_alert(cpu_rule, instance)
    open_alert(AlertRule.objects.get(name="High memory usage"), instance)

    response = client.get("/alerts/", {"rule": cpu_rule.pk})

    assert [alert.pk for alert in response.context["alerts"]] == [mine.pk]
    assert client.get("/alerts/", {"rule": "nonsense"}).context["alerts"] == []


def test_creating_a_rule_saves_it_audits_it_and_returns_to_the_list(client, boss):
    response = client.post(NEW_URL, NEW_RULE)

    assert response.status_code == 302 and response["Location"] == RULES_URL
    rule = AlertRule.objects.get(name="Root disk filling")
    assert rule.label_matchers == [{"label": "mount", "op": "=", "value": "/"}]
    assert rule.denominator_matchers is None
    assert (rule.window, rule.for_duration) == (timedelta(minutes=5), timedelta(minutes=2))
    assert (rule.warning_threshold, rule.critical_threshold, rule.enabled) == (85, 95, True)
    (event,) = AuditEvent.objects.filter(action="alertrule.create")
    assert (event.actor, event.target_id, event.target_label) == (boss, str(rule.pk), rule.name)
    assert "Rule Root disk filling created." in client.get(RULES_URL).content.decode()


def test_an_emptied_matcher_box_means_no_matchers(client, boss):
    response = client.post(NEW_URL, {**NEW_RULE, "label_matchers": ""})

    assert response.status_code == 302
    assert AlertRule.objects.get(name="Root disk filling").label_matchers == []


def test_the_edit_form_shows_the_rule_as_it_is_written(client, boss, cpu_rule):
    response = client.get(edit_url(cpu_rule))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="for_duration" value="2m"' in html
    assert 'name="window" value="1m"' in html
    assert f'href="{reverse("dashboard:rule_delete", args=[cpu_rule.pk])}"' in html


def test_editing_a_rule_audits_the_fields_that_changed(client, boss, cpu_rule):
    data = form_data(cpu_rule, critical_threshold="97.5", for_duration="1h30m")

    response = client.post(edit_url(cpu_rule), data)

    assert response.status_code == 302 and response["Location"] == RULES_URL
    cpu_rule.refresh_from_db()
    assert (cpu_rule.critical_threshold, cpu_rule.for_duration) == (97.5, timedelta(minutes=90))
    (event,) = AuditEvent.objects.filter(action="alertrule.change")
    assert (event.actor, event.target_id) == (boss, str(cpu_rule.pk))
    assert sorted(event.details["fields"]) == ["critical_threshold", "for_duration"]


@pytest.mark.parametrize(
    ("field", "value", "wrong", "message"),
    [
        ("label_matchers", '[{"label": "mount"', "label_matchers", "Enter a valid JSON."),
        (
            "label_matchers",
            '[{"label": "mount", "op": "==", "value": "/"}]',
            "label_matchers",
            "matcher 0: op must be one of =, !=, =~, !~",
        ),
        (
            "label_matchers",
            '{"mount": "/"}',
            "label_matchers",
            "must be a list of {label, op, value} objects",
        ),
        (
            "denominator_matchers",
            '[{"label": "x", "op": "=~", "value": "("}]',
            "denominator_matchers",
            "matcher 0: bad regex",
        ),
        ("window", "five minutes", "window", "Enter a valid duration."),
        ("scope", "instance", "scope_instance", "Pick the instance."),
    ],
)
def test_an_invalid_rule_is_shown_again_with_the_error_at_its_field(
    client, boss, cpu_rule, field, value, wrong, message
):
    response = client.post(edit_url(cpu_rule), form_data(cpu_rule, **{field: value}))

    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == [wrong]
    assert message in " ".join(form.errors[wrong])
    html = response.content.decode()
    assert f'<div class="field field-{wrong} has-errors">' in html
    assert 'role="alert"' in html
    # What was typed comes back, so it can be corrected rather than retyped.
    assert form[field].value() == value
    assert response.context["name"] == "High CPU usage"
    assert AlertRule.objects.get(pk=cpu_rule.pk).updated == cpu_rule.updated
    assert not AuditEvent.objects.filter(action__startswith="alertrule.").exists()


def test_a_rule_without_thresholds_is_refused_with_the_models_reason(client, boss):
    data = {**NEW_RULE, "warning_threshold": "", "critical_threshold": ""}

    response = client.post(NEW_URL, data)

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "Set a warning threshold, a critical threshold or both."
    ]
    assert "Set a warning threshold, a critical threshold or both." in response.content.decode()
    assert not AlertRule.objects.filter(name="Root disk filling").exists()


def test_disabling_over_htmx_answers_the_row_and_is_audited(client, boss, cpu_rule):
    response = client.post(enabled_url(cpu_rule), {"enabled": "false"}, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'<tr id="rule-{cpu_rule.pk}" class="rule-row rule-off">')
    assert 'aria-checked="false"' in html and 'name="enabled" value="true"' in html
    cpu_rule.refresh_from_db()
    assert cpu_rule.enabled is False
    (event,) = AuditEvent.objects.filter(action="alertrule.disable")
    assert (event.actor, event.target_id) == (boss, str(cpu_rule.pk))


def test_enabling_again_is_audited_and_a_repeat_changes_nothing(client, boss, cpu_rule):
    AlertRule.objects.filter(pk=cpu_rule.pk).update(enabled=False)

    first = client.post(enabled_url(cpu_rule), {"enabled": "true"}, headers=HTMX)
    repeat = client.post(enabled_url(cpu_rule), {"enabled": "true"}, headers=HTMX)

    assert (first.status_code, repeat.status_code) == (200, 200)
    assert 'aria-checked="true"' in repeat.content.decode()
    assert AlertRule.objects.get(pk=cpu_rule.pk).enabled is True
    assert AuditEvent.objects.filter(action="alertrule.enable").count() == 1


def test_the_switch_without_htmx_redirects_to_the_list(client, boss, cpu_rule):
    response = client.post(enabled_url(cpu_rule), {"enabled": "false"})

    assert response.status_code == 302 and response["Location"] == RULES_URL
    assert AlertRule.objects.get(pk=cpu_rule.pk).enabled is False


def test_the_switch_refuses_get_a_missing_state_and_a_missing_csrf_token(boss, cpu_rule):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(boss)

    assert strict.get(enabled_url(cpu_rule)).status_code == 405
    assert strict.post(enabled_url(cpu_rule), {"enabled": "false"}).status_code == 403
    assert Client().post(enabled_url(cpu_rule), {"enabled": "maybe"}).status_code == 302
    logged_in = Client()
    logged_in.force_login(boss)
    assert logged_in.post(enabled_url(cpu_rule), {"enabled": "maybe"}).status_code == 400
    assert AlertRule.objects.get(pk=cpu_rule.pk).enabled is True
    assert not AuditEvent.objects.filter(action__startswith="alertrule.").exists()


def test_deleting_asks_first_then_keeps_the_alerts_as_history(client, boss, cpu_rule):
    instance = Instance.objects.create(agent_id="web-1", name="Web 1")
    alert = open_alert(cpu_rule, instance)
    Silence.objects.create(rule=cpu_rule, comment="upgrade", ends_at=timezone.now())
    delete_url = reverse("dashboard:rule_delete", args=[cpu_rule.pk])

    confirm = client.get(delete_url)
    response = client.post(delete_url)

    confirm_html = confirm.content.decode()
    assert confirm.status_code == 200
    assert "1 alert of this rule stays in the history" in confirm_html
    assert "1 is still open and resolves at the next evaluation" in confirm_html
    assert "Its 1 silence is deleted with it." in confirm_html
    assert response.status_code == 302 and response["Location"] == RULES_URL
    assert not AlertRule.objects.filter(pk=cpu_rule.pk).exists()
    alert.refresh_from_db()
    assert alert.rule is None
    (event,) = AuditEvent.objects.filter(action="alertrule.delete")
    assert (event.actor, event.target_id, event.target_label) == (
        boss,
        str(cpu_rule.pk),
        "High CPU usage",
    )


def test_a_promql_rule_is_listed_with_its_expression_and_severity(client, user_with_role):
    AlertRule.objects.create(
        name="DiskFull", expr='disk_used_percent{mount="/"} > 90', labels={"severity": "critical"}
    )
    client.force_login(user_with_role(Role.VIEWER, "victor"))

    html = client.get(RULES_URL).content.decode()

    assert '<code class="selector">disk_used_percent{mount=&quot;/&quot;} &gt; 90</code>' in html
    assert "PromQL: every series it returns" in html


def test_an_admin_creates_a_promql_rule_from_the_rules_page(client, boss):
    response = client.post(
        NEW_URL,
        {
            **NEW_RULE,
            "name": "Disk full (PromQL)",
            "metric": "",
            "warning_threshold": "",
            "critical_threshold": "",
            "expr": "disk_used_percent > 90",
            "labels": '{"severity": "critical"}',
            "annotations": '{"summary": "{{ $labels.mount }} is full"}',
        },
    )

    assert response.status_code == 302, response.content.decode()[-2000:]
    rule = AlertRule.objects.get(name="Disk full (PromQL)")
    assert (rule.expr, rule.labels) == ("disk_used_percent > 90", {"severity": "critical"})


def test_a_rule_with_neither_metric_nor_expression_is_refused_at_the_metric(client, boss):
    response = client.post(NEW_URL, {**NEW_RULE, "metric": ""})

    assert response.status_code == 400
    assert "Name the metric, or give a PromQL expression." in response.content.decode()
