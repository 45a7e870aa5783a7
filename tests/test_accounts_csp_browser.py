"""Every page loads in Chromium under the Content-Security-Policy with no console errors."""

import pytest
from django.contrib.auth import get_user_model

from accounts.permissions import Role, set_role
from checks.models import Check, CheckGroup
from instances.models import Instance
from tests.test_dashboard_browser import asgi_server, browser, needs_chromium  # noqa: F401

PASSWORD = "pw-123456789"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


@pytest.fixture
def admin_page(browser, asgi_server):  # noqa: F811
    user = get_user_model().objects.create_user("csp-admin", "c@example.com", PASSWORD)
    set_role(user, Role.ADMIN)
    context = browser.new_context(base_url=asgi_server)
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems = []
    page.on("console", lambda m: problems.append((page.url, m.text)) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append((page.url, str(error))))
    page.goto("/accounts/login/")
    page.fill("#id_login", "csp-admin")
    page.fill("#id_password", PASSWORD)
    page.click("form[action='/accounts/login/'] button[type=submit]")
    page.wait_for_url(f"{asgi_server}/")
    page.problems = problems
    yield page
    context.close()


def test_the_pages_satisfy_the_content_security_policy(admin_page):
    instance = Instance.objects.create(agent_id="web-1", name="Web 1")
    check = Check(name="Site", kind=Check.Kind.HTTP, url="https://shop.example/health")
    check.save()
    CheckGroup.objects.create(name="Public", slug="public", status_page=True)
    pages = [
        "/",
        f"/instances/{instance.pk}/",
        "/alerts/",
        "/explore/",
        "/dashboards/",
        "/dashboards/new/",
        "/dashboards/import/",
        "/rules/",
        "/rules/new/",
        "/checks/",
        f"/checks/{check.pk}/",
        "/checks/new/http/",
        "/status/public/",
        "/channels/",
        "/channels/new/webhook/",
        "/accounts/users/",
        "/accounts/tokens/",
        "/accounts/audit/",
        "/accounts/2fa/",
        "/accounts/2fa/totp/activate/",
        "/api/v1/docs",
    ]
    for path in pages:
        response = admin_page.goto(path)
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"], path
        admin_page.wait_for_load_state("networkidle")

    assert not admin_page.problems, "\n".join(f"{url}: {text}" for url, text in admin_page.problems)
    assert admin_page.locator("#swagger-ui .info").count() == 1
