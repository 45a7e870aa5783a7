import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role, user_role

pytestmark = pytest.mark.django_db

USERS_URL = reverse("accounts:users")


@pytest.fixture
def admin_client(client, user_with_role, confirm_password):
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    confirm_password(client)
    return client


def test_admin_sees_every_user_with_a_role_picker(admin_client, user_with_role):
    user_with_role(Role.OPERATOR, "olga")

    response = admin_client.get(USERS_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "olga" in html
    assert 'aria-label="Role of olga"' in html
    assert '<option value="operator" selected>' in html


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_non_admins_are_refused(client, user_with_role, role):
    client.force_login(user_with_role(role))

    assert client.get(USERS_URL).status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(USERS_URL)

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_changing_a_role_over_htmx_answers_the_updated_row(admin_client, user_with_role):
    olga = user_with_role(Role.VIEWER, "olga")

    response = admin_client.post(
        reverse("accounts:user_role", args=[olga.pk]),
        {"role": "operator"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith(f'<tr id="user-{olga.pk}">')
    assert '<option value="operator" selected>' in response.content.decode()
    assert user_role(olga) == Role.OPERATOR
    event = AuditEvent.objects.get(
        action="role.change", target_id=str(olga.pk), actor__username="boss"
    )
    assert event.details == {"before": "viewer", "after": "operator"}


def test_a_plain_post_redirects_back_to_the_list(admin_client, user_with_role):
    olga = user_with_role(Role.VIEWER, "olga")

    response = admin_client.post(reverse("accounts:user_role", args=[olga.pk]), {"role": ""})

    assert response.status_code == 302
    assert response["Location"] == USERS_URL
    assert user_role(olga) is None


def test_an_admin_cannot_change_their_own_role(client, user_with_role, confirm_password):
    boss = user_with_role(Role.ADMIN, "boss")
    client.force_login(boss)
    confirm_password(client)

    response = client.post(
        reverse("accounts:user_role", args=[boss.pk]),
        {"role": "viewer"},
        headers={"HX-Request": "true"},
    )

    assert "cannot change your own role" in response.content.decode()
    assert user_role(boss) == Role.ADMIN


def test_an_operator_cannot_change_roles(client, user_with_role):
    client.force_login(user_with_role(Role.OPERATOR))
    olga = user_with_role(Role.VIEWER, "olga")

    response = client.post(reverse("accounts:user_role", args=[olga.pk]), {"role": "admin"})

    assert response.status_code == 403
    assert user_role(olga) == Role.VIEWER


def test_role_given_in_django_admin_is_audited_and_makes_staff(admin_client, user_with_role):
    from django.contrib.auth.models import Group

    olga = user_with_role(Role.VIEWER, "olga")
    admin_group = Group.objects.get(name="Admin")

    response = admin_client.post(
        reverse("admin:auth_user_change", args=[olga.pk]),
        {
            "username": "olga",
            "email": "olga@example.com",
            "is_active": "on",
            "groups": [admin_group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    olga.refresh_from_db()
    assert olga.is_staff
    assert user_role(olga) == Role.ADMIN
    assert AuditEvent.objects.filter(
        action="role.change", target_id=str(olga.pk), actor__username="boss", details__after="admin"
    ).exists()


def test_only_admins_see_the_users_tokens_and_audit_links(client, user_with_role):
    client.force_login(user_with_role(Role.OPERATOR, "olga"))
    assert (
        reverse("accounts:users")
        not in client.get(reverse("accounts:audit"), follow=True).content.decode()
    )

    client.force_login(user_with_role(Role.ADMIN, "boss"))
    html = client.get(USERS_URL).content.decode()
    for name in ("accounts:users", "ingestion:tokens", "accounts:audit"):
        assert f'href="{reverse(name)}"' in html
