"""The channel page in Chromium (served by uvicorn, as in test_dashboard_browser): the message
preview follows the template as it is typed, and says so when the template fails."""

import pytest

from alerts.models import NotificationChannel
from tests.test_accounts_csp_browser import admin_page  # noqa: F401
from tests.test_dashboard_browser import asgi_server, browser, needs_chromium  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def test_the_preview_follows_the_template_as_it_is_typed(admin_page):  # noqa: F811
    channel = NotificationChannel.objects.create(
        name="Ops room", kind="slack", target="https://hooks.slack.com/services/T/B/x"
    )
    admin_page.goto(f"/channels/{channel.pk}/")
    preview = admin_page.locator("#template-preview")
    assert "cpu_usage avg over 5m is 97.2 % (&gt; 90 %)" in preview.inner_text()

    admin_page.get_by_label("Message template").fill(
        "*{{ instance.name }}* in {{ instance.region }}: {{ alert.message }}"
    )

    admin_page.wait_for_selector("#template-preview :text('*web-1* in eu-west: cpu_usage')")
    assert "Template fails" not in preview.inner_text()

    admin_page.get_by_label("Message template").fill("{% include 'secrets.txt' %}")

    admin_page.wait_for_selector("#template-preview [role=alert]:has-text('Template fails')")
    assert "sent with the default" in preview.inner_text()
    assert admin_page.problems == []
