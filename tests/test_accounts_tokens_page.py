import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role
from ingestion.models import IngestToken

pytestmark = pytest.mark.django_db

TOKENS_URL = reverse("ingestion:tokens")


@pytest.fixture
def boss(client, user_with_role):
    user = user_with_role(Role.ADMIN, "boss")
    client.force_login(user)
    return user


def test_admin_sees_tokens_without_their_values(client, boss):
    token, plain = IngestToken.issue("web-1 agent")

    response = client.get(TOKENS_URL)

    html = response.content.decode()
    assert response.status_code == 200
    assert "web-1 agent" in html and token.prefix in html
    assert plain not in html


def test_created_token_is_shown_once_and_works(client, boss):
    response = client.post(TOKENS_URL, {"name": "db-1 agent", "scope": "write"})

    assert response.status_code == 201
    plain = response.context["plain"]
    assert plain in response.content.decode()
    token = IngestToken.objects.get(name="db-1 agent")
    assert (token.created_by, token.scope) == (boss, "write")
    assert IngestToken.authenticate(plain) == token
    assert plain not in client.get(TOKENS_URL).content.decode()
    assert AuditEvent.objects.filter(
        action="token.create", actor=boss, target_id=str(token.pk)
    ).exists()


def test_a_token_without_a_name_is_refused(client, boss):
    response = client.post(TOKENS_URL, {"name": "", "scope": "write"})

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
    assert client.post(TOKENS_URL, {"name": "sneaky", "scope": "write"}).status_code == 403
    assert client.post(reverse("ingestion:token_revoke", args=[token.pk])).status_code == 403
    assert list(IngestToken.objects.values_list("name", flat=True)) == ["web-1 agent"]
    assert IngestToken.authenticate(plain) == token
