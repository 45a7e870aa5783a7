import re
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("account_login")
PASSWORD = "correct horse battery staple"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user(
        "alice", email="alice@example.com", password=PASSWORD
    )


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == f"{LOGIN_URL}?next=/"


def test_admin_needs_a_login(client):
    response = client.get("/admin/")

    assert response.status_code == 302
    assert "login" in response["Location"]
    assert "next=/admin/" in response["Location"]


def test_login_page_renders_the_form(client):
    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="login"' in html
    assert 'name="password"' in html
    assert "csrfmiddlewaretoken" in html


@pytest.mark.parametrize("login", ["alice", "alice@example.com"])
def test_user_logs_in_with_username_or_email_and_sees_the_overview(client, alice, login):
    client.get(LOGIN_URL)  # the form sets the CSRF cookie, as a browser would get it

    response = client.post(LOGIN_URL, {"login": login, "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == "/"
    assert response.status_code == 200
    assert "Overview" in response.content.decode()
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_wrong_password_stays_on_the_login_page_with_an_error(client, alice):
    response = client.post(LOGIN_URL, {"login": "alice", "password": "not it"})

    assert response.status_code == 200
    assert response.wsgi_request.path == LOGIN_URL
    assert response.context["form"].errors
    assert "not correct" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_openapi_schema_is_served_without_a_session(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert "/api/v1/ingest" in response.json()["paths"]


def test_api_docs_render_from_local_assets_only(client):
    redirect = client.get("/api/docs")
    assert redirect.status_code == 302

    response = client.get(redirect["Location"])

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)""", html)
    assert any("swagger-ui" in asset for asset in assets)
    assert [asset for asset in assets if re.match(r"(https?:)?//", asset)] == []


@pytest.mark.django_db(transaction=True)
def test_created_ingest_token_is_printed_last_and_authenticates(client):
    out = StringIO()
    call_command("create_ingest_token", "--name", "x", stdout=out, stderr=StringIO())
    token = out.getvalue().strip().splitlines()[-1]

    response = client.post(
        "/api/v1/ingest",
        {"instance": {"agent_id": "web-1"}, "samples": [{"name": "up", "value": 1}]},
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 202, response.content
    assert response.json()["accepted"] == 1


def test_a_session_does_not_replace_the_bearer_token(client, alice):
    client.force_login(alice)

    response = client.post(
        "/api/v1/ingest",
        {"instance": {"agent_id": "web-1"}, "samples": [{"name": "up", "value": 1}]},
        content_type="application/json",
    )

    assert response.status_code == 401


@pytest.mark.django_db
def test_admin_login_goes_through_the_vigil_login_page(client):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
