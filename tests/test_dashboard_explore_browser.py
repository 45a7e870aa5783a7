"""Explore in Chromium (served by uvicorn, as in test_dashboard_browser): a PromQL query typed
with the help of its suggestions, run, and drawn as one plotly trace per returned series.
``admin_page`` collects console errors, so a CSP violation fails these tests too."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from instances import store
from instances.models import Instance
from tests.test_accounts_csp_browser import admin_page  # noqa: F401
from tests.test_dashboard_browser import asgi_server, browser, needs_chromium  # noqa: F401

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]

TRACES = ".explore-chart .scatterlayer .trace"
SUGGESTION = "#promql-suggestions [role=option]"


@pytest.fixture
def interfaces(db):
    """edge-1's byte counters of eth0 and eth1, every 15 s for the last twenty minutes."""
    edge = Instance.objects.create(agent_id="edge-1", name="Edge")
    now = timezone.now()
    rows = []
    for interface, per_second in (("eth0", 100), ("eth1", 250)):
        key = store.SeriesKey("network_bytes_total", {"interface": interface}, "bytes")
        series_id = store.resolve_series(edge.pk, [key])[(key.name, key.labels_key)]
        rows += [
            (series_id, now - timedelta(seconds=15 * i), float((80 - i) * 15 * per_second))
            for i in range(81)
        ]
    store.write_samples(rows)
    return edge


def test_a_query_typed_with_a_suggestion_draws_a_trace_per_interface(admin_page, interfaces):  # noqa: F811
    admin_page.goto("/explore/")
    box = admin_page.locator("#promql")
    box.press_sequentially("sum by (interface) (rate(network_by")

    admin_page.locator(SUGGESTION, has_text="network_bytes_total").click()
    expect(box).to_have_value("sum by (interface) (rate(network_bytes_total")
    expect(admin_page.locator("#promql-suggestions")).to_be_hidden()
    box.press_sequentially("[1m]))")
    admin_page.get_by_role("button", name="Run").click()

    expect(admin_page.locator(TRACES)).to_have_count(2)
    legend = admin_page.locator(".explore-chart .legend").text_content()
    assert '{interface="eth0"}' in legend and '{interface="eth1"}' in legend
    assert "promql=sum+by+%28interface%29" in admin_page.url
    assert admin_page.problems == []


def test_label_names_and_values_are_picked_with_the_keyboard(admin_page, interfaces):  # noqa: F811
    admin_page.goto("/explore/")
    box = admin_page.locator("#promql")
    box.press_sequentially("network_bytes_total{inter")
    expect(admin_page.locator(SUGGESTION)).to_have_count(1)
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_value('network_bytes_total{interface="')

    expect(admin_page.locator(SUGGESTION)).to_have_count(2)
    box.press("ArrowDown")
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_value('network_bytes_total{interface="eth1"')
    box.press_sequentially("}")
    box.press("Enter")

    expect(admin_page.locator(TRACES)).to_have_count(1)
    assert "eth1" in admin_page.locator(".latest-values").inner_text()
    assert admin_page.problems == []


def test_a_refused_query_shows_the_reason_under_the_box(admin_page, interfaces):  # noqa: F811
    admin_page.goto("/explore/")
    admin_page.locator("#promql").fill("rate(network_bytes_total[1m]")
    admin_page.get_by_role("button", name="Run").click()

    expect(admin_page.locator("#promql-error")).to_contain_text("bad_data")
    expect(admin_page.locator("#promql")).to_have_attribute("aria-invalid", "true")
    # The refusal is answered 400: the only console line is the browser's note of it.
    assert all("400" in text for _, text in admin_page.problems), admin_page.problems
