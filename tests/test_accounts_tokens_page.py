from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from ingestion.models import IngestToken

pytestmark = pytest.mark.django_db

TOKENS_URL = reverse("ingestion:tokens")


@pytest.fixture
def boss(client, user_with_role, confirm_password):
    user = user_with_role(Role.ADMIN, "boss")
    client.force_login(user)
    confirm_password(client)
    return user


def test_admin_sees_tokens_without_their_values(client, boss):
    token, plain = IngestToken.issue("web-1 agent")

    response = client.get(TOKENS_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "web-1 agent" in html and token.prefix in html
    assert plain not in html


def test_created_token_is_shown_once_and_works(client, boss):
    response = client.post(TOKENS_URL, {"name": "db-1 agent", "scopes": ["ingest", "read"]})

    assert response.status_code == 201
    plain = response.context["plain"]
    assert plain in response.content.decode()
    token = IngestToken.objects.get(name="db-1 agent")
    assert (token.created_by, token.scopes) == (boss, ["ingest", "read"])
    assert IngestToken.authenticate(plain) == token
    assert plain not in client.get(TOKENS_URL).content.decode()
    assert AuditEvent.objects.filter(
        action="token.create", actor=boss, target_id=str(token.pk)
    ).exists()


def test_a_token_without_a_name_is_refused(client, boss):
    response = client.post(TOKENS_URL, {"name": "", "scopes": ["ingest"]})

    assert response.status_code == 400
    assert not IngestToken.objects.exists()


def test_revoking_over_htmx_answers_the_row_and_the_token_stops_working(client, boss):
    token, plain = IngestToken.issue("web-1 agent")

    response = client.post(
        reverse("ingestion:token_revoke", args=[token.pk]), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="token-{token.pk}">') and "revoked" in html
    assert IngestToken.authenticate(plain) is None
    assert AuditEvent.objects.filter(action="token.revoke", actor=boss).count() == 1


def test_revoke_needs_a_post(client, boss):
    token, _ = IngestToken.issue("web-1 agent")

    assert client.get(reverse("ingestion:token_revoke", args=[token.pk])).status_code == 405


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_non_admins_can_neither_list_create_nor_revoke(client, user_with_role, role):
    client.force_login(user_with_role(role))
    token, plain = IngestToken.issue("web-1 agent")

    assert client.get(TOKENS_URL).status_code == 403
    assert client.post(TOKENS_URL, {"name": "sneaky", "scopes": ["manage"]}).status_code == 403
    assert client.post(reverse("ingestion:token_revoke", args=[token.pk])).status_code == 403
    assert list(IngestToken.objects.values_list("name", flat=True)) == ["web-1 agent"]
    assert IngestToken.authenticate(plain) == token


def test_a_token_is_created_with_its_scopes_agent_ids_and_expiry_which_the_list_shows(client, boss):
    response = client.post(
        TOKENS_URL,
        {
            "name": "web fleet",
            "scopes": ["ingest"],
            "agent_patterns": "web-*, db-1",
            "expires_at": "2099-01-01T00:00",
        },
    )

    assert response.status_code == 201
    token = IngestToken.objects.get(name="web fleet")
    assert token.scopes == ["ingest"]
    assert token.agent_patterns == ["web-*", "db-1"]
    assert token.expires_at.year == 2099
    html = client.get(TOKENS_URL).content.decode()
    assert "web-*, db-1" in html and ">ingest<" in html


def test_a_token_without_scopes_or_expiring_in_the_past_is_refused(client, boss):
    assert client.post(TOKENS_URL, {"name": "none"}).status_code == 400
    expired = {"name": "old", "scopes": ["read"], "expires_at": "2000-01-01T00:00"}
    assert client.post(TOKENS_URL, expired).status_code == 400
    assert not IngestToken.objects.exists()


def test_an_expired_token_stops_working_and_is_listed_as_expired(client, boss):
    token, plain = IngestToken.issue("short-lived")
    IngestToken.objects.filter(pk=token.pk).update(expires_at=timezone.now())

    assert IngestToken.authenticate(plain) is None
    assert "expired" in client.get(TOKENS_URL).content.decode()


def test_the_list_shows_when_and_from_where_a_token_was_last_used(client, boss):
    _, plain = IngestToken.issue("web-1 agent")

    client.get("/api/v1/instances", headers={"Authorization": f"Bearer {plain}"})

    token = IngestToken.objects.get(name="web-1 agent")
    assert token.last_used is not None and token.last_used_address == "127.0.0.1"
    assert "from 127.0.0.1" in client.get(TOKENS_URL).content.decode()


def test_the_token_command_sets_scopes_agent_ids_and_expiry():
    out = StringIO()

    call_command(
        "create_ingest_token", "--name", "ci", "--scope", "read", "--scope", "manage",
        "--agent-id", "web-*", "--expires-in-days", "30", stdout=out,
    )  # fmt: skip

    token = IngestToken.objects.get(name="ci")
    assert token.scopes == ["read", "manage"]
    assert token.agent_patterns == ["web-*"]
    assert timezone.now() + timedelta(days=29) < token.expires_at
    assert IngestToken.authenticate(out.getvalue().splitlines()[-1]) == token
    assert "(read, manage)" in out.getvalue()


def test_the_token_command_defaults_to_ingest_and_read():
    out = StringIO()

    call_command("create_ingest_token", "--name", "agent", stdout=out)

    assert IngestToken.objects.get(name="agent").scopes == ["ingest", "read"]
