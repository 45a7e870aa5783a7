"""Redis stopped under an open dashboard: the page says it is not live and polls over HTTP."""

import json
import urllib.request
from datetime import UTC, datetime

import pytest

from bench.common import production_env, web_server
from tests.servers import PrivatePostgres, PrivateRedis, manage
from tests.test_dashboard_browser import browser  # noqa: F401  (the shared Chromium fixture)

SETUP = """
from bench.fanout import viewer_session_cookie
from ingestion.models import IngestToken
print(viewer_session_cookie())
print(IngestToken.issue("faults")[1])
"""


@pytest.fixture
def vigil():
    """Vigil (DEBUG, so static files need no collectstatic) on a PostgreSQL and a Redis of its
    own; yields (url, redis, session cookie, ingest token)."""
    postgres, redis = PrivatePostgres(), PrivateRedis()
    env = production_env(DATABASE_URL=postgres.create_database(), REDIS_URL=redis.url, DEBUG="1")
    try:
        manage(env, "migrate", "--verbosity", "0")
        cookie, token = manage(env, "shell", "-c", SETUP).split()[-2:]
        with web_server(workers=1, env=env) as (url, _):
            yield url, redis, cookie, token
    finally:
        redis.stop()
        postgres.stop()


def ingest(url: str, token: str) -> str:
    ts = int(datetime.now(UTC).timestamp() * 1000)
    body = {
        "instance": {"agent_id": "web-1"},
        "samples": [{"name": "cpu_usage", "value": 5, "ts": ts}],
    }
    request = urllib.request.Request(
        f"{url}/api/v1/ingest",
        json.dumps(body).encode(),
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["instance_id"]


def test_with_redis_stopped_the_instance_page_says_it_is_not_live_and_polls(vigil, browser):  # noqa: F811
    url, redis, cookie, token = vigil
    instance_id = ingest(url, token)
    name, value = cookie.split("=", 1)
    context = browser.new_context(base_url=url)
    context.add_cookies([{"name": name, "value": value, "url": url}])
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"/instances/{instance_id}/")
    page.wait_for_selector("[data-live-state=open]", state="attached")
    assert page.locator("#live-notice").is_hidden()

    redis.stop()

    page.wait_for_selector("html.live-down", state="attached")
    assert page.locator("#live-notice").is_visible()
    with page.expect_request(
        lambda request: (
            request.url.startswith(f"{url}/instances/{instance_id}/")
            and request.headers.get("hx-request") == "true"
        ),
        timeout=20_000,
    ) as polled:
        pass
    assert polled.value.method == "GET"
    ingest(url, token)
    context.close()
