"""The Channels page: a form per transport, a secret never shown back, and a test sent from the
page that shows what the receiver answered."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts.models import Notification, NotificationChannel
from tests.test_notifications import receiver  # noqa: F401

pytestmark = pytest.mark.django_db

SECRET = "s3cret-signing-key-0042"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def admin(user_with_role) -> Client:
    client = Client()
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    return client


def create(admin: Client, kind: str, **fields):
    """Submit the kind's form as a browser does: its default severities stay ticked."""
    severities = NotificationChannel.DEFAULT_SEVERITIES[kind]
    data = {"name": f"{kind} channel", "enabled": "on", "severities": severities, **fields}
    return admin.post(reverse("dashboard:channel_create", args=[kind]), data)


def test_a_webhook_channel_is_created_with_its_secret_and_audited(admin):
    response = create(admin, "webhook", target="https://hooks.example.com/vigil", secret=SECRET)

    channel = NotificationChannel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard:channel_edit", args=[channel.pk])
    assert (channel.kind, channel.target, channel.secret) == (
        "webhook",
        "https://hooks.example.com/vigil",
        SECRET,
    )
    event = AuditEvent.objects.get(action="notificationchannel.create")
    assert (event.actor_label, event.target_id) == ("boss", str(channel.pk))


def test_the_secret_is_never_shown_back_and_an_empty_box_keeps_it(admin):
    create(admin, "webhook", target="https://hooks.example.com/vigil", secret=SECRET)
    channel = NotificationChannel.objects.get()
    url = reverse("dashboard:channel_edit", args=[channel.pk])

    page = admin.get(url).text
    admin.post(
        url,
        {"name": "Renamed", "target": channel.target, "secret": "", "severities": ["critical"]},
    )

    assert SECRET not in page
    assert 'type="password"' in page and "ends in …0042" in page
    channel.refresh_from_db()
    assert (channel.name, channel.secret, channel.severities) == ("Renamed", SECRET, ["critical"])


def test_each_kind_has_only_its_own_fields(admin):
    pages = {
        kind: admin.get(reverse("dashboard:channel_create", args=[kind])).text
        for kind in NotificationChannel.Kind.values
    }

    assert "Addresses" in pages["email"] and 'name="secret"' not in pages["email"]
    assert "Webhook URL" in pages["slack"] and 'name="secret"' not in pages["slack"]
    assert "Routing key" in pages["pagerduty"]
    assert "Signing secret" in pages["webhook"]
    assert all("Config" not in page and 'name="kind"' not in page for page in pages.values())


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("slack", {"target": "not a url at all"}, "Enter a valid URL."),
        ("email", {"target": "ops@example.com, nobody"}, "Enter a valid email address."),
        ("pagerduty", {}, "PagerDuty needs its integration&#x27;s routing key"),
        ("webhook", {"target": ""}, "This field is required."),
        ("telegram", {"secret": "123:tok", "chat_id": "general"}, "A numeric chat id"),
        ("telegram", {"chat_id": "42"}, "Telegram needs the bot"),
        ("ntfy", {"topic": "a topic/with slash"}, "Up to 64 letters"),
        ("opsgenie", {}, "Opsgenie needs an API integration"),
        ("discord", {"target": ""}, "This field is required."),
    ],
)
def test_a_refused_channel_says_why_at_its_field(admin, kind, fields, message):
    response = create(admin, kind, **fields)

    assert response.status_code == 400
    assert message in response.text
    assert not NotificationChannel.objects.exists()


def test_severities_left_at_the_default_follow_the_kind_and_others_are_kept(admin):
    create(admin, "slack", target="https://hooks.slack.com/services/T/B/x",
           severities=["critical", "error", "warning"])  # fmt: skip
    create(admin, "pagerduty", secret="routing-key", severities=["critical", "error"])

    stored = dict(NotificationChannel.objects.values_list("kind", "severities"))
    assert stored == {"slack": [], "pagerduty": ["critical", "error"]}


def test_the_list_shows_a_chat_webhook_by_its_host_only(admin):
    NotificationChannel.objects.create(
        name="Ops room", kind="slack", target="https://hooks.slack.com/services/T0/B0/tokenpart"
    )

    page = admin.get(reverse("dashboard:channels")).text

    assert "hooks.slack.com" in page and "tokenpart" not in page
    assert "Which alerts reach which channel" in page


def test_send_test_shows_the_receivers_answer_and_logs_the_attempt(admin, receiver):  # noqa: F811
    channel = NotificationChannel.objects.create(
        name="Hook", kind="webhook", target=receiver.url(), secret=SECRET
    )

    response = admin.post(reverse("dashboard:channel_test", args=[channel.pk]), headers=HTMX)

    assert response.status_code == 200
    assert "The receiver answered HTTP 200." in response.text
    assert "{&quot;status&quot;: &quot;success&quot;}" in response.text
    assert receiver.json()["kind"] == "test"
    note = Notification.objects.get(channel=channel)
    assert (note.kind, note.status, note.response_code) == ("test", "sent", 200)


def test_a_refusing_receiver_shows_as_failed_with_its_answer(admin, receiver):  # noqa: F811
    receiver.statuses = [403]
    channel = NotificationChannel.objects.create(name="Hook", kind="webhook", target=receiver.url())

    response = admin.post(reverse("dashboard:channel_test", args=[channel.pk]), headers=HTMX)

    assert "Failed" in response.text and "answered 403" in response.text
    assert "success" in response.text
    assert Notification.objects.get(channel=channel).status == "gave_up"


def test_deleting_a_channel_is_audited(admin):
    channel = NotificationChannel.objects.create(name="Old", kind="webhook", target="https://x.io")

    response = admin.post(reverse("dashboard:channel_delete", args=[channel.pk]))

    assert response["Location"] == reverse("dashboard:channels")
    assert not NotificationChannel.objects.exists()
    assert AuditEvent.objects.filter(action="notificationchannel.delete").exists()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_only_admins_manage_channels(client, user_with_role, role):
    client.force_login(user_with_role(role))
    channel = NotificationChannel.objects.create(name="Hook", kind="webhook", target="https://x.io")

    assert client.get(reverse("dashboard:channels")).status_code == 403
    assert client.post(reverse("dashboard:channel_test", args=[channel.pk])).status_code == 403


def test_django_admin_masks_the_secret_and_has_no_config_box(admin):
    channel = NotificationChannel.objects.create(
        name="Hook", kind="webhook", target="https://x.io", secret=SECRET
    )

    page = admin.get(reverse("admin:alerts_notificationchannel_change", args=[channel.pk])).text

    assert SECRET not in page
    assert 'name="config"' not in page and "unused today" not in page
    assert 'type="checkbox" name="severities"' in page


@pytest.mark.parametrize(
    ("kind", "fields", "stored"),
    [
        ("teams", {"target": "https://prod.example.logic.azure.com/workflows/1"}, {}),
        ("discord", {"target": "https://discord.com/api/webhooks/1/tok"}, {}),
        ("telegram", {"secret": "123:tok", "chat_id": "-1001234"}, {"chat_id": "-1001234"}),
        ("ntfy", {"topic": "ops-alerts"}, {"topic": "ops-alerts"}),
        ("opsgenie", {"secret": "genie-key", "target": "https://api.eu.opsgenie.com"}, {}),
    ],
)
def test_each_new_kind_is_created_from_its_form(admin, kind, fields, stored):
    response = create(admin, kind, **fields)

    assert response.status_code == 302
    channel = NotificationChannel.objects.get()
    assert (channel.kind, channel.config) == (kind, stored)
    assert admin.get(response["Location"]).status_code == 200


@pytest.mark.parametrize("kind", ["slack", "teams", "webhook", "pagerduty", "ntfy"])
@pytest.mark.parametrize("target", ["ftp://files.example.com/hook", "file:///etc/passwd"])
def test_channel_targets_are_http_or_https_only(admin, kind, target):
    fields = {"target": target, "secret": "key", "topic": "t"}

    response = create(admin, kind, **fields)

    assert response.status_code == 400
    assert "Enter an http:// or https:// URL" in response.text
    assert not NotificationChannel.objects.exists()


def test_django_admin_refuses_a_non_http_target_too(admin):
    response = admin.post(
        reverse("admin:alerts_notificationchannel_add"),
        {"name": "Hook", "kind": "webhook", "target": "gopher://x.example/", "secret": "",
         "severities": ["critical"], "enabled": "on"},
    )  # fmt: skip

    assert response.status_code == 200
    assert "Enter an http:// or https:// URL" in response.text
    assert not NotificationChannel.objects.exists()
