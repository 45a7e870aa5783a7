"""Django admin in an Admin's hands: no way up to superuser, and a trail of what they changed."""

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.permissions import Role
from ingestion.models import IngestToken
from instances.models import Instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss(user_with_role):
    return user_with_role(Role.ADMIN, "boss")


@pytest.fixture
def admin(boss, confirm_password) -> Client:
    client = Client()
    client.force_login(boss)
    confirm_password(client)
    return client


def test_an_admin_cannot_make_themselves_superuser(admin, boss):
    response = admin.post(
        reverse("admin:auth_user_change", args=[boss.pk]),
        {
            "username": "boss",
            "email": "boss@example.com",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": list(boss.groups.values_list("pk", flat=True)),
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    boss.refresh_from_db()
    assert not boss.is_superuser
    assert not boss.user_permissions.exists()


def test_an_admin_cannot_take_over_a_superuser(admin, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="a long root passphrase")

    change = admin.post(
        reverse("admin:auth_user_password_change", args=[root.pk]),
        {"password1": "taken over at last 42", "password2": "taken over at last 42"},
    )
    delete = admin.post(reverse("admin:auth_user_delete", args=[root.pk]), {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    root.refresh_from_db()
    assert root.check_password("a long root passphrase")


def test_scrape_targets_instances_and_tokens_changed_in_admin_are_audited(admin):
    instance = Instance.register("web-1")
    token, _ = IngestToken.issue("web-1 agent")

    added = admin.post(
        reverse("admin:ingestion_scrapetarget_add"),
        {
            "instance": instance.pk,
            "url": "https://web-1.example.com:9100/metrics",
            "interval_seconds": 30,
        },
    )
    target = instance.scrape_targets.get()
    token_deleted = admin.post(
        reverse("admin:ingestion_ingesttoken_delete", args=[token.pk]), {"post": "yes"}
    )
    instance_deleted = admin.post(
        reverse("admin:instances_instance_delete", args=[instance.pk]), {"post": "yes"}
    )

    assert [added.status_code, token_deleted.status_code, instance_deleted.status_code] == [302] * 3
    events = AuditEvent.objects.filter(actor_label="boss")
    assert set(events.values_list("action", "target_id")) >= {
        ("scrapetarget.create", str(target.pk)),
        ("token.delete", str(token.pk)),
        ("instance.delete", str(instance.pk)),
    }
