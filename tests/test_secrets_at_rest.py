"""What someone holding a copy of the database (a dump, a backup, a replica) learns of the
secrets Vigil keeps: nothing they could use."""

import json
import time

import pytest
from allauth.mfa.models import Authenticator
from django.db import connection

from alerts.models import NotificationChannel
from tests.test_accounts_mfa import MFA_URL, PASSWORD, log_in_with_password, olga_with_totp  # noqa: F401

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T0001/B0001/abcdefghijklmnopqrstuvwx"


def stored_row(sql: str, *params) -> str:
    """A row as the database holds it, every column as text."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return " ".join(str(value) for value in cursor.fetchone())


def test_a_channels_webhook_url_secret_and_options_are_not_in_the_database():
    channel = NotificationChannel.objects.create(
        name="ops",
        kind="webhook",
        target=SLACK_URL,
        secret="hmac-key-0123456789",
        config={"token": "bot-token-0123456789"},
    )

    row = stored_row(
        "SELECT target, secret, config FROM alerts_notificationchannel WHERE id = %s", channel.pk
    )
    for secret in ("hooks.slack.com", "abcdefghijklmnopqrstuvwx", "hmac-key", "bot-token"):
        assert secret not in row
    stored = NotificationChannel.objects.get()
    assert (stored.target, stored.secret, stored.config) == (
        SLACK_URL,
        "hmac-key-0123456789",
        {"token": "bot-token-0123456789"},
    )


def test_a_channel_stored_before_encryption_is_still_read_and_encrypted_when_saved():
    old = NotificationChannel.objects.create(name="old", kind="slack", target="placeholder")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE alerts_notificationchannel SET target = %s WHERE id = %s", [SLACK_URL, old.pk]
        )

    channel = NotificationChannel.objects.get(name="old")
    assert channel.target == SLACK_URL
    channel.save()

    assert "hooks.slack.com" not in stored_row(
        "SELECT target FROM alerts_notificationchannel WHERE name = 'old'"
    )


def test_a_two_factor_secret_is_not_in_the_database(client, olga_with_totp, settings):  # noqa: F811
    settings.MFA_TOTP_TOLERANCE = 1  # the enrolment used this step's code
    user, totp = olga_with_totp

    totp_row = Authenticator.objects.get(user=user, type="totp")
    codes_row = Authenticator.objects.get(user=user, type="recovery_codes")
    assert totp.secret not in json.dumps(totp_row.data)
    assert totp_row.data["secret"].startswith("enc:v1:")
    assert codes_row.data["seed"].startswith("enc:v1:")
    # ... and the authenticator app still logs in.
    log_in_with_password(client, "olga")
    response = client.post(MFA_URL, {"code": totp.at(time.time() + totp.interval)})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)
