"""A new Admin's first steps in Chromium (served by uvicorn, as in test_dashboard_browser): add a
teammate on the Users page, add a webhook channel on the Channels page, send it a test and read
what the receiver (a local stand-in on 127.0.0.1) answered."""

import pytest

from accounts.models import AuditEvent
from accounts.permissions import Role, user_role
from alerts.models import NotificationChannel
from tests.test_accounts_csp_browser import admin_page  # noqa: F401
from tests.test_dashboard_browser import asgi_server, browser, needs_chromium  # noqa: F401
from tests.test_notifications import receiver  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_an_admin_adds_a_teammate_from_the_users_page(admin_page, django_user_model):  # noqa: F811
    admin_page.goto("/accounts/users/")
    admin_page.get_by_text("Add a user").click()
    admin_page.get_by_label("Username").fill("olga")
    admin_page.get_by_label("Role").select_option("operator")
    admin_page.get_by_label("Password").fill("a long new passphrase 42")

    admin_page.get_by_role("button", name="Add user").click()

    admin_page.get_by_text("Added olga; they can log in now.").wait_for()
    assert admin_page.get_by_label("Role of olga").input_value() == "operator"
    olga = django_user_model.objects.get(username="olga")
    assert user_role(olga) == Role.OPERATOR
    assert AuditEvent.objects.filter(action="user.create", actor_label="csp-admin").exists()
    assert admin_page.problems == []


def test_an_admin_adds_a_webhook_channel_and_sees_the_receivers_answer_to_a_test(
    admin_page,  # noqa: F811
    receiver,  # noqa: F811
):
    admin_page.goto("/channels/")
    admin_page.get_by_role("link", name="Webhook", exact=True).click()
    admin_page.get_by_label("Name").fill("Ops receiver")
    admin_page.get_by_label("URL", exact=True).fill(receiver.url())
    admin_page.get_by_label("Signing secret").fill("a-signing-secret-1234")
    admin_page.get_by_role("button", name="Create channel").click()
    admin_page.get_by_text("Channel Ops receiver created.").wait_for()
    admin_page.evaluate("window.notReloaded = true")

    admin_page.get_by_role("button", name="Send a test notification").click()

    answer = admin_page.get_by_label("The receiver's answer")
    answer.wait_for()
    assert answer.inner_text() == '{"status": "success"}'
    assert "The receiver answered HTTP 200." in admin_page.locator(".test-result").inner_text()
    assert admin_page.evaluate("window.notReloaded") is True
    (delivered,) = receiver.requests
    assert delivered["headers"]["X-Vigil-Signature"].startswith("sha256=")
    assert receiver.json()["kind"] == "test"
    channel = NotificationChannel.objects.get()
    assert (channel.kind, channel.secret) == ("webhook", "a-signing-secret-1234")
    assert admin_page.problems == []
