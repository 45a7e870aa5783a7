"""A dashboard in Chromium (the shared uvicorn server and browser of test_dashboard_browser): its
panels load over HTMX side by side and each draws its chart. ``admin_page`` collects console
errors, so a CSP violation fails this test too."""

import pytest
from playwright.sync_api import expect

from instances.models import Instance
from tests.test_accounts_csp_browser import admin_page  # noqa: F401
from tests.test_dashboard_boards import CPU, STEP, board_with
from tests.test_dashboard_browser import asgi_server, browser, needs_chromium  # noqa: F401
from tests.test_dashboard_pages import add_samples

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def test_a_dashboard_draws_both_of_its_panels(admin_page):  # noqa: F811
    web = Instance.objects.create(agent_id="web-1", name="Web 1")
    add_samples(web, "cpu_usage", [40.0 + i for i in range(41)], step=STEP)
    board = board_with(
        {"type": "timeseries", "title": "CPU over time", "queries": [CPU], "width": 8},
        {"type": "gauge", "title": "CPU now", "queries": [CPU], "unit": "percent", "width": 4},
    )

    admin_page.goto(f"/dashboards/{board.pk}/")

    expect(admin_page.locator(".board-chart[data-plotted] .main-svg").first).to_be_visible()
    expect(admin_page.locator(".board-panel-timeseries .scatterlayer .trace")).to_have_count(1)
    expect(admin_page.locator(".board-panel-gauge .indicatorlayer .trace")).to_have_count(1)
    assert "80" in admin_page.locator(".board-panel-gauge .indicatorlayer").text_content()
    assert admin_page.problems == []
