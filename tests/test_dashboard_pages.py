"""The dashboard's pages and HTMX partials render for a logged-in user, from real rows."""

from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from accounts.permissions import Role
from alerts.models import Alert
from instances import store
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HX-Request": "true"}


def add_samples(instance, name, values, unit="percent", labels=None, step=timedelta(seconds=30)):
    """Store ``values`` for one series of ``instance``, the last one now."""
    key = store.SeriesKey(name, labels or {}, unit)
    series_id = store.resolve_series(instance.pk, [key])[(name, key.labels_key)]
    now = timezone.now()
    rows = [
        (series_id, now - step * (len(values) - 1 - i), value) for i, value in enumerate(values)
    ]
    store.write_samples(rows)
    return series_id


@pytest.fixture
def user(user_with_role):
    """An Operator: these tests read every page and act on alerts."""
    return user_with_role(Role.OPERATOR, "operator")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def fleet(db):
    """Three instances in two regions, with cpu and memory samples and two alerts."""
    now = timezone.now()
    web = Instance.objects.create(
        agent_id="web-1", name="Web One", type="vm", region="nyc1", status="healthy", last_seen=now
    )
    db_ = Instance.objects.create(
        agent_id="db-1",
        name="Database",
        type="db",
        region="ams3",
        status="unhealthy",
        last_seen=now,
    )
    cache = Instance.objects.create(
        agent_id="cache-1", name="Cache", type="vm", region="ams3", status="warning", last_seen=now
    )
    for instance, base in ((web, 20), (db_, 70), (cache, 40)):
        add_samples(instance, "cpu_usage", [base + i for i in range(10)])
        add_samples(instance, "memory_usage", [base / 2 + i for i in range(10)])
    add_samples(web, "disk_usage", [50, 51], labels={"mount": "/"})
    add_samples(web, "disk_usage", [10, 11], labels={"mount": "/boot"})
    critical = Alert.objects.create(
        instance=db_, alert_type="HighCpu", severity="critical", message="CPU at 95%"
    )
    warning = Alert.objects.create(
        instance=cache, alert_type="HighMemory", severity="warning", message="memory 88%"
    )
    return {"web": web, "db": db_, "cache": cache, "critical": critical, "warning": warning}


def test_overview_shows_cards_grid_alerts_and_events(logged_in, fleet):
    response = logged_in.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Overview" in html
    for name in ("Web One", "Database", "Cache"):
        assert name in html
    assert "Samples/s ingested" in html
    assert "HighCpu" in html and "Acknowledge" in html
    assert "Recent events" in html
    assert "<polyline points=" in html
    assert 'ws-connect="/ws/overview/"' in html


def test_overview_counts_instances_and_alerts(logged_in, fleet):
    summary = logged_in.get("/").context["summary"]
    assert summary.total == 3
    assert summary.by_status == {"healthy": 1, "warning": 1, "unhealthy": 1, "unknown": 0}
    assert (summary.active_alerts, summary.critical_alerts) == (2, 1)
    assert summary.samples_per_second > 0


def test_filters_narrow_the_grid_in_an_htmx_partial(logged_in, fleet):
    response = logged_in.get(
        "/", {"region": "ams3"}, headers={**HTMX, "HX-Target": "instance-grid"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="instance-grid"')
    assert "Database" in html and "Cache" in html and "Web One" not in html
    assert "<html" not in html


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"status": "unhealthy"}, ["Database"]),
        ({"type": "vm"}, ["Cache", "Web One"]),
        ({"q": "web"}, ["Web One"]),
        ({"q": "nothing-like-it"}, []),
    ],
)
def test_each_filter_narrows_the_grid(logged_in, fleet, query, names):
    response = logged_in.get("/", query)
    assert [card.instance.name for card in response.context["cards"]] == names


def test_polling_fallback_answers_every_part_out_of_band(logged_in, fleet):
    response = logged_in.get("/", headers={**HTMX, "HX-Target": "overview-poll"})
    html = response.content.decode()
    for part in ("summary", "instance-grid", "recent-alerts", "open-groups", "recent-events"):
        assert f'id="{part}"' in html
    assert html.count('hx-swap-oob="true"') == 5


def test_acknowledge_button_changes_the_alert_and_answers_its_row(logged_in, fleet, user):
    alert = fleet["critical"]
    response = logged_in.post(f"/alerts/{alert.pk}/acknowledge", {"layout": "item"}, headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<li id="alert-{alert.pk}"')
    assert "acknowledged" in html and "Acknowledge</button>" not in html
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by == user


def test_acknowledge_without_htmx_redirects_back(logged_in, fleet):
    alert = fleet["warning"]
    response = logged_in.post(f"/alerts/{alert.pk}/acknowledge", headers={"Referer": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    alert.refresh_from_db()
    assert alert.status == "acknowledged"


def test_acknowledge_needs_post_and_login(client, fleet):
    alert = fleet["warning"]
    assert client.post(f"/alerts/{alert.pk}/acknowledge").status_code == 302  # to the login
    alert.refresh_from_db()
    assert alert.status == "active"


def test_instance_page_has_a_chart_per_metric_and_its_alerts(logged_in, fleet):
    db_ = fleet["db"]
    response = logged_in.get(f"/instances/{db_.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Database" in html and "HighCpu" in html
    assert [chart.name for chart in response.context["charts"]] == ["cpu_usage", "memory_usage"]
    assert "plotly/plotly.min.js" in html and "data-figure=" in html
    assert f'ws-connect="/ws/instances/{db_.pk}/' in html


def test_instance_page_draws_a_line_per_label_set(logged_in, fleet):
    response = logged_in.get(f"/instances/{fleet['web'].pk}/")
    disk = next(chart for chart in response.context["charts"] if chart.name == "disk_usage")
    assert disk.series_count == 2
    names = [trace["name"] for trace in orjson.loads(disk.figure)["data"]]
    assert names == ["mount=/", "mount=/boot"]


def test_instance_page_draws_counters_as_per_second_rates(logged_in, fleet):
    step = timedelta(seconds=15)
    for interface, per_second in (("eth0", 100), ("eth1", 250)):
        values = [float(i * per_second * 15) for i in range(41)]
        add_samples(
            fleet["web"], "network_bytes_total", values, "bytes", {"interface": interface}, step
        )
    add_samples(
        fleet["web"], "requests", [0, 300, 600, 900, 1200], "counter", step=timedelta(minutes=1)
    )

    response = logged_in.get(f"/instances/{fleet['web'].pk}/", {"range": "15m"})

    charts = {chart.name: chart for chart in response.context["charts"]}
    network, requests = charts["network_bytes_total"], charts["requests"]
    assert (network.unit, requests.unit) == ("bytes/s", "/s")
    traces = orjson.loads(network.figure)["data"]
    assert [trace["name"] for trace in traces] == ["interface=eth0", "interface=eth1"]
    assert [trace["y"][-1] for trace in traces] == [pytest.approx(100), pytest.approx(250)]
    assert orjson.loads(requests.figure)["data"][0]["y"][-1] == pytest.approx(5)
    assert "bytes/s" in response.content.decode()
    assert orjson.loads(charts["cpu_usage"].figure)["data"][0]["y"][-1] == 29


@pytest.mark.parametrize("key", ["15m", "1h", "6h", "24h", "7d", "30d"])
def test_time_range_partial_keeps_the_range(logged_in, fleet, key):
    response = logged_in.get(
        f"/instances/{fleet['web'].pk}/",
        {"range": key},
        headers={**HTMX, "HX-Target": "instance-charts"},
    )
    assert response.status_code == 200
    assert response.context["time_range"].key == key
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="instance-charts"')
    assert f'value="{key}" checked' in html


def test_custom_time_range_comes_from_the_query(logged_in, fleet):
    response = logged_in.get(
        f"/instances/{fleet['web'].pk}/",
        {"range": "custom", "start": "2026-01-01T00:00", "end": "2026-01-02T00:00"},
    )
    time_range = response.context["time_range"]
    assert (time_range.key, time_range.seconds) == ("custom", 86400)
    assert 'value="2026-01-01T00:00"' in response.content.decode()


def test_interval_refresh_reloads_the_charts_over_http(logged_in, fleet):
    response = logged_in.get(f"/instances/{fleet['web'].pk}/", {"refresh": "30s"})
    assert 'hx-trigger="every 30s"' in response.content.decode()


def test_unknown_instance_is_404(logged_in, db):
    assert logged_in.get("/instances/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_alerts_page_filters_by_status_severity_and_instance(logged_in, fleet):
    response = logged_in.get("/alerts/")
    assert response.status_code == 200
    assert {a.alert_type for a in response.context["alerts"]} == {"HighCpu", "HighMemory"}
    critical = logged_in.get("/alerts/", {"severity": "critical"}, headers=HTMX)
    assert [a.alert_type for a in critical.context["alerts"]] == ["HighCpu"]
    assert "<html" not in critical.content.decode()
    of_cache = logged_in.get("/alerts/", {"instance": str(fleet["cache"].pk)})
    assert [a.alert_type for a in of_cache.context["alerts"]] == ["HighMemory"]
    resolved = logged_in.get("/alerts/", {"status": "resolved"})
    assert resolved.context["alerts"] == []


def test_resolve_with_a_note_answers_the_table_row(logged_in, fleet):
    alert = fleet["warning"]
    response = logged_in.post(
        f"/alerts/{alert.pk}/resolve", {"layout": "row", "note": "restarted it"}, headers=HTMX
    )
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="alert-row-{alert.pk}"')
    assert "restarted it" in html
    alert.refresh_from_db()
    assert (alert.status, alert.note) == ("resolved", "restarted it")


def test_static_assets_come_from_our_packages(logged_in, db):
    html = logged_in.get("/").content.decode()
    assert "/static/django_htmx/htmx-2.min.js" in html
    assert "/static/django_htmx/ext/hx-ws-2.min.js" in html
    assert "<script>" not in html and "style=" not in html
    for path in (
        "/static/plotly/plotly.min.js",
        "/static/django_htmx/htmx-2.min.js",
        "/static/js/live.js",
        "/static/css/vigil.css",
    ):
        assert logged_in.get(path).status_code == 200, path
