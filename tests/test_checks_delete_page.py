"""Deleting a check from its page or from the list: Operators and Admins, after a confirm step,
by a POST with its CSRF token; the check's instance, samples, alerts and pings go as with the
API's delete. Viewers see no button and are refused."""

import re

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from alerts.models import Alert
from checks import signals
from checks.models import Check, Ping
from instances.models import Instance, Series

pytestmark = pytest.mark.django_db


def failed_heartbeat() -> Check:
    """A heartbeat with a ping, a sample and an open down alert."""
    check = Check.objects.create(name="Nightly export", kind=Check.Kind.HEARTBEAT)
    check.record_ping(Ping.Kind.FAIL, timezone.now(), b"exit 3")
    assert Alert.objects.filter(instance=check.instance, alert_type=signals.DOWN).exists()
    return check


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token_of(page: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_an_operator_confirms_then_deletes_a_check_with_everything_of_it(user_with_role, role):
    check = failed_heartbeat()
    client = signed_in(user_with_role(role, "oncall"))

    page = client.get(f"/checks/{check.pk}/").content.decode()
    assert f'href="/checks/{check.pk}/delete/"' in page
    confirm = client.get(f"/checks/{check.pk}/delete/")
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert "Delete Nightly export?" in text and "with its 1 ping;" in text
    assert Check.objects.filter(pk=check.pk).exists()

    refused = client.post(f"/checks/{check.pk}/delete/")
    assert refused.status_code == 403
    deleted = client.post(
        f"/checks/{check.pk}/delete/", {"csrfmiddlewaretoken": csrf_token_of(text)}
    )

    assert deleted.status_code == 302 and deleted.url == "/checks/"
    assert not Check.objects.filter(pk=check.pk).exists()
    assert not Instance.objects.filter(pk=check.instance_id).exists()
    assert not Series.objects.filter(instance_id=check.instance_id).exists()
    assert not Alert.objects.filter(instance_id=check.instance_id).exists()
    assert not Ping.objects.filter(heartbeat_id=check.pk).exists()
    event = AuditEvent.objects.get(action="check.delete")
    assert (event.actor_label, event.target_id) == ("oncall", str(check.pk))
    listing = client.get("/checks/").content.decode()
    assert "Check Nightly export deleted." in listing


def test_a_viewer_sees_no_delete_button_and_is_refused(client, user_with_role):
    check = failed_heartbeat()
    # Without CSRF enforcement: the refusal is the role's, not the token's.
    client.force_login(user_with_role(Role.VIEWER, "reader"))

    page = client.get(f"/checks/{check.pk}/").content.decode()

    assert "/delete/" not in page
    assert client.get(f"/checks/{check.pk}/delete/").status_code == 403
    assert client.post(f"/checks/{check.pk}/delete/").status_code == 403
    assert Check.objects.filter(pk=check.pk).exists()


def test_the_backups_heartbeat_says_it_comes_back_and_to_pause_it_instead(user_with_role):
    check = Check.objects.create(name="Vigil backups", kind="heartbeat", watches_backups=True)
    client = signed_in(user_with_role(Role.OPERATOR, "oncall"))

    text = client.get(f"/checks/{check.pk}/delete/").content.decode()

    assert "a new one is made at the next bootstrap" in text


def test_an_operator_deletes_a_check_from_the_list_through_the_same_confirm_step(user_with_role):
    check, kept = failed_heartbeat(), Check.objects.create(name="Storefront", kind="heartbeat")
    client = signed_in(user_with_role(Role.OPERATOR, "oncall"))

    listing = client.get("/checks/").content.decode()
    delete_url = f"/checks/{check.pk}/delete/?from=list"
    assert f'href="{delete_url}"' in listing
    assert f'href="/checks/{kept.pk}/delete/?from=list"' in listing
    confirm = client.get(delete_url).content.decode()
    assert "Delete Nightly export?" in confirm
    assert '<a class="button" href="/checks/">Keep it</a>' in confirm
    deleted = client.post(delete_url, {"csrfmiddlewaretoken": csrf_token_of(confirm)})

    assert deleted.status_code == 302 and deleted.url == "/checks/"
    assert list(Check.objects.values_list("name", flat=True)) == ["Storefront"]
    assert not Instance.objects.filter(pk=check.instance_id).exists()
    assert not Ping.objects.filter(heartbeat_id=check.pk).exists()
    event = AuditEvent.objects.get(action="check.delete")
    assert (event.actor_label, event.target_id) == ("oncall", str(check.pk))


def test_a_viewer_sees_no_delete_action_on_the_list(client, user_with_role):
    check = failed_heartbeat()
    client.force_login(user_with_role(Role.VIEWER, "reader"))

    listing = client.get("/checks/").content.decode()

    assert "Nightly export" in listing and "/delete/" not in listing
    assert client.post(f"/checks/{check.pk}/delete/?from=list").status_code == 403
    assert Check.objects.filter(pk=check.pk).exists()
