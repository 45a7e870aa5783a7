"""The checks API: list and read with the read scope; make, change and delete with the manage
scope; bad targets and bad fields get a 400 naming them, and nothing is stored."""

import pytest

from accounts.models import AuditEvent
from checks.models import Check, CheckGroup
from ingestion.models import IngestToken
from tests.test_checks_badges import probed

pytestmark = pytest.mark.django_db

Scope = IngestToken.Scope


@pytest.fixture
def manager(client):
    token = IngestToken.issue("terraform", [Scope.READ, Scope.MANAGE])[1]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def post(client, body: dict):
    return client.post("/api/v1/checks", body, content_type="application/json")


def patch(client, check: Check, body: dict):
    return client.patch(f"/api/v1/checks/{check.pk}", body, content_type="application/json")


def test_a_check_made_through_the_api_is_stored_and_shown_as_made(manager):
    response = post(
        manager,
        {
            "kind": "http",
            "name": "Shop",
            "url": "https://shop.example/health",
            "expected_statuses": "200-299,301",
            "keyword": "ok",
            "http_headers": {"Accept": "text/plain"},
            "interval_seconds": 30,
            "retries": 2,
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    check = Check.objects.get(pk=body["id"])
    assert (check.kind, check.name, check.url, check.retries) == (
        "http",
        "Shop",
        "https://shop.example/health",
        2,
    )
    assert body["http_headers"] == {"Accept": "text/plain"}
    assert body["state"] == "new" and body["interval_seconds"] == 30
    assert body["badge_url"] == f"/badge/{check.badge_key}.svg"
    assert AuditEvent.objects.filter(action="check.create", actor_label="terraform").exists()


def test_checks_are_listed_filtered_and_read_with_their_status(manager):
    jobs = CheckGroup.objects.create(name="Jobs", slug="jobs")
    shop = Check(name="Shop", kind=Check.Kind.HTTP, url="https://shop.example/")
    shop.save()
    probed(shop, True, False, True, True)
    backup = Check(name="Backup", kind=Check.Kind.HEARTBEAT, group=jobs, slug="backup")
    backup.save()

    everything = manager.get("/api/v1/checks").json()
    heartbeats = manager.get("/api/v1/checks", {"kind": "heartbeat"}).json()
    of_jobs = manager.get("/api/v1/checks", {"group": "jobs"}).json()
    one = manager.get(f"/api/v1/checks/{backup.pk}").json()
    status = manager.get(f"/api/v1/checks/{shop.pk}/status").json()

    assert [item["name"] for item in everything["items"]] == ["Backup", "Shop"]
    assert everything["count"] == 2
    assert [item["name"] for item in heartbeats["items"]] == ["Backup"]
    assert [item["name"] for item in of_jobs["items"]] == ["Backup"]
    assert (one["group"], one["slug"], one["target"]) == ("jobs", "backup", f"/ping/{backup.pk}")
    assert status["state"] == "up"
    assert status["availability"] == {"24h": 0.75, "7d": 0.75, "30d": 0.75, "90d": 0.75}


def test_a_patch_changes_only_what_it_gives_and_pausing_pauses(manager):
    check = Check(name="Shop", kind=Check.Kind.HTTP, url="https://shop.example/", retries=3)
    check.save()

    response = patch(manager, check, {"name": "Shop API", "paused": True})

    assert response.status_code == 200, response.content
    check.refresh_from_db()
    assert (check.name, check.retries, check.paused, check.state) == ("Shop API", 3, True, "paused")
    assert check.instance.name == "Shop API"
    event = AuditEvent.objects.get(action="check.change")
    assert event.details["fields"] == ["name", "paused"]


def test_a_delete_takes_the_check_and_its_instance(manager):
    check = Check(name="Old", kind=Check.Kind.HEARTBEAT)
    check.save()

    assert manager.delete(f"/api/v1/checks/{check.pk}").status_code == 204
    assert not Check.objects.exists()
    assert not type(check.instance).objects.filter(pk=check.instance_id).exists()
    assert manager.delete(f"/api/v1/checks/{check.pk}").status_code == 404
    assert manager.get("/api/v1/checks/not-a-uuid").status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": "ftp://example.com/file"}, "url", "Give an http:// or https:// URL."),
        ({"url": "http://169.254.169.254/latest/"}, "url", "link-local"),
        ({"url": "not a url"}, "url", "Enter a valid URL."),
        ({"url": "http://[fe80::1]/"}, "url", "link-local"),
        (
            {"url": "https://shop.example/", "interval_seconds": 10},
            "interval_seconds",
            "greater than or equal to 20",
        ),
        ({"url": "https://shop.example/", "cron": "every day"}, "cron", "Not a cron expression."),
        ({"url": "https://shop.example/", "surprise": 1}, "surprise", "Extra inputs"),
        ({"url": "https://shop.example/", "timeout_seconds": "NaN"}, "timeout_seconds", ""),
        ({"url": "https://shop.example/", "group": "nope"}, "group", "no group 'nope'"),
        ({"url": "https://shop.example/", "keyword": None}, "keyword", "may not be null"),
        (
            {"url": "https://shop.example/", "http_headers": {"Bad Name": "x"}},
            "http_headers",
            "header names",
        ),
    ],
)
def test_bad_checks_get_a_400_naming_the_field_and_nothing_is_stored(manager, body, field, message):
    response = post(manager, {"kind": "http", "name": "Bad", **body})

    assert response.status_code == 400, response.content
    details = response.json()["details"]
    assert any(d["field"] == field and message in d["message"] for d in details), details
    assert not Check.objects.exists()


def test_a_bad_patch_changes_nothing(manager):
    check = Check(name="Shop", kind=Check.Kind.HTTP, url="https://shop.example/")
    check.save()

    response = patch(manager, check, {"name": "Renamed", "url": "http://169.254.169.254/"})

    assert response.status_code == 400
    check.refresh_from_db()
    assert (check.name, check.url) == ("Shop", "https://shop.example/")
