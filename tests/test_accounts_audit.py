from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role
from ingestion.models import IngestToken

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("account_login")
PASSWORD = "correct horse battery staple"


def test_a_login_is_recorded_with_the_client_address(client, user_with_role):
    user_with_role(Role.VIEWER, "vera")

    client.post(LOGIN_URL, {"login": "vera", "password": PASSWORD}, REMOTE_ADDR="192.0.2.7")

    event = AuditEvent.objects.get(action="login")
    assert (event.actor.username, event.actor_label, event.ip) == ("vera", "vera", "192.0.2.7")


def test_a_failed_login_is_recorded_with_the_name_tried(client, user_with_role):
    user_with_role(Role.VIEWER, "vera")

    client.post(LOGIN_URL, {"login": "vera", "password": "wrong"})

    event = AuditEvent.objects.get(action="login.failed")
    assert (event.actor, event.actor_label) == (None, "vera")
    assert "wrong" not in str(event.details)


def test_a_logout_is_recorded(client, user_with_role):
    client.force_login(user_with_role(Role.VIEWER, "vera"))

    client.post(reverse("account_logout"))

    assert AuditEvent.objects.filter(action="logout", actor__username="vera").exists()


def test_token_creation_in_admin_and_revocation_are_recorded(
    client, user_with_role, confirm_password
):
    boss = user_with_role(Role.ADMIN, "boss")
    client.force_login(boss)
    confirm_password(client)

    client.post(
        reverse("admin:ingestion_ingesttoken_add"), {"name": "web-1", "scopes": "ingest,read"}
    )
    token = IngestToken.objects.get(name="web-1")
    client.post(
        reverse("admin:ingestion_ingesttoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )

    events = AuditEvent.objects.filter(target_type="ingestion.ingesttoken", target_id=str(token.pk))
    assert sorted(events.values_list("action", "actor_label")) == [
        ("token.create", "boss"),
        ("token.revoke", "boss"),
    ]


def test_the_token_command_is_recorded_as_its_actor():
    call_command("create_ingest_token", "--name", "cli", stdout=StringIO(), stderr=StringIO())

    event = AuditEvent.objects.get(action="token.create")
    assert (event.actor, event.actor_label, event.target_label) == (
        None,
        "manage.py create_ingest_token",
        str(IngestToken.objects.get(name="cli")),
    )


def test_revoking_twice_records_once():
    token, _ = IngestToken.issue("x")

    assert token.revoke() is True
    assert token.revoke() is False

    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_events_cannot_be_changed_or_deleted_in_code():
    event = AuditEvent.record("someone", "thing.do")

    event.action = "thing.undo"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()


def test_events_cannot_be_added_changed_or_deleted_in_admin(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="x"))
    event = AuditEvent.record("someone", "thing.do")

    assert client.get(reverse("admin:accounts_auditevent_add")).status_code == 403
    change = client.post(
        reverse("admin:accounts_auditevent_change", args=[event.pk]), {"action": "x"}
    )
    delete = client.post(
        reverse("admin:accounts_auditevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert change.status_code in (302, 403)
    assert delete.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "thing.do"
    assert client.get(reverse("admin:accounts_auditevent_changelist")).status_code == 200


def test_admin_browses_and_filters_the_audit_log(client, user_with_role):
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    AuditEvent.record("alice", "alert.acknowledge", "CPU high on web-1", note="looking")
    AuditEvent.record("bob", "silence.create", "web-1 maintenance")

    response = client.get(reverse("accounts:audit"), {"action": "alert.acknowledge"})

    html = response.content.decode()
    assert response.status_code == 200
    assert "CPU high on web-1" in html and "note=looking" in html
    assert "web-1 maintenance" not in html
    by_actor = client.get(
        reverse("accounts:audit"), {"actor": "bob"}, headers={"HX-Request": "true"}
    )
    assert "web-1 maintenance" in by_actor.content.decode()
    assert "CPU high" not in by_actor.content.decode()
    assert by_actor.content.decode().lstrip().startswith('<div id="audit-table"')


def test_operators_cannot_read_the_audit_log(client, user_with_role):
    client.force_login(user_with_role(Role.OPERATOR))

    assert client.get(reverse("accounts:audit")).status_code == 403
