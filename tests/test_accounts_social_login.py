import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialAccount, SocialLogin, SocialToken
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.adapters import SocialAccountAdapter
from accounts.models import AuditEvent
from accounts.permissions import Role, user_role
from config.socialauth import providers_from_env
from tests.oidc_provider import OidcProvider

pytestmark = pytest.mark.django_db

LOGIN_URL = reverse("account_login")
CALLBACK = "http://testserver/accounts/oidc/corp/login/callback/"
ERIN = {
    "erin": {
        "preferred_username": "erin",
        "email": "erin@corp.example",
        "email_verified": True,
        "name": "Erin Example",
        "given_name": "Erin",
        "family_name": "Example",
    }
}


@pytest.fixture
def corp_sso(settings, monkeypatch):
    settings.SOCIALACCOUNT_ALLOW_SIGNUPS = True
    with OidcProvider("vigil", "s3cret-value", [CALLBACK], ERIN) as provider:
        # Vigil's server-side calls to the provider trust its certificate, as they would a CA's.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", provider.ca_file)
        settings.SOCIALACCOUNT_PROVIDERS = providers_from_env(
            {
                "OIDC_1_ID": "corp",
                "OIDC_1_NAME": "Corp SSO",
                "OIDC_1_CLIENT_ID": "vigil",
                "OIDC_1_CLIENT_SECRET": "s3cret-value",
                "OIDC_1_SERVER_URL": provider.issuer,
            }
        )
        yield provider


def login_buttons(client) -> dict[str, str]:
    """The provider login buttons on Vigil's login page: name → form action."""
    html = client.get(LOGIN_URL).content.decode()
    forms = re.findall(
        r'<form method="post" action="([^"]+)" class="provider-login">.*?data-provider="([^"]+)"',
        html,
        re.S,
    )
    return {name: action.replace("&amp;", "&") for action, name in forms}


def test_a_person_logs_in_through_openid_connect_and_lands_as_a_viewer(client, corp_sso):
    start = client.post(login_buttons(client)["Corp SSO"])
    assert start.status_code == 302
    authorize = start["Location"]
    assert authorize.startswith(f"{corp_sso.issuer}/authorize?")

    at_provider = requests.get(authorize, allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302, at_provider.text
    callback = at_provider.headers["Location"]
    assert callback.startswith(CALLBACK)

    landed = client.get(callback.removeprefix("http://testserver"), follow=True)

    assert landed.status_code == 200
    assert landed.redirect_chain[-1][0] == "/"
    erin = get_user_model().objects.get(username="erin")
    assert (erin.email, erin.first_name) == ("erin@corp.example", "Erin")
    assert client.session["_auth_user_id"] == str(erin.pk)
    assert user_role(erin) == Role.VIEWER
    assert AuditEvent.objects.filter(action="login", actor=erin).exists()
    assert {"/.well-known/openid-configuration", "/authorize", "/token", "/userinfo"} <= set(
        corp_sso.requests
    )


def sign_in_through(client, provider):
    """Press the provider's button, log in there, and follow its callback back into Vigil."""
    start = client.post(login_buttons(client)["Corp SSO"])
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=10)
    callback = at_provider.headers["Location"]
    return client.get(callback.removeprefix("http://testserver"), follow=True)


def test_by_default_a_newcomer_from_a_provider_gets_no_account(client, corp_sso, settings):
    settings.SOCIALACCOUNT_ALLOW_SIGNUPS = False

    landed = sign_in_through(client, corp_sso)

    assert "Sign Up Closed" in landed.text
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(username="erin").exists()


def test_sign_ups_are_limited_to_the_allowed_email_domains(client, corp_sso, settings):
    settings.SOCIALACCOUNT_ALLOWED_EMAIL_DOMAINS = ["other.example"]
    sign_in_through(client, corp_sso)
    assert not get_user_model().objects.filter(username="erin").exists()

    settings.SOCIALACCOUNT_ALLOWED_EMAIL_DOMAINS = ["corp.example"]
    sign_in_through(client, corp_sso)
    assert client.session["_auth_user_id"] == str(get_user_model().objects.get(username="erin").pk)


def test_the_provider_publishes_its_signing_keys(corp_sso):
    keys = requests.get(f"{corp_sso.issuer}/jwks", timeout=10).json()["keys"]

    assert [(key["kty"], key["kid"]) for key in keys] == [("RSA", "vigil-test")]


def test_a_forged_callback_does_not_log_in(client, corp_sso):
    client.post(login_buttons(client)["Corp SSO"])

    response = client.get(
        "/accounts/oidc/corp/login/callback/", {"code": "made-up", "state": "made-up"}
    )

    assert response.status_code == 401
    assert 'class="topbar"' in response.content.decode()  # Vigil's page, not a bare one
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(username="erin").exists()


PUBLIC_PROVIDERS = {
    "GITHUB_CLIENT_ID": "gh-client",
    "GITHUB_CLIENT_SECRET": "gh-secret",
    "GOOGLE_CLIENT_ID": "google-client.apps.googleusercontent.com",
    "GOOGLE_CLIENT_SECRET": "google-secret",
    "GITLAB_CLIENT_ID": "gl-client",
    "GITLAB_CLIENT_SECRET": "gl-secret",
    "GITLAB_URL": "https://gitlab.example.com",
}


@pytest.mark.parametrize(
    ("name", "authorize_url", "client_id", "callback", "scope"),
    [
        (
            "GitHub",
            "https://github.com/login/oauth/authorize",
            "gh-client",
            "http://testserver/accounts/github/login/callback/",
            "read:user user:email",
        ),
        (
            "Google",
            "https://accounts.google.com/o/oauth2/v2/auth",
            "google-client.apps.googleusercontent.com",
            "http://testserver/accounts/google/login/callback/",
            "openid profile email",
        ),
        (
            "GitLab",
            "https://gitlab.example.com/oauth/authorize",
            "gl-client",
            "http://testserver/accounts/gitlab/login/callback/",
            "read_user",
        ),
    ],
)
def test_public_providers_configured_from_env_get_a_button_that_goes_to_their_authorize_page(
    client, settings, name, authorize_url, client_id, callback, scope
):
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env(PUBLIC_PROVIDERS)

    buttons = login_buttons(client)
    assert set(buttons) == {"GitHub", "Google", "GitLab"}
    response = client.post(buttons[name])

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert f"{location.scheme}://{location.netloc}{location.path}" == authorize_url
    assert (query["client_id"], query["redirect_uri"], query["response_type"]) == (
        client_id,
        callback,
        "code",
    )
    assert set(query["scope"].split()) == set(scope.split())
    assert query["state"]


def test_no_provider_configured_means_no_buttons(client, settings):
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env({})

    assert login_buttons(client) == {}


def test_oidc_providers_are_numbered_and_need_a_server_url():
    providers = providers_from_env(
        {
            "OIDC_1_CLIENT_ID": "a",
            "OIDC_1_SERVER_URL": "https://kc.example.com/realms/ops",
            "OIDC_2_ID": "authentik",
            "OIDC_2_NAME": "Authentik",
            "OIDC_2_CLIENT_ID": "b",
            "OIDC_2_CLIENT_SECRET": "s",
            "OIDC_2_SERVER_URL": "https://auth.example.com/application/o/vigil/",
        }
    )

    apps = providers["openid_connect"]["APPS"]
    assert [(app["provider_id"], app["name"], app["client_id"]) for app in apps] == [
        ("oidc1", "oidc1", "a"),
        ("authentik", "Authentik", "b"),
    ]
    with pytest.raises(ValueError, match="OIDC_3_SERVER_URL"):
        providers_from_env({"OIDC_3_CLIENT_ID": "c"})


class FakeGitHubApi:
    """GitHub's REST API on 127.0.0.1, as GitHub Enterprise serves it (under /api/v3): each
    access token belongs to someone in the given organisations."""

    def __init__(self, organizations_by_token: dict[str, list[str]]):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                token = self.headers.get("Authorization", "").removeprefix("token ")
                if not self.path.startswith("/api/v3/user/orgs") or token not in (
                    organizations_by_token
                ):
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps([{"login": name} for name in organizations_by_token[token]])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def github_login(token: str) -> SocialLogin:
    """Someone back from GitHub's authorize page with ``token``, not yet a Vigil user."""
    account = SocialAccount(provider="github", uid=token)
    return SocialLogin(account=account, token=SocialToken(account=account, token=token))


def test_github_sign_ups_are_limited_to_members_of_the_allowed_organizations(settings):
    github = FakeGitHubApi({"member": ["Other", "Acme"], "outsider": ["other"]})
    settings.SOCIALACCOUNT_ALLOW_SIGNUPS = True
    settings.GITHUB_ALLOWED_ORGANIZATIONS = ["acme"]
    settings.SOCIALACCOUNT_PROVIDERS = providers_from_env(
        {
            "GITHUB_CLIENT_ID": "gh",
            "GITHUB_CLIENT_SECRET": "s",
            "GITHUB_ALLOWED_ORGANIZATIONS": "acme",
        }
    )
    settings.SOCIALACCOUNT_PROVIDERS["github"]["GITHUB_URL"] = github.url
    adapter = SocialAccountAdapter()
    try:
        answers = {
            token: adapter.is_open_for_signup(None, github_login(token))
            for token in ("member", "outsider", "revoked")
        }
    finally:
        github.close()

    assert answers == {"member": True, "outsider": False, "revoked": False}
    assert "read:org" in settings.SOCIALACCOUNT_PROVIDERS["github"]["SCOPE"]
