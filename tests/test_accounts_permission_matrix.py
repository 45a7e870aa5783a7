"""Who may open each accounts page and endpoint: anonymous, no role, Viewer, Operator, Admin."""

import pytest
from django.urls import reverse

from accounts.permissions import Role
from ingestion.models import IngestToken

pytestmark = pytest.mark.django_db

LOGIN = 302  # sent to the login page
ANYONE_BUT_ADMIN_REFUSED = {None: LOGIN, "none": 403, Role.VIEWER: 403, Role.OPERATOR: 403}


def urls(target_user, token):
    return [
        ("get", reverse("accounts:users"), {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}),
        (
            "post",
            reverse("accounts:user_role", args=[target_user.pk]),
            {"role": "viewer"},
            {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 302},
        ),
        ("get", reverse("accounts:audit"), {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}),
        ("get", reverse("ingestion:tokens"), {}, {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 200}),
        (
            "post",
            reverse("ingestion:tokens"),
            {"name": "x", "scope": "read"},
            {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 201},
        ),
        (
            "post",
            reverse("ingestion:token_revoke", args=[token.pk]),
            {},
            {**ANYONE_BUT_ADMIN_REFUSED, Role.ADMIN: 302},
        ),
        (
            "get",
            reverse("admin:index"),
            {},
            {None: LOGIN, "none": LOGIN, Role.VIEWER: LOGIN, Role.OPERATOR: LOGIN, Role.ADMIN: 200},
        ),
        (
            "get",
            reverse("admin:ingestion_ingesttoken_changelist"),
            {},
            {None: LOGIN, "none": LOGIN, Role.VIEWER: LOGIN, Role.OPERATOR: LOGIN, Role.ADMIN: 200},
        ),
        (
            "get",
            reverse("admin:accounts_auditevent_changelist"),
            {},
            {None: LOGIN, "none": LOGIN, Role.VIEWER: LOGIN, Role.OPERATOR: LOGIN, Role.ADMIN: 200},
        ),
    ]


@pytest.mark.parametrize("role", [None, "none", Role.VIEWER, Role.OPERATOR, Role.ADMIN])
def test_each_role_gets_exactly_the_expected_status(client, user_with_role, role):
    target_user = user_with_role(Role.VIEWER, "target")
    token, _ = IngestToken.issue("agent")
    if role is not None:
        client.force_login(user_with_role(None if role == "none" else role, "me"))

    statuses = {
        (method, url): getattr(client, method)(url, data).status_code
        for method, url, data, _ in urls(target_user, token)
    }

    expected = {
        (method, url): by_role[role] for method, url, _, by_role in urls(target_user, token)
    }
    assert statuses == expected
