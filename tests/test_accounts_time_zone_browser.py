"""The very first page a browser gets, before Vigil knows its time zone (no cookie yet), shows
local times: theme.js sets the cookie and loads the page again, once, in that zone."""

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from accounts.models import Profile
from accounts.permissions import Role
from dashboard.models import Dashboard
from tests.test_dashboard_boards import board_with
from tests.test_dashboard_browser import asgi_server, browser, needs_chromium  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]

NEW_YORK = "America/New_York"


@pytest.fixture
def board_updated_at_half_past_midnight_utc(db):
    board = board_with({"type": "text", "text": "hi"})
    Dashboard.objects.filter(pk=board.pk).update(updated_at=datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    return board


def first_visit(browser, asgi_server, client, user):  # noqa: F811
    """A fresh New York browser, logged in (its session cookie only), opening the dashboards
    list; returns the page and the paths of the documents it loaded."""
    client.force_login(user)
    context = browser.new_context(base_url=asgi_server, timezone_id=NEW_YORK)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}]
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    documents = []
    page.on(
        "request",
        lambda request: (
            documents.append(request.url.removeprefix(asgi_server))
            if request.resource_type == "document"
            else None
        ),
    )
    page.goto("/dashboards/")
    page.wait_for_load_state("load")
    return page, documents


def test_the_first_page_shows_the_browser_s_local_times(
    browser,  # noqa: F811
    asgi_server,  # noqa: F811
    client,
    user_with_role,
    board_updated_at_half_past_midnight_utc,
):
    page, documents = first_visit(browser, asgi_server, client, user_with_role(Role.VIEWER, "ny"))

    expect(page.locator("#content, main").first).to_contain_text("2025-12-31 19:30")
    assert "2026-01-01 00:30" not in page.content()
    assert page.locator('meta[name="vigil-time-zone"]').get_attribute("content") == NEW_YORK
    assert documents == ["/dashboards/", "/dashboards/"]
    page.context.close()


def test_a_profile_s_zone_is_kept_without_loading_the_page_again(
    browser,  # noqa: F811
    asgi_server,  # noqa: F811
    client,
    user_with_role,
    board_updated_at_half_past_midnight_utc,
):
    user = user_with_role(Role.VIEWER, "tokyo")
    Profile.objects.create(user=user, time_zone="Asia/Tokyo")

    page, documents = first_visit(browser, asgi_server, client, user)

    expect(page.locator("#content, main").first).to_contain_text("2026-01-01 09:30")
    assert documents == ["/dashboards/"]
    page.context.close()
