"""Pages that stay fast on a large fleet: the overview's grid and the alerts list come in pages
a user can still search and filter, and an instance page draws its first charts and loads the
rest as they scroll into view."""

import re

import pytest
from django.utils import timezone

from accounts.permissions import Role
from alerts.models import Alert
from dashboard import instance_page, overview
from dashboard.views import ALERTS_PAGE_SIZE
from instances.models import Instance
from tests.test_dashboard_pages import HTMX, add_samples

pytestmark = pytest.mark.django_db(transaction=True)

CARD = re.compile(r'id="instance-(?P<pk>[0-9a-f-]{36})" class="instance-card')
ALERT_ROW = re.compile(r'<tr id="alert-')


@pytest.fixture
def logged_in(client, user_with_role):
    client.force_login(user_with_role(Role.VIEWER, "viewer"))
    return client


@pytest.fixture
def big_fleet(db) -> list[Instance]:
    """Five more instances than one grid page holds, named in order; every tenth unhealthy."""
    now = timezone.now()
    return Instance.objects.bulk_create(
        Instance(
            agent_id=f"host-{n:03d}",
            name=f"host-{n:03d}",
            status="unhealthy" if n % 10 == 0 else "healthy",
            last_seen=now,
        )
        for n in range(overview.GRID_PAGE_SIZE + 5)
    )


def card_names(response) -> list[str]:
    ids = [match["pk"] for match in CARD.finditer(response.content.decode())]
    names = dict(Instance.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [names[Instance._meta.pk.to_python(pk)] for pk in ids]


def test_overview_grid_shows_one_page_and_the_pager_reaches_the_rest(logged_in, big_fleet):
    first = logged_in.get("/")
    assert card_names(first) == [f"host-{n:03d}" for n in range(overview.GRID_PAGE_SIZE)]
    assert f"{overview.GRID_PAGE_SIZE + 5} instances" in first.content.decode()
    assert 'name="page" value="2"' in first.content.decode()

    second = logged_in.get("/", {"page": "2"}, headers={**HTMX, "HX-Target": "instance-grid"})
    expected = [f"host-{n:03d}" for n in range(overview.GRID_PAGE_SIZE, len(big_fleet))]
    assert card_names(second) == expected
    assert '<input type="hidden" name="page" value="2" form="grid-filters">' in (
        second.content.decode()
    )
    # A page past the end (a bookmark from a bigger fleet) shows the last one.
    assert card_names(logged_in.get("/", {"page": "40"})) == expected


def test_search_and_filters_find_an_instance_beyond_the_first_page(logged_in, big_fleet):
    last = big_fleet[-1].name
    assert last not in card_names(logged_in.get("/"))
    found = logged_in.get(
        "/", {"q": last, "page": "2"}, headers={**HTMX, "HX-Target": "instance-grid"}
    )
    assert card_names(found) == [last]
    assert "1 instance matching the filters" in found.content.decode()
    unhealthy = logged_in.get("/", {"status": "unhealthy"})
    assert card_names(unhealthy) == [one.name for one in big_fleet if one.status == "unhealthy"]
    assert 'aria-label="Instance pages"' not in unhealthy.content.decode()


def test_overview_socket_pushes_the_page_its_filters_name(big_fleet):
    view = overview.LiveView(filters=overview.OverviewFilters(page=2))
    html, shown = overview.live_fragment(view, frozenset())
    assert shown.shown_ids == tuple(str(one.pk) for one in big_fleet[overview.GRID_PAGE_SIZE :])
    assert 'id="instance-grid" hx-swap-oob="true"' in html
    # The same page again: only the updated cards are sent.
    updated = str(big_fleet[-1].pk)
    html, _ = overview.live_fragment(shown, frozenset({updated}))
    assert 'id="instance-grid"' not in html
    assert CARD.findall(html) == [updated]
    # One more instance changes the count the grid shows: the grid is sent whole again.
    Instance.objects.create(agent_id="host-999", name="host-999")
    html, _ = overview.live_fragment(shown, frozenset())
    assert f"{len(big_fleet) + 1} instances" in html


def test_alerts_page_comes_in_pages_newest_first(logged_in, big_fleet):
    now = timezone.now()
    Alert.objects.bulk_create(
        Alert(
            instance=big_fleet[n % len(big_fleet)],
            alert_type=f"Check{n}",
            fingerprint=f"check-{n}",
            message=f"problem number {n}",
            created_at=now - timezone.timedelta(minutes=n),
        )
        for n in range(ALERTS_PAGE_SIZE + 3)
    )
    first = logged_in.get("/alerts/").content.decode()
    assert len(ALERT_ROW.findall(first)) == ALERTS_PAGE_SIZE
    assert f"{ALERTS_PAGE_SIZE + 3} alerts · 1–{ALERTS_PAGE_SIZE} shown" in first
    assert "Check0" in first
    assert f"Check{ALERTS_PAGE_SIZE + 2}" not in first
    older = logged_in.get("/alerts/", {"page": "2"}, headers=HTMX).content.decode()
    assert len(ALERT_ROW.findall(older)) == 3
    assert "Page 2 of 2" in older
    assert f"Check{ALERTS_PAGE_SIZE + 2}" in older
    # The instance filter takes an instance's id (shown as its name) or part of a name.
    chosen = big_fleet[1]
    narrowed = logged_in.get("/alerts/", {"instance": str(chosen.pk)}).content.decode()
    assert f'name="instance" value="{chosen.name}"' in narrowed
    assert len(ALERT_ROW.findall(narrowed)) == Alert.objects.filter(instance=chosen).count()
    by_name = logged_in.get("/alerts/", {"instance": "host-00"}).content.decode()
    expected = Alert.objects.filter(instance__name__startswith="host-00").count()
    assert len(ALERT_ROW.findall(by_name)) == expected >= 10


def test_instance_page_draws_its_first_charts_and_loads_the_rest_on_request(logged_in, db):
    instance = Instance.objects.create(agent_id="wide", name="Wide", last_seen=timezone.now())
    names = [f"metric_{n:02d}" for n in range(instance_page.EAGER_CHARTS + 2)]
    for name in names:
        for shard in ("a", "b"):
            add_samples(instance, name, [10, 20, 30], labels={"shard": shard})
    page = logged_in.get(f"/instances/{instance.pk}/").content.decode()
    assert page.count("data-figure=") == instance_page.EAGER_CHARTS
    lazy = re.findall(r'hx-get="([^"]+)" hx-trigger="intersect once"', page)
    assert [url.rsplit("chart=", 1)[1] for url in lazy] == names[instance_page.EAGER_CHARTS :]
    chart = logged_in.get(lazy[0].replace("&amp;", "&"), headers=HTMX)
    assert chart.status_code == 200
    body = chart.content.decode()
    assert body.count("data-figure=") == 1
    assert names[instance_page.EAGER_CHARTS] in body
    assert logged_in.get(f"/instances/{instance.pk}/", {"chart": "nothing_here"}).status_code == 404
