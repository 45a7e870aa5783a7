"""Checks in Chromium (the shared uvicorn server and browser of test_dashboard_browser): an
Operator makes an HTTP check in the form against a local server, sees it go up, and, once the
server is stopped, sees it go down and its incident appear without reloading the page."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

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
