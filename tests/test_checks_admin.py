"""Admins manage checks in Django admin until the checks pages exist: the add form validates
targets, and checks are paused and resumed from the list; a group deleted here leaves its checks
without a slug, so they are saved again."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.permissions import Role
from checks.models import Check, CheckGroup
from ingestion.models import IngestToken

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:checks_check_add")
LIST_URL = reverse("admin:checks_check_changelist")


@pytest.fixture
def admin(user_with_role) -> Client:
    client = Client()
    client.force_login(user_with_role(Role.ADMIN, "boss"))
    return client


def add_form(**fields) -> dict:
    """The add form as a browser posts it, defaults included."""
    defaults = {
        "name": "Site",
        "kind": "http",
        "http_method": "GET",
        "http_headers": "{}",
        "expected_statuses": "200-299",
        "follow_redirects": "on",
        "max_redirects": "10",
        "dns_record_type": "A",
        "interval_seconds": "60",
        "timeout_seconds": "10",
        "retries": "1",
        "jitter_seconds": "5",
        "certificate_warning_days": "14",
        "certificate_critical_days": "3",
        "period_seconds": "86400",
        "grace_seconds": "3600",
        "time_zone": "UTC",
        "pings-TOTAL_FORMS": "0",
        "pings-INITIAL_FORMS": "0",
    }
    return {**defaults, **fields}


def test_an_admin_adds_an_http_check_that_is_due_at_once(admin):
    response = admin.post(ADD_URL, add_form(url="https://example.com/health"))

    assert response.status_code == 302
    check = Check.objects.get()
    assert (check.kind, check.state, check.instance.agent_id) == ("http", "new", check.agent_id)
    assert check.next_run_at is not None


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"url": "ftp://example.com/"}, "Give an http:// or https:// URL."),
        ({"url": "http://169.254.169.254/"}, "169.254.169.254 is link-local"),
        ({"url": "https://example.com/", "interval_seconds": "5"}, "greater than or equal to 20"),
        ({"kind": "heartbeat", "cron": "every night"}, "Not a cron expression."),
        ({"url": "https://example.com/", "http_headers": '["Accept"]'}, "An object of header"),
        (
            {"url": "https://example.com/", "http_headers": '{"X-A": "1\\r\\nX-B: 2"}'},
            "An object of header",
        ),
        ({"kind": "dns", "host": "example.com", "dns_resolver": "dns.google"}, "IP address"),
        (
            {"kind": "dns", "host": "example.com", "dns_resolver": "169.254.1.1:53"},
            "169.254.1.1 is link-local",
        ),
        ({"kind": "heartbeat", "time_zone": "Mars/Olympus"}, "Not a time zone name"),
    ],
)
def test_the_add_form_refuses_bad_targets_and_schedules(admin, fields, error):
    response = admin.post(ADD_URL, add_form(**fields))

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Check.objects.exists()


def test_pausing_and_resuming_from_the_list(admin):
    admin.post(ADD_URL, add_form(url="https://example.com/health"))
    check = Check.objects.get()

    admin.post(LIST_URL, {"action": "pause", "_selected_action": [str(check.pk)]})
    check.refresh_from_db()
    assert (check.state, check.next_run_at) == (Check.State.PAUSED, None)

    admin.post(LIST_URL, {"action": "resume", "_selected_action": [str(check.pk)]})
    check.refresh_from_db()
    assert check.state == Check.State.NEW
    assert check.next_run_at is not None


def test_the_change_page_shows_the_badge_key(admin):
    admin.post(ADD_URL, add_form(url="https://example.com/health"))
    check = Check.objects.get()

    page = admin.get(reverse("admin:checks_check_change", args=[check.pk])).content.decode()

    assert check.badge_key in page


def test_checks_of_a_group_deleted_here_are_changed_through_the_api_again(admin):
    one, many = (CheckGroup.objects.create(name=name, slug=name) for name in ("one", "many"))
    checks = [
        Check.objects.create(name=f"Job {n}", kind="heartbeat", group=group, slug=f"job-{n}")
        for n, group in enumerate((one, many, many))
    ]
    token = IngestToken.issue("terraform", [IngestToken.Scope.MANAGE])[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    admin.post(reverse("admin:checks_checkgroup_delete", args=[one.pk]), {"post": "yes"})
    admin.post(
        reverse("admin:checks_checkgroup_changelist"),
        {"action": "delete_selected", "_selected_action": [many.pk], "post": "yes"},
    )

    assert not CheckGroup.objects.exists()
    for check in checks:
        response = api.patch(
            f"/api/v1/checks/{check.pk}", {"name": "Renamed"}, content_type="application/json"
        )
        assert response.status_code == 200
        assert (response.json()["group"], response.json()["slug"]) == (None, "")
        check.refresh_from_db()
        assert (check.name, check.group, check.slug) == ("Renamed", None, "")
