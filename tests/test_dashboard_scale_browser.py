"""An instance page with more charts than it draws up front, in a real browser: the rest load as
they scroll into view, and a chart loaded that way still takes live points."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from dashboard import instance_page
from tests.test_dashboard_browser import (  # noqa: F401
    asgi_server,
    browser,
    needs_chromium,
    page,
    wait_for_live_socket,
)

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]

NAMES = [f"app_metric_{n:02d}" for n in range(instance_page.EAGER_CHARTS + 6)]
LAST = NAMES[-1]


def ingest_all(api, value: float) -> str:
    """One POST with a sample of every metric, from another thread (this one runs Playwright's
    loop)."""
    body = {
        "instance": {"agent_id": "wide-box", "name": "Wide Box", "type": "vm", "region": "lon1"},
        "samples": [{"name": name, "value": value, "unit": "percent"} for name in NAMES],
    }
    with ThreadPoolExecutor(max_workers=1) as executor:
        response = executor.submit(api.post, "/api/v1/ingest", body).result()
    assert response.status_code == 202, response.content
    return response.json()["instance_id"]


def test_charts_below_the_fold_load_when_scrolled_to_and_then_take_live_points(page, api):  # noqa: F811
    instance_id = ingest_all(api, 40.0)
    page.goto(f"/instances/{instance_id}/")
    wait_for_live_socket(page)
    page.wait_for_function(
        f"() => document.querySelectorAll('.chart[data-plotted]').length >= "
        f"{instance_page.EAGER_CHARTS}"
    )
    last_chart = page.locator(f".chart-panel:has(h2 span:text-is('{LAST}')) .chart")
    assert last_chart.get_attribute("data-figure") is None
    assert "chart-lazy" in last_chart.get_attribute("class")

    last_chart.scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelectorAll('.chart[data-plotted]').length === {len(NAMES)}"
    )
    # The charts come in name order: LAST's panel is the last one.
    loaded = "#charts > .chart-panel:last-child .chart[data-plotted]"
    assert page.inner_text("#charts > .chart-panel:last-child h2").startswith(LAST)
    page.wait_for_selector(f"{loaded} .main-svg")
    points = page.eval_on_selector(loaded, "el => el.data[0].y.length")

    ingest_all(api, 60.0)
    page.wait_for_function(
        "([selector, before]) => { const el = document.querySelector(selector);"
        " return el && el.data[0].y.length > before; }",
        arg=[loaded, points],
    )
    assert page.eval_on_selector(loaded, "el => el.data[0].y[el.data[0].y.length - 1]") == 60.0
