"""The Rules page in Chromium (served by uvicorn, as in test_dashboard_browser): an Admin turns a
rule off in place, and a refused rule comes back with the reason at its field. ``admin_page``
collects console errors, so a CSP violation fails these tests too."""

import pytest

from accounts.models import AuditEvent
from alerts.models import AlertRule
from tests.test_accounts_csp_browser import admin_page  # noqa: F401
from tests.test_dashboard_browser import asgi_server, browser, needs_chromium  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


@pytest.fixture
def rule(db) -> AlertRule:
    return AlertRule.objects.create(
        name="Web CPU", metric="cpu_usage", warning_threshold=80, critical_threshold=90
    )


def test_the_switch_turns_a_rule_off_without_reload(admin_page, rule):  # noqa: F811
    admin_page.goto("/rules/")
    admin_page.evaluate("window.notReloaded = true")
    switch = admin_page.get_by_role("switch", name="Web CPU enabled")
    assert switch.get_attribute("aria-checked") == "true"

    switch.click()

    admin_page.wait_for_selector(f"#rule-{rule.pk}.rule-off [role=switch][aria-checked=false]")
    assert admin_page.evaluate("window.notReloaded") is True
    rule.refresh_from_db()
    assert rule.enabled is False
    assert AuditEvent.objects.filter(action="alertrule.disable", target_id=str(rule.pk)).exists()
    assert admin_page.problems == []


def test_a_refused_rule_shows_the_reason_at_its_field(admin_page, rule):  # noqa: F811
    admin_page.goto(f"/rules/{rule.pk}/edit/")
    admin_page.get_by_label("Label matchers").fill('[{"label": "mount", "op": "=="}]')
    admin_page.get_by_label("Critical threshold").fill("95")

    with admin_page.expect_response(f"**/rules/{rule.pk}/edit/") as answer:
        admin_page.get_by_role("button", name="Save rule").click()

    assert answer.value.status == 400
    field = admin_page.locator(".field-label_matchers.has-errors")
    assert "must have exactly label, op and value" in field.locator(".errorlist").inner_text()
    assert admin_page.get_by_label("Label matchers").input_value() == (
        '[{"label": "mount", "op": "=="}]'
    )
    assert admin_page.get_by_role("alert").is_visible()
    rule.refresh_from_db()
    assert (rule.label_matchers, rule.critical_threshold) == ([], 90)
    # Chromium reports the 400 page itself as a failed load; nothing else may go wrong.
    assert [problem for problem in admin_page.problems if "status of 400" not in problem[1]] == []
