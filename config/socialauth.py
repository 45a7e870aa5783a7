"""Social and OpenID Connect login providers, configured from the environment.

Each provider is enabled by its client id and secret; nothing is stored in the database.
GitHub, Google and GitLab have fixed variables; any number of OpenID Connect providers
(Keycloak, Authentik, Okta …) are numbered: ``OIDC_1_CLIENT_ID``, ``OIDC_2_CLIENT_ID`` …
"""

import re
from collections.abc import Mapping

OIDC_VARIABLE = re.compile(r"^OIDC_(\d+)_CLIENT_ID$")


def providers_from_env(environ: Mapping[str, str]) -> dict:
    """The value of allauth's ``SOCIALACCOUNT_PROVIDERS`` for what ``environ`` configures."""
    providers = {}
    if app := _app(environ, "GITHUB"):
        scope = ["read:user", "user:email"]
        if environ.get("GITHUB_ALLOWED_ORGANIZATIONS", "").strip():
            scope.append("read:org")  # to see the organisations sign-ups are limited to
        providers["github"] = {"APPS": [app], "SCOPE": scope}
    if app := _app(environ, "GOOGLE"):
        providers["google"] = {"APPS": [app], "SCOPE": ["openid", "profile", "email"]}
    if app := _app(environ, "GITLAB"):
        gitlab_url = environ.get("GITLAB_URL", "").rstrip("/") or "https://gitlab.com"
        app["settings"] = {"gitlab_url": gitlab_url}
        providers["gitlab"] = {"APPS": [app], "SCOPE": ["read_user"]}
    oidc_apps = []
    for number in sorted(int(m[1]) for key in environ if (m := OIDC_VARIABLE.match(key))):
        prefix = f"OIDC_{number}"
        if not (app := _app(environ, prefix)):
            continue
        server_url = environ.get(f"{prefix}_SERVER_URL", "").strip()
        if not server_url:
            raise ValueError(f"{prefix}_SERVER_URL is required with {prefix}_CLIENT_ID")
        provider_id = environ.get(f"{prefix}_ID", "").strip() or f"oidc{number}"
        if not re.fullmatch(r"[a-z0-9_-]+", provider_id):
            raise ValueError(f"{prefix}_ID may hold only a-z, 0-9, - and _: {provider_id!r}")
        app.update(
            provider_id=provider_id,
            name=environ.get(f"{prefix}_NAME", "").strip() or provider_id,
            settings={"server_url": server_url},
        )
        oidc_apps.append(app)
    if oidc_apps:
        providers["openid_connect"] = {"APPS": oidc_apps}
    return providers


def _app(environ: Mapping[str, str], prefix: str) -> dict | None:
    client_id = environ.get(f"{prefix}_CLIENT_ID", "").strip()
    if not client_id:
        return None
    return {"client_id": client_id, "secret": environ.get(f"{prefix}_CLIENT_SECRET", "").strip()}
