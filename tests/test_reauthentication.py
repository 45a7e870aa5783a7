"""A stolen or forgotten session is not enough to mint API tokens, change roles or carry off a
backup: each asks for the password again (allauth's reauthentication, a few minutes' grace)."""

from urllib.parse import quote

import pytest
from django.urls import reverse

from accounts.permissions import Role, user_role
from backups import dumps
from ingestion.models import IngestToken

pytestmark = pytest.mark.django_db

CONFIRM_URL = reverse("account_reauthenticate")


@pytest.fixture
def boss(client, user_with_role):
    """An Admin whose session is a day old: logged in, no password typed since."""
    user = user_with_role(Role.ADMIN, "boss")
    client.force_login(user)
    return user


def test_creating_a_token_asks_for_the_password_first(client, boss, confirm_password):
    tokens = reverse("ingestion:tokens")

    asked = client.post(tokens, {"name": "db-1 agent", "scopes": ["ingest"]})

    assert asked.status_code == 302
    assert asked["Location"] == f"{CONFIRM_URL}?next={quote(tokens, safe='')}"
    assert not IngestToken.objects.exists()
    confirm_password(client)
    assert client.post(tokens, {"name": "db-1 agent", "scopes": ["ingest"]}).status_code == 201


def test_changing_a_role_over_htmx_sends_the_page_to_the_password_first(
    client, boss, user_with_role
):
    olga = user_with_role(Role.VIEWER, "olga")

    response = client.post(
        reverse("accounts:user_role", args=[olga.pk]),
        {"role": "admin"},
        headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/accounts/users/"},
    )

    assert response["HX-Redirect"] == f"{CONFIRM_URL}?next=%2Faccounts%2Fusers%2F"
    assert user_role(olga) == Role.VIEWER


def test_a_role_given_in_django_admin_asks_for_the_password_first(client, boss, user_with_role):
    olga = user_with_role(Role.VIEWER, "olga")

    response = client.post(
        reverse("admin:auth_user_change", args=[olga.pk]),
        {"username": "olga", "is_active": "on", "is_staff": "on"},
    )

    assert response.status_code == 302
    assert response["Location"].startswith(CONFIRM_URL)
    olga.refresh_from_db()
    assert not olga.is_staff


@pytest.mark.django_db(transaction=True)  # pg_dump sees committed rows only
def test_downloading_a_backup_asks_for_the_password_first(
    client, boss, confirm_password, settings, tmp_path
):
    settings.BACKUP_DIR = tmp_path / "backups"
    backup = dumps.run_backup()

    asked = client.get(f"/backups/{backup.pk}/download")

    assert asked.status_code == 302
    assert asked["Location"].startswith(CONFIRM_URL)
    confirm_password(client)
    assert client.get(f"/backups/{backup.pk}/download").status_code == 200
