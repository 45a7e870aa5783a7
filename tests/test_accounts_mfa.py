import time

import pyotp
import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from accounts.permissions import Role

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("account_login")
MFA_URL = reverse("mfa_authenticate")
ACTIVATE_URL = reverse("mfa_activate_totp")
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def one_step_of_clock_tolerance(settings):
    # A code may not be used twice, so logging in right after enrolling uses the next step's.
    settings.MFA_TOTP_TOLERANCE = 1


def log_in_with_password(client, username):
    return client.post(LOGIN_URL, {"login": username, "password": PASSWORD})


def enrol_totp(client) -> pyotp.TOTP:
    """Set up an authenticator app the way a person does: read the secret, type a code."""
    # Changing sign-in methods asks for the password again first.
    assert client.get(ACTIVATE_URL)["Location"].startswith(reverse("account_reauthenticate"))
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    page = client.get(ACTIVATE_URL)
    assert page.status_code == 200
    totp = pyotp.TOTP(page.context["form"].secret)
    response = client.post(ACTIVATE_URL, {"code": totp.now()})
    assert response.status_code == 302, response.content.decode()[:3000]
    return totp


@pytest.fixture
def olga_with_totp(client, user_with_role):
    user = user_with_role(Role.OPERATOR, "olga")
    log_in_with_password(client, "olga")
    totp = enrol_totp(client)
    client.post(reverse("account_logout"))
    return user, totp


def test_enrolling_stores_a_totp_device_and_recovery_codes(client, olga_with_totp):
    user, _ = olga_with_totp

    assert set(Authenticator.objects.filter(user=user).values_list("type", flat=True)) == {
        "totp",
        "recovery_codes",
    }


def test_the_password_alone_does_not_log_in_after_enrolling(client, olga_with_totp):
    response = log_in_with_password(client, "olga")

    assert response.status_code == 302
    assert response["Location"] == MFA_URL
    assert "_auth_user_id" not in client.session
    assert client.get("/")["Location"].startswith(LOGIN_URL)


def test_a_wrong_code_does_not_log_in(client, olga_with_totp):
    _, totp = olga_with_totp
    log_in_with_password(client, "olga")
    wrong = f"{(int(totp.now()) + 1) % 1_000_000:06d}"

    response = client.post(MFA_URL, {"code": wrong})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_a_valid_code_logs_in(client, olga_with_totp):
    user, totp = olga_with_totp
    log_in_with_password(client, "olga")

    response = client.post(MFA_URL, {"code": totp.at(time.time() + totp.interval)})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_mfa_pages_are_vigil_pages(client, user_with_role):
    user_with_role(Role.VIEWER, "vera")
    log_in_with_password(client, "vera")

    for url in (reverse("mfa_index"), reverse("account_reauthenticate")):
        html = client.get(url).content.decode()
        assert 'class="topbar"' in html and "· Vigil</title>" in html, url


def test_admins_must_enrol_first_when_required(client, user_with_role, settings):
    settings.MFA_REQUIRED_FOR_ADMINS = True
    user_with_role(Role.ADMIN, "boss")
    log_in_with_password(client, "boss")

    assert client.get("/")["Location"] == ACTIVATE_URL
    assert client.get(reverse("accounts:users"))["Location"] == ACTIVATE_URL
    enrol_totp(client)
    assert client.get("/").status_code == 200


def test_other_roles_are_not_asked_to_enrol(client, user_with_role, settings):
    settings.MFA_REQUIRED_FOR_ADMINS = True
    user_with_role(Role.OPERATOR, "olga")
    log_in_with_password(client, "olga")

    assert client.get("/").status_code == 200
