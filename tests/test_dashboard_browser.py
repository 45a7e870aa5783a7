"""The live dashboard in a real browser (Debian Chromium through Playwright) against the real ASGI
application served by uvicorn: HTTP, websockets, Redis channel layer and PostgreSQL."""

import os
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import uvicorn
from channels.routing import ProtocolTypeRouter
from django.core.asgi import get_asgi_application
from django.db import connection

from accounts.permissions import Role
from alerts.models import Alert
from instances.models import Instance

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-123456789"
# Playwright cannot download browsers here: the browser tests drive Debian's Chromium. Without
# it (make test on a machine that lacks the package) they skip; .ci/run installs it, and in CI
# a skip fails the run.
needs_chromium = pytest.mark.skipif(
    not shutil.which(CHROMIUM),
    reason="Debian package chromium is not installed (.ci/run installs it)",
)

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


@pytest.fixture(scope="session")
def asgi_server(static_files_without_manifest, django_db_setup, django_db_blocker):
    """uvicorn serving Vigil on a free port, for the whole session."""
    from config.asgi import application

    # A fresh HTTP handler, so its static files middleware sees the test settings.
    app = ProtocolTypeRouter(
        {"http": get_asgi_application(), "websocket": application.application_mapping["websocket"]}
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)
    # The server's threads keep persistent connections, which would block dropping the test DB.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="module")
def browser():
    """One Chromium for these tests. Module-scoped: Playwright's sync API keeps an event loop in
    this thread while it runs, which the other modules' async_to_sync calls must not meet."""
    from playwright.sync_api import sync_playwright

    # The tests' own ORM calls are plain synchronous calls made beside that loop.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, asgi_server, db, user_with_role):
    """An Operator's logged-in tab."""
    user_with_role(Role.OPERATOR, "browser", PASSWORD)
    context = browser.new_context(base_url=asgi_server, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/accounts/login/")
    page.fill("#id_login", "browser")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{asgi_server}/")
    yield page
    context.close()


def wait_for_live_socket(page):
    page.wait_for_selector("[data-live][data-live-state=open]", state="attached")


def ingest(api, agent_id, name, value=55.0):
    """POST a sample through the API from another thread: this one runs Playwright's loop."""
    body = {
        "instance": {"agent_id": agent_id, "name": name, "type": "vm", "region": "lon1"},
        "samples": [{"name": "cpu_usage", "value": value, "unit": "percent"}],
    }
    with ThreadPoolExecutor(max_workers=1) as executor:
        response = executor.submit(api.post, "/api/v1/ingest", body).result()
    assert response.status_code == 202, response.content
    return response.json()["instance_id"]


def test_a_new_instance_appears_on_the_overview_without_reload(page, api):
    page.goto("/")
    wait_for_live_socket(page)
    page.evaluate("window.notReloaded = true")
    ingest(api, "browser-box", "Browser Box")
    page.wait_for_selector(".instance-card:has-text('Browser Box')")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#live-notice").is_hidden()


def test_acknowledge_button_changes_the_alert_row(page, api):
    instance = Instance.objects.get(pk=ingest(api, "alerting", "Alerting Box"))
    alert = Alert.objects.create(
        instance=instance, alert_type="DiskFull", severity="critical", message="/ at 99%"
    )
    page.goto("/")
    row = page.locator(f"#alert-{alert.pk}")
    row.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(f"#alert-{alert.pk} .badge.alert-acknowledged")
    assert row.get_by_role("button", name="Acknowledge").count() == 0
    alert.refresh_from_db()
    assert alert.status == "acknowledged"


def test_acknowledging_on_the_alerts_page_changes_the_overview_in_another_tab(page, api):
    instance = Instance.objects.get(pk=ingest(api, "paged", "Paged Box"))
    alert = Alert.objects.create(
        instance=instance, alert_type="HighLoad", severity="critical", message="load 42"
    )
    overview = page.context.new_page()
    overview.goto("/")
    wait_for_live_socket(overview)
    overview.evaluate("window.notReloaded = true")
    item = overview.locator(f"#alert-{alert.pk}")
    assert item.locator(".badge.alert-active").count() == 1

    page.goto("/alerts/")
    row = page.locator(f"#alert-row-{alert.pk}")
    row.get_by_placeholder("Note (optional)").fill("on it")
    row.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(f"#alert-row-{alert.pk} .badge.alert-acknowledged")

    overview.wait_for_selector(f"#alert-{alert.pk} .badge.alert-acknowledged")
    assert overview.evaluate("window.notReloaded") is True
    assert item.get_by_role("button", name="Acknowledge").count() == 0
    alert.refresh_from_db()
    assert (alert.status, alert.note) == ("acknowledged", "on it")


def test_acknowledging_a_stale_row_shows_why_it_was_refused(page, api):
    instance = Instance.objects.get(pk=ingest(api, "flappy", "Flappy Box"))
    rule_alert = {"instance": instance, "alert_type": "Flapping", "source": Alert.Source.RULE}
    past = Alert.objects.create(**rule_alert, fingerprint="f" * 64)
    page.goto("/alerts/")
    # Meanwhile the episode resolved and a newer one of the same problem opened.
    Alert.objects.filter(pk=past.pk).update(status="resolved", resolved_at=past.created_at)
    newer = Alert.objects.create(**rule_alert, fingerprint="f" * 64)

    page.locator(f"#alert-row-{past.pk}").get_by_role("button", name="Acknowledge").click()

    problem = page.locator(f"#alert-row-{past.pk} .problem")
    problem.wait_for()
    assert "A newer episode of this alert is open" in problem.inner_text()
    assert problem.get_by_role("link").get_attribute("href") == f"/alerts/{newer.pk}/"
    past.refresh_from_db()
    assert past.status == "resolved"


def test_changing_the_time_range_redraws_the_chart(page, api):
    instance_id = ingest(api, "charted-box", "Charted Box")
    page.goto(f"/instances/{instance_id}/")
    page.wait_for_selector(".chart .main-svg")
    span = "el => (new Date(el.layout.xaxis.range[1]) - new Date(el.layout.xaxis.range[0])) / 36e5"
    assert round(page.eval_on_selector(".chart", span)) == 1
    page.click("label:has(input[value='6h'])")
    page.wait_for_url("**range=6h**")
    page.wait_for_function(
        "() => { const el = document.querySelector('.chart');"
        " return el && el.layout && Math.round((new Date(el.layout.xaxis.range[1])"
        " - new Date(el.layout.xaxis.range[0])) / 36e5) === 6; }"
    )
    assert page.locator("input[value='6h']").is_checked()
