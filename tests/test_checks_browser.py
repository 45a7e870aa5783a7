"""Checks in Chromium (the shared uvicorn server and browser of test_dashboard_browser): an
Operator makes an HTTP check in the form against a local server, sees it go up, and, once the
server is stopped, sees it go down and its incident appear without reloading the page. At a
phone's width every menu link is on screen and a check's row reads as a card; Delete and every
state badge are legible in either theme."""

import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.permissions import Role
from checks import tasks
from checks.models import Check
from tests.test_dashboard_browser import (  # noqa: F401
    asgi_server,
    browser,
    needs_chromium,
    page,
    wait_for_live_socket,
)

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def probe_now(check: Check) -> None:
    """Run the check's probe as a worker would, from another thread: this one runs Playwright's
    event loop, which the live push's async_to_sync must not meet."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(tasks.run_checks.delay, {str(check.pk): time.time()}).result()


def rename(check: Check, name: str) -> None:
    """Rename the check (which announces the change) from another thread, as probe_now."""
    check.name = name
    with ThreadPoolExecutor(max_workers=1) as executor:
        executor.submit(check.save).result()


def checks_page(browser, asgi_server, client, user, **context_options) -> Page:  # noqa: F811
    """The checks list in a new tab of a browser made with context_options, logged in as user."""
    client.force_login(user)
    context = browser.new_context(base_url=asgi_server, **context_options)
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": asgi_server}]
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto("/checks/")
    return tab


def contrast_ratio(foreground: str, background: str) -> float:
    """WCAG's contrast ratio of two computed colours ("rgb(r, g, b)")."""

    def luminance(colour: str) -> float:
        channels = [int(part) / 255 for part in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    darker, lighter = sorted([luminance(foreground), luminance(background)])
    return (lighter + 0.05) / (darker + 0.05)


def test_at_phone_width_every_menu_link_is_on_screen_and_a_check_reads_as_a_card(
    browser,  # noqa: F811
    asgi_server,  # noqa: F811
    client,
    user_with_role,
):
    # An admin who is staff has the longest menu.
    admin = user_with_role(Role.ADMIN, "phone-admin")
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    check = Check.objects.create(name="Nightly backup", kind=Check.Kind.HEARTBEAT)
    tab = checks_page(browser, asgi_server, client, admin, viewport={"width": 390, "height": 844})

    links = tab.locator(".nav a")
    assert links.count() == 13
    for link in links.all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, link.inner_text()
        # Not hidden under the edge of a scrolling menu either: the link is what is there.
        assert link.evaluate(
            "a => { const r = a.getBoundingClientRect();"
            " return document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2) === a; }"
        ), link.inner_text()
    assert tab.evaluate("document.documentElement.scrollWidth") == 390

    def cell(label: str) -> dict:
        return tab.locator(f"#check-{check.pk} td[data-label='{label}']").bounding_box()

    assert cell("State")["y"] == cell("Name")["y"]
    assert cell("State")["x"] > cell("Name")["x"]
    assert cell("Uptime, 24 h")["y"] == cell("Latency, 24 h")["y"]
    assert cell("Last result")["width"] == cell("Actions")["width"] > 300
    tab.context.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_delete_is_legible_in_either_theme(browser, asgi_server, client, user_with_role, theme):  # noqa: F811
    Check.objects.create(name="Nightly backup", kind=Check.Kind.HEARTBEAT)
    operator = user_with_role(Role.OPERATOR, "themed")
    tab = checks_page(browser, asgi_server, client, operator, color_scheme=theme)

    delete = tab.get_by_role("link", name="Delete")
    colours = delete.evaluate(
        "a => { const style = getComputedStyle(a); return [style.color, style.backgroundColor]; }"
    )
    tab.context.close()
    assert contrast_ratio(*colours) >= 4.5, colours


def test_an_http_check_made_in_the_form_goes_up_then_down_live(page, http_target):  # noqa: F811
    page.goto("/checks/")
    page.get_by_role("link", name="New HTTP(S)").click()
    page.fill("#id_name", "Storefront")
    page.fill("#id_url", http_target.url + "/ok")
    page.fill("#id_retries", "0")
    page.get_by_role("button", name="Create check").click()
    page.wait_for_url("**/checks/*/")
    check = Check.objects.get(name="Storefront")
    assert (check.kind, check.url, check.retries) == (Check.Kind.HTTP, http_target.url + "/ok", 0)
    wait_for_live_socket(page)
    page.evaluate("window.notReloaded = true")

    probe_now(check)
    expect(page.locator("#check-status .badge")).to_have_text("up")

    http_target.stop()
    probe_now(check)
    expect(page.locator("#check-status .badge")).to_have_text("down")
    incident = page.locator("#check-incidents tr.incident").first
    expect(incident).to_contain_text("Down")
    expect(incident).to_contain_text("ongoing")
    expect(incident).to_contain_text("refused")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#live-notice").is_hidden()

    # The list: the first push sends its table whole, the next only the changed row.
    page.goto("/checks/")
    expect(page.locator(f"#check-{check.pk} .badge")).to_have_text("down")
    wait_for_live_socket(page)
    for name in ("Storefront 2", "Storefront 3"):
        rename(check, name)
        expect(page.locator(f"#check-{check.pk} strong")).to_have_text(name)
    expect(page.locator("#checks-table tbody tr")).to_have_count(1)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_state_badge_is_legible_in_either_theme(
    browser,  # noqa: F811
    asgi_server,  # noqa: F811
    client,
    user_with_role,
    theme,
):
    # A badge's text is white on the light theme's deep status colours, dark on the dark theme's
    # light ones and on amber in both.
    for state in Check.State.values:
        Check.objects.create(
            name=f"Nightly {state}",
            kind=Check.Kind.HEARTBEAT,
            state=state,
            paused=state == Check.State.PAUSED,
            # An up heartbeat's next ping is due after its last one.
            last_ping_at=timezone.now(),
        )
    viewer = user_with_role(Role.VIEWER, f"{theme}-viewer")
    tab = checks_page(browser, asgi_server, client, viewer, color_scheme=theme)

    badges = tab.locator("#checks-table .badge")
    expect(badges).to_have_count(len(Check.State.values))
    # An outlined badge (paused) has no fill of its own: its text is on the row's background.
    colours = badges.evaluate_all(
        """badges => badges.map(b => {
            let filled = b;
            while (getComputedStyle(filled).backgroundColor === "rgba(0, 0, 0, 0)") {
                filled = filled.parentElement;
            }
            return [b.textContent, getComputedStyle(b).color, getComputedStyle(filled).backgroundColor];
        })"""
    )
    tab.context.close()
    assert sorted(state for state, _, _ in colours) == sorted(Check.State.values)
    illegible = [(state, fg, bg) for state, fg, bg in colours if contrast_ratio(fg, bg) < 4.5]
    assert not illegible, illegible
