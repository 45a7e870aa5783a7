import pytest
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("account_login")
PASSWORD = "correct horse battery staple"


def test_pages_carry_a_strict_content_security_policy(client):
    response = client.get(LOGIN_URL)

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert policy["frame-ancestors"] == "'none'"


def test_pages_carry_the_usual_security_headers(client):
    response = client.get(LOGIN_URL)

    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_repeated_failed_logins_lock_the_account_for_a_while(client, user_with_role):
    user_with_role(Role.VIEWER, "vera")
    for _ in range(5):
        client.post(LOGIN_URL, {"login": "vera", "password": "guess"})

    response = client.post(LOGIN_URL, {"login": "vera", "password": PASSWORD})

    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="login.failed", actor_label="vera").count() == 5


def test_login_forms_need_a_csrf_token(user_with_role):
    from django.test import Client

    user_with_role(Role.VIEWER, "vera")
    strict = Client(enforce_csrf_checks=True)

    response = strict.post(LOGIN_URL, {"login": "vera", "password": PASSWORD})

    assert response.status_code == 403
    assert "_auth_user_id" not in strict.session
