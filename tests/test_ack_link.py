"""The one-click Acknowledge link that notifications carry."""

import re
from datetime import timedelta
from urllib.parse import quote, unquote, urlsplit

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts import lifecycle, links, tasks
from alerts.models import Alert, AlertRule, NotificationChannel
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"
LOGIN_URL = reverse("account_login")


@pytest.fixture
def alice(user_with_role):
    """An Operator: acknowledging needs the role."""
    return user_with_role(Role.OPERATOR, "alice", PASSWORD)


@pytest.fixture
def alert(settings):
    """A firing rule alert, notified by email (locmem)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.VIGIL_BASE_URL = "https://vigil.example.com"
    AlertRule.objects.all().delete()
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")
    rule = AlertRule.objects.create(name="CPU hot", metric="cpu_usage", critical_threshold=90)
    alert = Alert.objects.create(
        instance=Instance.register("web-1"),
        rule=rule,
        source=Alert.Source.RULE,
        alert_type=rule.name,
        severity="critical",
        fingerprint="f" * 64,
        fired_at=timezone.now() - timedelta(minutes=1),
        last_notified_at=timezone.now(),
    )
    tasks.dispatch(alert, "firing")
    return alert


def link_in_mail() -> str:
    """The path of the Acknowledge link in the one notification mailed."""
    (message,) = mail.outbox
    url = re.search(r"Acknowledge: (\S+)", message.body).group(1)
    assert url.startswith("https://vigil.example.com/alerts/ack/")
    return urlsplit(url).path


def log_in(client, next_url):
    client.get(LOGIN_URL)
    return client.post(
        f"{LOGIN_URL}?next={quote(next_url)}",
        {"login": "alice", "password": PASSWORD},
        follow=False,
    )


def test_the_mailed_link_acknowledges_after_login_and_goes_to_the_alert(client, alice, alert):
    path = link_in_mail()

    response = client.get(path)
    assert response.status_code == 302
    assert unquote(response["Location"]) == f"{LOGIN_URL}?next={path}"
    assert Alert.objects.get().status == "active"

    after_login = log_in(client, path)
    assert after_login["Location"] == path
    confirmation = client.get(path)
    assert confirmation.status_code == 200
    assert "Acknowledge this alert?" in confirmation.text
    assert Alert.objects.get().status == "active"
    response = client.post(path)
    assert response.status_code == 302
    assert response["Location"] == f"/alerts/{alert.pk}/"
    stored = Alert.objects.get()
    assert (stored.status, stored.acknowledged_by) == ("acknowledged", alice)
    assert stored.note == "Acknowledged from a notification link."


def test_following_the_link_again_keeps_the_first_acknowledgement(client, alice, alert):
    path = link_in_mail()
    client.force_login(alice)
    client.post(path)
    first = Alert.objects.get().acknowledged_at
    assert client.post(path).status_code == 302
    assert Alert.objects.get().acknowledged_at == first


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: token.replace(token.split(":")[0], token.split(":")[0][::-1]),
        lambda token: "not-a-token",
    ],
)
def test_a_tampered_link_is_refused(client, alice, alert, tamper):
    client.force_login(alice)
    token = link_in_mail().rstrip("/").rsplit("/", 1)[1]
    response = client.post(reverse("alerts:acknowledge_link", args=[tamper(token)]))
    assert response.status_code == 400
    assert Alert.objects.get().status == "active"


def test_a_link_for_another_action_or_alert_is_refused(client, alice, alert):
    client.force_login(alice)
    token = links.sign(alert, action="resolve")
    response = client.post(reverse("alerts:acknowledge_link", args=[token]))
    assert response.status_code == 400
    assert Alert.objects.get().status == "active"


def test_a_link_replayed_after_resolution_is_refused(client, alice, alert):
    path = link_in_mail()
    lifecycle.resolve(alert, note="recovered")
    client.force_login(alice)
    response = client.post(path)
    assert response.status_code == 410
    assert Alert.objects.get().status == "resolved"


def test_a_link_of_a_previous_episode_is_refused_even_if_reopened(client, alice, alert):
    path = link_in_mail()
    lifecycle.resolve(alert)
    lifecycle.reopen(alert)
    Alert.objects.filter(pk=alert.pk).update(fired_at=timezone.now())
    client.force_login(alice)
    assert client.post(path).status_code == 410
    assert Alert.objects.get().status == "active"


def test_a_viewer_following_the_link_is_refused(client, user_with_role, alert):
    path = link_in_mail()
    client.force_login(user_with_role(Role.VIEWER, "victor"))
    assert client.post(path).status_code == 403
    assert Alert.objects.get().status == "active"


def test_fetching_the_link_changes_nothing_however_often(client, alice, alert):
    """Mail scanners and link previews fetch links with GET: only the confirmation's POST acts."""
    path = link_in_mail()
    client.force_login(alice)
    for _ in range(3):
        page = client.get(path)
        assert page.status_code == 200
    assert 'method="post"' in page.text
    assert Alert.objects.get().status == "active"
    assert not AuditEvent.objects.filter(action="alert.acknowledge").exists()


def test_a_link_older_than_its_max_age_is_refused(client, alice, alert, settings):
    path = link_in_mail()
    client.force_login(alice)
    settings.ACK_LINK_MAX_AGE_HOURS = 0
    response = client.post(path)
    assert response.status_code == 410
    assert "expired" in response.text
    assert Alert.objects.get().status == "active"
