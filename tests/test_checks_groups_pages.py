"""Check groups in the app: their list (linked from the Checks list), the form that makes or
edits one with its status page, and delete; Viewers read, Operators and Admins change."""

import importlib

import pytest
from django.apps import apps

from accounts.models import AuditEvent
from accounts.permissions import Role
from checks.models import Check, CheckGroup

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, user_with_role):
    client.force_login(user_with_role(Role.OPERATOR, "oncall"))
    return client


@pytest.fixture
def viewer(client, user_with_role):
    client.force_login(user_with_role(Role.VIEWER, "reader"))
    return client


def test_the_checks_list_links_to_the_groups_for_everyone(viewer):
    assert 'href="/checks/groups/"' in viewer.get("/checks/").content.decode()


def test_an_operator_makes_a_group_with_a_public_status_page(operator, client):
    assert operator.get("/checks/groups/new/").status_code == 200

    response = operator.post(
        "/checks/groups/new/", {"name": "Shop", "slug": "shop", "status_page": "on"}
    )

    assert response.status_code == 302 and response.url == "/checks/groups/"
    group = CheckGroup.objects.get()
    assert (group.name, group.slug, group.status_page) == ("Shop", "shop", True)
    assert AuditEvent.objects.filter(action="checkgroup.create", actor_label="oncall").exists()
    listing = operator.get("/checks/groups/").content.decode()
    assert 'href="/status/shop/"' in listing and f"/ping/{group.ping_key}/" in listing
    client.logout()
    assert client.get("/status/shop/").status_code == 200


def test_turning_the_status_page_off_takes_it_down(operator, client):
    group = CheckGroup.objects.create(name="Shop", slug="shop", status_page=True)
    Check.objects.create(name="Cart", kind="heartbeat", group=group)

    response = operator.post(f"/checks/groups/{group.pk}/edit/", {"name": "Shop", "slug": "shop"})

    assert response.status_code == 302
    group.refresh_from_db()
    assert not group.status_page
    event = AuditEvent.objects.get(action="checkgroup.change")
    assert event.details["fields"] == ["status_page"]
    client.logout()
    assert client.get("/status/shop/").status_code == 404


def test_a_taken_or_bad_slug_is_shown_again_with_its_error(operator):
    CheckGroup.objects.create(name="Shop", slug="shop")

    taken = operator.post("/checks/groups/new/", {"name": "Shop 2", "slug": "shop"})
    bad = operator.post("/checks/groups/new/", {"name": "Shop 3", "slug": "no spaces"})

    assert taken.status_code == 400 and "Another group has this slug." in taken.content.decode()
    assert bad.status_code == 400 and "slug" in bad.content.decode().lower()
    assert CheckGroup.objects.count() == 1


def test_deleting_a_group_keeps_its_checks_without_a_group(operator):
    group = CheckGroup.objects.create(name="Batch", slug="batch", status_page=True)
    check = Check.objects.create(name="Export", kind="heartbeat", group=group, slug="export")

    confirm = operator.get(f"/checks/groups/{group.pk}/delete/").content.decode()
    response = operator.post(f"/checks/groups/{group.pk}/delete/")

    assert "Its 1 check stays, without a group and without its slug" in confirm
    assert "/status/batch/, goes away" in confirm
    assert response.status_code == 302
    assert not CheckGroup.objects.exists()
    check.refresh_from_db()
    assert (check.group, check.slug) == (None, "")
    assert AuditEvent.objects.filter(action="checkgroup.delete").exists()


def test_a_check_whose_group_was_deleted_is_saved_again_from_its_form(operator):
    group = CheckGroup.objects.create(name="Batch", slug="batch")
    check = Check.objects.create(name="Export", kind="heartbeat", group=group, slug="export")
    operator.post(f"/checks/groups/{group.pk}/delete/")

    form = operator.get(f"/checks/{check.pk}/edit/").content.decode()
    response = operator.post(
        f"/checks/{check.pk}/edit/",
        {
            "name": "Nightly export",
            "slug": "",
            "period_seconds": "86400",
            "grace_seconds": "3600",
            "time_zone": "UTC",
        },
    )

    assert 'value="export"' not in form
    assert response.status_code == 302
    check.refresh_from_db()
    assert (check.name, check.group, check.slug) == ("Nightly export", None, "")


def test_the_confirm_page_names_the_slugs_of_several_checks(operator):
    group = CheckGroup.objects.create(name="Batch", slug="batch")
    for name in ("Export", "Import"):
        Check.objects.create(name=name, kind="heartbeat", group=group, slug=name.lower())

    confirm = operator.get(f"/checks/groups/{group.pk}/delete/").content.decode()

    assert "Its 2 checks stay, without a group and without their slugs" in confirm


def test_a_viewer_reads_the_groups_without_controls_and_is_refused_changes(viewer):
    group = CheckGroup.objects.create(name="Shop", slug="shop")

    listing = viewer.get("/checks/groups/")

    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Shop" in page
    assert "/checks/groups/new/" not in page and "/edit/" not in page and "/delete/" not in page
    assert viewer.get("/checks/groups/new/").status_code == 403
    assert viewer.post("/checks/groups/new/", {"name": "X", "slug": "x"}).status_code == 403
    assert viewer.post(f"/checks/groups/{group.pk}/edit/", {"name": "X"}).status_code == 403
    assert viewer.post(f"/checks/groups/{group.pk}/delete/").status_code == 403
    assert CheckGroup.objects.get().name == "Shop"


def test_an_upgrade_clears_the_slugs_of_checks_left_by_a_deleted_group():
    migration = importlib.import_module("checks.migrations.0007_clear_slugs_without_group")
    group = CheckGroup.objects.create(name="Batch", slug="batch")
    left = Check.objects.create(name="Export", kind="heartbeat", slug="export")
    grouped = Check.objects.create(name="Import", kind="heartbeat", group=group, slug="import")

    migration.clear_slugs_without_group(apps, None)

    left.refresh_from_db()
    grouped.refresh_from_db()
    assert (left.slug, grouped.slug) == ("", "import")
