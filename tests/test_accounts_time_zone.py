"""The time zone times are shown in: the profile's setting, else the browser's (the cookie
theme.js keeps), else UTC; page timestamps, the zone charts.js converts chart times to, and the
custom range's From and To all follow it."""

from datetime import UTC, datetime

import pytest

from accounts.models import Profile
from accounts.permissions import Role
from dashboard.models import Dashboard
from tests.test_dashboard_boards import board_with

pytestmark = pytest.mark.django_db

TOKYO = "Asia/Tokyo"
ZONE_META = '<meta name="vigil-time-zone" content="{}">'


@pytest.fixture
def viewer(client, user_with_role):
    user = user_with_role(Role.VIEWER, "viewer")
    client.force_login(user)
    client.user = user
    return client


def test_the_profile_page_saves_a_time_zone(viewer):
    response = viewer.post("/accounts/profile/", {"time_zone": TOKYO})

    assert response.status_code == 302
    assert Profile.objects.get(user=viewer.user).time_zone == TOKYO
    assert ZONE_META.format(TOKYO) in viewer.get("/accounts/profile/").text


def test_a_name_that_is_no_time_zone_is_refused(viewer):
    viewer.post("/accounts/profile/", {"time_zone": "Mars/Olympus"})

    assert not Profile.objects.filter(user=viewer.user).exclude(time_zone="").exists()


def test_without_a_profile_setting_the_browser_s_zone_is_used(viewer):
    viewer.cookies["vigil_tz"] = "America/New_York"

    assert ZONE_META.format("America/New_York") in viewer.get("/dashboards/").text


def test_an_unknown_browser_zone_falls_back_to_utc(viewer):
    viewer.cookies["vigil_tz"] = "Nowhere/Land"

    assert ZONE_META.format("UTC") in viewer.get("/dashboards/").text


def test_the_profile_setting_wins_over_the_browser_s(viewer):
    Profile.objects.create(user=viewer.user, time_zone=TOKYO)
    viewer.cookies["vigil_tz"] = "America/New_York"

    assert ZONE_META.format(TOKYO) in viewer.get("/dashboards/").text


def test_timestamps_on_pages_are_in_the_user_s_zone(viewer):
    Profile.objects.create(user=viewer.user, time_zone=TOKYO)
    board = board_with({"type": "text", "text": "hi"})
    Dashboard.objects.filter(pk=board.pk).update(updated_at=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))

    page = viewer.get("/dashboards/").text

    assert "2026-01-01 09:30" in page


def test_a_custom_range_is_read_and_shown_in_the_user_s_zone(viewer):
    Profile.objects.create(user=viewer.user, time_zone=TOKYO)
    board = board_with({"type": "text", "text": "hi"})

    response = viewer.get(
        f"/dashboards/{board.pk}/",
        {"range": "custom", "start": "2026-01-01T09:00", "end": "2026-01-01T10:00"},
    )

    time_range = response.context["time_range"]
    assert time_range.start == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert 'name="start" value="2026-01-01T09:00"' in response.text
