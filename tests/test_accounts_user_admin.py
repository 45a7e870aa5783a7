"""An Admin adds, invites, deactivates and resets the two-factor login of teammates from the
Users page; each is in the audit log as what it is."""

import re

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role, user_role
from tests.test_accounts_mfa import PASSWORD, olga_with_totp  # noqa: F401

pytestmark = pytest.mark.django_db

USERS_URL = reverse("accounts:users")
NEW_PASSWORD = "a long new passphrase 42"


@pytest.fixture
def boss(user_with_role):
    return user_with_role(Role.ADMIN, "boss")


@pytest.fixture
def admin(boss) -> Client:
    client = Client()
    client.force_login(boss)
    return client


def add_user(admin: Client, **fields):
    return admin.post(USERS_URL, {"username": "", "email": "", "role": "", **fields})


def test_an_added_user_logs_in_with_the_password_given_and_holds_the_role(admin, django_user_model):
    response = add_user(admin, username="olga", role="operator", password=NEW_PASSWORD)

    assert response.status_code == 302
    olga = django_user_model.objects.get(username="olga")
    assert user_role(olga) == Role.OPERATOR
    assert Client().login(username="olga", password=NEW_PASSWORD)
    event = AuditEvent.objects.exclude(action="login").get(target_id=str(olga.pk))
    assert (event.action, event.actor_label) == ("user.create", "boss")
    assert event.details == {"role": "operator", "invited": False}
    assert mail.outbox == []


def test_an_invited_user_gets_a_link_to_choose_a_password_then_logs_in(admin, django_user_model):
    response = add_user(admin, username="olga", email="olga@example.com", role="viewer")

    assert response.status_code == 302
    olga = django_user_model.objects.get(username="olga")
    assert not olga.has_usable_password()
    (invitation,) = mail.outbox
    assert invitation.to == ["olga@example.com"]
    assert "invited to Vigil" in invitation.subject
    assert "Your username is olga" in invitation.body
    link = re.search(r"http://testserver(/accounts/password/reset/key/\S+)", invitation.body)[1]
    guest = Client()
    set_password_page = guest.get(link, follow=True)
    guest.post(
        set_password_page.redirect_chain[-1][0],
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert Client().login(username="olga", password=NEW_PASSWORD)
    assert AuditEvent.objects.get(action="user.create").details == {
        "role": "viewer",
        "invited": True,
    }


def test_the_users_page_lists_an_invited_user_with_a_resend_button(admin):
    add_user(admin, username="olga", email="olga@example.com", role="viewer")

    html = admin.get(USERS_URL).content.decode()

    assert "invited" in html
    assert "Send the link again" in html


def test_an_invitation_needs_an_email_address(admin, django_user_model):
    response = add_user(admin, username="olga", role="viewer")

    assert response.status_code == 400
    assert "Give an email address to invite them, or set a password." in response.text
    assert not django_user_model.objects.filter(username="olga").exists()


def test_a_taken_username_and_a_weak_password_are_refused(admin, django_user_model):
    response = add_user(admin, username="BOSS", password="123")

    assert response.status_code == 400
    assert "A user with this name exists." in response.text
    assert "This password is too short." in response.text
    assert django_user_model.objects.count() == 1


def test_a_deactivated_user_cannot_log_in_and_it_is_audited(admin, user_with_role):
    olga = user_with_role(Role.OPERATOR, "olga")

    response = admin.post(
        reverse("accounts:user_active", args=[olga.pk]),
        {"active": "false"},
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert "deactivated" in response.text and "Reactivate" in response.text
    olga.refresh_from_db()
    assert not olga.is_active
    assert not Client().login(username="olga", password=PASSWORD)
    event = AuditEvent.objects.get(action="user.deactivate")
    assert (event.actor_label, event.target_id) == ("boss", str(olga.pk))


def test_a_deactivated_users_open_session_ends(admin, user_with_role):
    olga = user_with_role(Role.OPERATOR, "olga")
    session = Client()
    session.post(reverse("account_login"), {"login": "olga", "password": PASSWORD})
    assert session.get("/alerts/").status_code == 200

    admin.post(reverse("accounts:user_active", args=[olga.pk]), {"active": "false"})

    response = session.get("/alerts/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_an_admin_cannot_deactivate_themselves(admin, boss):
    response = admin.post(reverse("accounts:user_active", args=[boss.pk]), {"active": "false"})

    assert response.status_code == 302
    boss.refresh_from_db()
    assert boss.is_active
    assert not AuditEvent.objects.filter(action="user.deactivate").exists()


def test_resetting_two_factor_removes_the_app_and_recovery_codes(
    admin,
    olga_with_totp,  # noqa: F811
):
    olga, _ = olga_with_totp
    assert "Reset 2FA" in admin.get(USERS_URL).text

    response = admin.post(
        reverse("accounts:user_mfa_reset", args=[olga.pk]), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert "Reset 2FA" not in response.text
    assert not Authenticator.objects.filter(user=olga).exists()
    assert Client().login(username="olga", password=PASSWORD)
    event = AuditEvent.objects.get(action="user.mfa_reset")
    assert (event.actor_label, event.details) == ("boss", {"removed": ["recovery_codes", "totp"]})


def test_a_user_made_in_django_admin_is_audited_as_created_by_that_admin(admin, django_user_model):
    response = admin.post(
        reverse("admin:auth_user_add"),
        {"username": "olga", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    olga = django_user_model.objects.get(username="olga")
    events = AuditEvent.objects.filter(target_id=str(olga.pk))
    assert list(events.values_list("actor_label", "action")) == [("boss", "user.create")]


@pytest.mark.parametrize("path", ["accounts:user_active", "accounts:user_mfa_reset"])
def test_operators_cannot_change_other_users(client, user_with_role, path):
    client.force_login(user_with_role(Role.OPERATOR))
    olga = user_with_role(Role.VIEWER, "olga")

    response = client.post(reverse(path, args=[olga.pk]), {"active": "false"})

    assert response.status_code == 403
    olga.refresh_from_db()
    assert olga.is_active


def test_someone_signing_up_is_audited_as_a_signup_with_their_role(client, settings):
    settings.ACCOUNT_ALLOW_SIGNUPS = True

    response = client.post(
        reverse("account_signup"),
        {
            "username": "olga",
            "email": "olga@example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="user.signup")
    assert (event.actor_label, event.details) == ("olga", {"role": "viewer"})
    assert not AuditEvent.objects.filter(action="role.change").exists()


def test_django_admin_has_one_accounts_section_and_the_audit_log(admin):
    html = admin.get(reverse("admin:index")).text

    assert html.count(">Accounts</a>") == 1
    assert ">Audit log</a>" in html
