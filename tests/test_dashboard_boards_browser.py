"""A dashboard in Chromium (the shared uvicorn server and browser of test_dashboard_browser): its
panels load over HTMX side by side and each draws its chart. ``admin_page`` collects console
errors, so a CSP violation fails this test too. Threshold-coloured values are legible and charts
take their colours from the stylesheet, in either theme."""

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from accounts.permissions import Role
from instances.models import Instance
from tests.test_accounts_csp_browser import admin_page  # noqa: F401
from tests.test_checks_browser import contrast_ratio
from tests.test_dashboard_boards import CPU, STEP, board_with
from tests.test_dashboard_browser import (  # noqa: F401
    PASSWORD,
    asgi_server,
    browser,
    ingest,
    needs_chromium,
)
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


def test_a_dashboard_built_in_the_browser_keeps_its_view_and_extends_live(admin_page, api):  # noqa: F811
    web1 = Instance.objects.create(agent_id="web-1", name="Web 1")
    web2 = Instance.objects.create(agent_id="web-2", name="Web 2")
    add_samples(web1, "cpu_usage", [31.0] * 41, step=STEP)
    add_samples(web2, "cpu_usage", [62.0] * 41, step=STEP)

    admin_page.goto("/dashboards/new/")
    admin_page.fill("#id_title", "Hosts by name")
    admin_page.fill(
        "#id_variables",
        '[{"name": "host", "kind": "query", "query": "label_values(cpu_usage, instance)"}]',
    )
    admin_page.click("form.rule-form button[type=submit]")
    admin_page.click(".page-head a:has-text('Add panel')")
    admin_page.select_option("#id_type", "timeseries")
    admin_page.fill("#id_title", "CPU of the host")
    admin_page.fill("#id_queries", 'cpu_usage{instance="$host"}')
    admin_page.fill("#id_legends", "{{instance}}")
    # Leave the box (its change updates the preview), and let that preview arrive before
    # saving: a preview cut off by the page going away would be a console error.
    admin_page.press("#id_legends", "Tab")
    admin_page.wait_for_function(
        "() => { const chart = document.querySelector('#panel-preview [data-plotted]');"
        " return chart && chart.data && chart.data[0].name === 'web-1'; }"
    )
    admin_page.click("#panel-form button[type=submit]")
    admin_page.wait_for_selector(".board-panel-timeseries .board-chart[data-plotted]")

    admin_page.select_option("select[name=var-host]", "web-2")
    admin_page.wait_for_url("**var-host=web-2**")
    admin_page.reload()

    chart = admin_page.locator(".board-panel-timeseries .board-chart[data-plotted]")
    expect(chart).to_have_count(1)
    expect(admin_page.locator("select[name=var-host]")).to_have_value("web-2")
    assert chart.evaluate("element => element.data.map(trace => trace.name)") == ["web-2"]
    assert chart.evaluate("element => element.data[0].y.at(-1)") == 62.0
    admin_page.wait_for_selector("[data-live][data-live-state=open]", state="attached")
    admin_page.evaluate("window.notReloaded = true")

    ingest(api, "web-2", "Web 2", 88.0)

    admin_page.wait_for_function(
        "() => document.querySelector('.board-panel-timeseries .board-chart').data[0].y.at(-1)"
        " === 88"
    )
    assert admin_page.evaluate("window.notReloaded") is True
    assert admin_page.problems == []


# One latest value per threshold colour a panel may name: web-1 at 5 is green, ... web-6 at 55
# purple.
EVERY_THRESHOLD = [
    {"value": 0, "color": "green"},
    {"value": 10, "color": "blue"},
    {"value": 20, "color": "yellow"},
    {"value": 30, "color": "orange"},
    {"value": 40, "color": "red"},
    {"value": 50, "color": "purple"},
]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_threshold_colour_is_legible_on_a_stat_panel(admin_page, theme):  # noqa: F811
    for number in range(1, 7):
        web = Instance.objects.create(agent_id=f"web-{number}", name=f"Web {number}")
        add_samples(web, "cpu_usage", [number * 10.0 - 5] * 5, step=STEP)
    board = board_with(
        {"type": "stat", "title": "CPU", "queries": [CPU], "thresholds": EVERY_THRESHOLD}
    )
    admin_page.emulate_media(color_scheme=theme)

    admin_page.goto(f"/dashboards/{board.pk}/")

    values = admin_page.locator(".stat-value[class*=threshold-]")
    expect(values).to_have_count(6)
    colours = values.evaluate_all(
        """values => values.map(value => {
            let filled = value;
            while (getComputedStyle(filled).backgroundColor === "rgba(0, 0, 0, 0)") {
                filled = filled.parentElement;
            }
            return [value.className, getComputedStyle(value).color,
                    getComputedStyle(filled).backgroundColor];
        })"""
    )
    illegible = [(name, fg, bg) for name, fg, bg in colours if contrast_ratio(fg, bg) < 4.5]
    assert not illegible, illegible


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_threshold_colour_is_legible_under_its_label_in_a_bar_panel(admin_page, theme):  # noqa: F811
    for number in range(1, 7):
        web = Instance.objects.create(agent_id=f"web-{number}", name=f"Web {number}")
        add_samples(web, "cpu_usage", [number * 10.0 - 5] * 5, step=STEP)
    bars = {
        "type": "bargauge",
        "title": "CPU",
        "queries": [CPU],
        "thresholds": EVERY_THRESHOLD,
        "min": 0,
        "max": 60,
        "width": 12,
    }
    board = board_with(bars)
    admin_page.emulate_media(color_scheme=theme)

    admin_page.goto(f"/dashboards/{board.pk}/")

    chart = admin_page.locator(".board-panel-bargauge .board-chart[data-plotted]")
    expect(chart.locator(".bars .point")).to_have_count(6)
    # Each label written inside its bar, against that bar's fill.
    labels = chart.evaluate(
        """chart => [...chart.querySelectorAll(".bars .point")].map(point => {
            const text = point.querySelector(".bartext");
            const bar = point.querySelector("path").getBoundingClientRect();
            const box = text.getBoundingClientRect();
            const inside = box.left >= bar.left && box.right <= bar.right;
            return [text.textContent, inside, getComputedStyle(text).fill,
                    getComputedStyle(point.querySelector("path")).fill];
        })"""
    )
    inside = [(text, fg, bg) for text, within, fg, bg in labels if within]
    assert len(inside) >= 4, labels
    illegible = [(text, fg, bg) for text, fg, bg in inside if contrast_ratio(fg, bg) < 4.5]
    assert not illegible, illegible


# The colour a custom property of the stylesheet gives text in the page's theme.
CSS_COLOUR = """name => {
    const probe = document.createElement("span");
    probe.style.color = `var(${name})`;
    document.body.append(probe);
    const colour = getComputedStyle(probe).color;
    probe.remove();
    return colour;
}"""


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_chart_takes_its_colours_from_the_stylesheet(admin_page, theme):  # noqa: F811
    web = Instance.objects.create(agent_id="web-1", name="Web 1")
    add_samples(web, "cpu_usage", [95.0] * 41, step=STEP)
    board = board_with(
        {"type": "timeseries", "title": "CPU over time", "queries": [CPU], "width": 8},
        {
            "type": "gauge",
            "title": "CPU now",
            "queries": [CPU],
            "unit": "percent",
            "thresholds": [{"value": 80, "color": "orange"}],
            "width": 4,
        },
    )
    admin_page.emulate_media(color_scheme=theme)

    admin_page.goto(f"/dashboards/{board.pk}/")

    line = admin_page.locator(".board-panel-timeseries .board-chart[data-plotted]")
    gauge = admin_page.locator(".board-panel-gauge .board-chart[data-plotted]")
    expect(line).to_have_count(1)
    expect(gauge).to_have_count(1)
    first_series = admin_page.evaluate(CSS_COLOUR, "--series-1")
    orange = admin_page.evaluate(CSS_COLOUR, "--warning-text")
    assert line.evaluate("chart => chart._fullData[0].line.color") == first_series
    assert gauge.evaluate("chart => chart._fullData[0].gauge.bar.color") == orange

    # The theme toggle (Auto, Light, Dark in turn) recolours drawn charts.
    other = "dark" if theme == "light" else "light"
    for _ in range(2 if other == "dark" else 1):
        admin_page.click("[data-theme-toggle]")
    expect(admin_page.locator("html")).to_have_attribute("data-theme", other)
    other_series = admin_page.evaluate(CSS_COLOUR, "--series-1")
    other_orange = admin_page.evaluate(CSS_COLOUR, "--warning-text")
    assert (other_series, other_orange) != (first_series, orange)
    assert line.evaluate("chart => chart._fullData[0].line.color") == other_series
    assert gauge.evaluate("chart => chart._fullData[0].gauge.bar.color") == other_orange
    assert admin_page.problems == []


def test_a_browser_in_tokyo_sees_chart_times_in_tokyo(browser, asgi_server, user_with_role):  # noqa: F811
    web = Instance.objects.create(agent_id="web-1", name="Web 1")
    add_samples(web, "cpu_usage", [40.0] * 41, step=STEP)
    board = board_with({"type": "timeseries", "title": "CPU", "queries": [CPU]})
    user_with_role(Role.VIEWER, "tokyo", PASSWORD)
    context = browser.new_context(base_url=asgi_server, timezone_id="Asia/Tokyo")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/accounts/login/")
    page.fill("#id_login", "tokyo")
    page.fill("#id_password", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_url(f"{asgi_server}/")

    page.goto(f"/dashboards/{board.pk}/")
    chart = page.locator(".board-chart[data-plotted]")
    expect(chart).to_have_count(1)

    zone = page.locator("meta[name=vigil-time-zone]").get_attribute("content")
    end = chart.evaluate("element => element.layout.xaxis.range[1]")
    last = chart.evaluate("element => element.data[0].x.at(-1)")
    context.close()
    tokyo_now = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=9)
    assert zone == "Asia/Tokyo"
    for shown in (end, last):
        wall = datetime.fromisoformat(shown.replace(" ", "T")[:19])
        assert abs(wall - tokyo_now) < timedelta(minutes=5), shown


# Each pair of a gauge chart's texts (titles, numbers, tick labels) whose boxes intersect.
OVERLAPPING_TEXTS = """chart => {
    const boxes = [...chart.querySelectorAll(".indicatorlayer text")]
        .filter(text => text.textContent.trim())
        .map(text => [text.textContent, text.getBoundingClientRect()])
        .filter(([, box]) => box.width && box.height);
    const overlapping = [];
    boxes.forEach(([text, box], index) => boxes.slice(index + 1).forEach(([other, near]) => {
        if (box.left < near.right && near.left < box.right
            && box.top < near.bottom && near.top < box.bottom) {
            overlapping.push([text, other]);
        }
    }));
    return overlapping;
}"""


def test_a_panel_of_many_gauges_fits_their_texts_at_desktop_and_phone_width(admin_page):  # noqa: F811
    for number in range(1, 9):
        web = Instance.objects.create(agent_id=f"web-{number}.prod.example", name=f"Web {number}")
        add_samples(web, "cpu_usage", [number * 11.5] * 5, step=STEP)
    board = board_with(
        {"type": "gauge", "title": "CPU now", "queries": [CPU], "unit": "percent", "width": 8}
    )
    admin_page.set_viewport_size({"width": 1280, "height": 900})

    admin_page.goto(f"/dashboards/{board.pk}/")

    chart = admin_page.locator(".board-panel-gauge .board-chart[data-plotted]")
    expect(chart.locator(".indicatorlayer .trace")).to_have_count(8)
    # Wide enough: each dial labelled at its ends.
    assert chart.evaluate("chart => chart._fullData.every(t => t.gauge.axis.showticklabels)")
    assert chart.evaluate(OVERLAPPING_TEXTS) == []

    # At a phone's width the same dials get smaller and lose their labels, and still fit.
    admin_page.set_viewport_size({"width": 390, "height": 900})
    admin_page.wait_for_function(
        "() => document.querySelector('.board-panel-gauge .board-chart')._fullData"
        ".every(trace => !trace.gauge.axis.showticklabels)"
    )
    assert chart.evaluate(OVERLAPPING_TEXTS) == []
    assert admin_page.problems == []
