"""A group's public status page: its checks' names, states and uptimes, without login, and
nothing internal (targets, reasons, ids, ping keys) on it."""

import pytest

from checks.models import Check, CheckGroup
from checks.probes import ProbeResult
from tests.test_checks_badges import probed

pytestmark = pytest.mark.django_db


@pytest.fixture
def group() -> CheckGroup:
    return CheckGroup.objects.create(name="Acme services", slug="acme", status_page=True)


def member(group: CheckGroup, name: str, **fields) -> Check:
    check = Check(name=name, group=group, **fields)
    check.save()
    return check


def test_the_status_page_shows_names_states_and_uptime_without_login(client, group):
    shop = member(group, "Shop", kind=Check.Kind.HTTP, url="https://shop.internal.example/health")
    probed(shop, True, True, True, False)
    member(group, "Billing", kind=Check.Kind.TCP, host="10.1.2.3", port=5432)

    response = client.get("/status/acme/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Acme services" in page
    assert "<strong>Shop</strong>" in page and "<strong>Billing</strong>" in page
    assert '<span class="badge check-up">up</span>' in page
    assert '<span class="badge check-new">new</span>' in page
    assert "75.00%" in page
    assert "All services operational" in page


def test_the_status_page_leaks_no_targets_reasons_or_keys(client, group):
    shop = member(group, "Shop", kind=Check.Kind.HTTP, url="https://shop.internal.example/health")
    Check.record_probes(
        [(shop.pk, shop.created, ProbeResult(False, 0.1, "HTTP 503 from upstream"))]
    )
    Check.record_probes(
        [(shop.pk, shop.created, ProbeResult(False, 0.1, "HTTP 503 from upstream"))]
    )
    job = member(group, "Nightly export", kind=Check.Kind.HEARTBEAT, slug="nightly-export")

    page = client.get("/status/acme/").content.decode()

    shop.refresh_from_db()
    assert shop.state == Check.State.DOWN
    assert '<span class="badge check-down">down</span>' in page
    assert "1 of 2 services in trouble" in page
    for secret in (
        "shop.internal.example",
        "503",
        "upstream",
        str(shop.pk),
        str(job.pk),
        job.slug,
        group.ping_key,
        shop.badge_key,
        "/checks/",
        "/instances/",
    ):
        assert secret not in page, secret


def test_groups_without_a_status_page_and_unknown_slugs_are_not_found(client):
    CheckGroup.objects.create(name="Internal", slug="internal", status_page=False)

    assert client.get("/status/internal/").status_code == 404
    assert client.get("/status/nowhere/").status_code == 404
