"""Per-channel message templates: rendered into each notice with agents' words escaped for the
channel, previewed on the channel's page, and a failing one gives way to the default and says so."""

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.permissions import Role
from alerts import lifecycle
from alerts.models import Notification, NotificationChannel
from tests.test_notifications import channel, fire, receiver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

KIND_TEMPLATE = (
    '{% if message.kind == "resolved" %}Better now{% else %}{{ message.text }}{% endif %}'
)


@pytest.fixture
def admin(user_with_role) -> Client:
    client = Client()
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    return client


def test_a_slack_template_keeps_its_markup_and_escapes_the_alerts_words(receiver):  # noqa: F811
    template = "*{{ instance.name }}*: {{ alert.message }} [{{ alert.severity|upper }}]"
    channel("slack", receiver.url(), message_template=template)
    fire()

    section = receiver.json()["blocks"][1]["text"]["text"]
    assert section == "*Web web-1*: cpu_usage avg over 1m is 97 (&gt; 90) [CRITICAL]"
    assert Notification.objects.get().error == ""


def test_a_telegram_template_writes_html_with_the_alerts_words_escaped(receiver):  # noqa: F811
    channel(
        "telegram",
        receiver.url(""),
        secret="1:tok",
        config={"chat_id": "7"},
        message_template='<i>{{ alert.alert_type }}</i> "{{ alert.message }}"',
    )
    alert = fire()

    text = receiver.json()["text"]
    assert f'<i>{alert.alert_type}</i> "cpu_usage avg over 1m is 97 (&gt; 90)"' in text


def test_a_discord_template_keeps_its_markdown_and_escapes_the_alerts_words(receiver):  # noqa: F811
    channel(
        "discord",
        receiver.url(),
        message_template="**{{ instance.name }}** [runbook]({{ alert.rule.runbook_url }}) "
        "{{ alert.message }}",
    )
    fire()

    description = receiver.json()["embeds"][0]["description"]
    assert description.startswith(
        r"**Web web-1** [runbook](https://runbooks.example/cpu) cpu\_usage avg over 1m is 97 "
        r"\(\> 90\)"
    )


def test_an_email_template_is_plain_text_and_also_speaks_of_recovery():
    channel("email", "ops@example.com", message_template="{{ instance.name }} / " + KIND_TEMPLATE)
    alert = fire()
    lifecycle.resolve(alert, note="fixed")

    firing, resolved = mail.outbox
    assert firing.body.startswith("Web web-1 / cpu_usage avg over 1m is 97 (> 90)\n")
    assert resolved.body.startswith("Web web-1 / Better now\n")


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{% include 'config/settings.py' %}", "TemplateDoesNotExist"),
        ("{% if %}broken", "TemplateSyntaxError"),
        ("{% load static %}{% static 'x' %}", "TemplateSyntaxError"),
        ("{# nothing #}   ", "rendered nothing"),
    ],
)
def test_a_failing_template_gives_way_to_the_default_and_says_so(template, problem, caplog):
    channel("email", "ops@example.com", message_template=template)
    alert = fire()

    (message,) = mail.outbox
    assert message.body.startswith(f"{alert.message}\n")
    note = Notification.objects.get()
    assert note.status == "sent"
    assert problem in note.error and "sent with the default" in note.error
    assert any("sent with the default" in record.getMessage() for record in caplog.records)


def test_a_template_can_read_the_alert_but_not_act_on_it():
    template = "{{ alert.resolve }}{{ alert.acknowledge }}{{ alert.message }}"
    channel("email", "ops@example.com", message_template=template)
    alert = fire()

    alert.refresh_from_db()
    assert alert.status == "active" and alert.resolved_at is None
    assert mail.outbox[0].body.startswith(alert.message)


def test_the_channel_page_previews_its_template(admin):
    slack = channel(
        "slack",
        "https://hooks.slack.com/services/T/B/x",
        message_template="*{{ instance.name }}* {{ alert.message }}",
    )

    page = admin.get(reverse("dashboard:channel_edit", args=[slack.pk])).text

    assert "Message preview" in page
    # Shown as sent: Slack's escape of ">" in the sample alert's words, itself escaped by the page.
    assert "*web-1* cpu_usage avg over 5m is 97.2 % (&amp;gt; 90 %)" in page
    assert 'hx-post="/channels/preview/slack/"' in page


def test_the_preview_follows_the_template_being_typed(admin):
    url = reverse("dashboard:channel_preview", args=["email"])

    response = admin.post(url, {"message_template": KIND_TEMPLATE}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "cpu_usage avg over 5m is 97.2 % (&gt; 90 %)" in response.text
    assert "Better now" in response.text and "Template fails" not in response.text


def test_the_preview_shows_a_failing_template_and_the_default_it_falls_back_to(admin):
    url = reverse("dashboard:channel_preview", args=["ntfy"])

    response = admin.post(url, {"message_template": "{% include 'x.html' %}"})

    assert "Template fails" in response.text and "TemplateDoesNotExist" in response.text
    assert "sent with the default" in response.text
    assert "cpu_usage avg over 5m is 97.2 %" in response.text


def test_a_template_that_does_not_parse_is_not_saved(admin):
    response = admin.post(
        reverse("dashboard:channel_create", args=["email"]),
        {"name": "Ops", "target": "ops@example.com", "severities": ["critical"],
         "message_template": "{% for %}"},
    )  # fmt: skip

    assert response.status_code == 400
    assert "This template does not parse" in response.text
    assert not NotificationChannel.objects.exists()


def test_only_admins_preview_templates(user_with_role):
    client = Client()
    client.force_login(user_with_role(Role.OPERATOR, "op"))

    response = client.post(reverse("dashboard:channel_preview", args=["email"]), {})

    assert response.status_code == 403
