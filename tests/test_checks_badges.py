"""Public SVG badges of a check: its name and state, or its 24-hour uptime, without login and
without anything else about it."""

import datetime

import pytest
from django.utils import timezone

from checks.models import Check
from checks.probes import ProbeResult

pytestmark = pytest.mark.django_db


def site() -> Check:
    check = Check(name="Shop", kind=Check.Kind.HTTP, url="https://shop.internal.example/health")
    check.save()
    return check


def probed(check: Check, *outcomes: bool) -> None:
    start = timezone.now() - datetime.timedelta(minutes=len(outcomes))
    for minutes, success in enumerate(outcomes):
        reason = "" if success else "HTTP 503, expected 200-299"
        Check.record_probes(
            [
                (
                    check.pk,
                    start + datetime.timedelta(minutes=minutes),
                    ProbeResult(success, 0.1, reason),
                )
            ]
        )


def test_the_state_badge_shows_name_and_state_only(client):
    check = site()
    probed(check, False, False)

    response = client.get(f"/badge/{check.badge_key}.svg")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    svg = response.content.decode()
    assert "<title>Shop: down</title>" in svg
    assert 'fill="#d73a2f"' in svg
    assert "shop.internal.example" not in svg
    assert "503" not in svg


def test_the_uptime_badge_shows_the_share_of_successful_probes_in_24_hours(client):
    check = site()
    probed(check, True, True, True, False)

    svg = client.get(f"/badge/{check.badge_key}/uptime.svg").content.decode()

    assert "<title>Shop 24h: 75.00%</title>" in svg


def test_a_check_without_probes_has_no_uptime_yet(client):
    check = site()

    svg = client.get(f"/badge/{check.badge_key}/uptime.svg").content.decode()

    assert "<title>Shop 24h: no data</title>" in svg


def test_badges_are_keyed_by_their_own_key_not_the_check_id(client):
    check = site()

    assert client.get(f"/badge/{check.pk}.svg").status_code == 404
    assert client.get("/badge/no-such-key.svg").status_code == 404
    assert client.post(f"/badge/{check.badge_key}.svg").status_code == 405
