"""Dashboards people build, through the Django test client over real samples: the list, a
dashboard's grid of panels (each its own HTMX request), every panel type drawn from PromQL, a
refused query as the panel's own error, editing as versions with rollback, JSON export/import, and
Viewers refused every edit."""

import html
import re
from datetime import timedelta

import orjson
import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.permissions import Role
from dashboard.models import Dashboard, DashboardStar, DashboardVersion, Panel
from dashboard.timerange import INPUT_FORMAT
from instances.models import Instance
from query import shared_reads
from tests.test_dashboard_pages import add_samples

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
STEP = timedelta(seconds=15)


@pytest.fixture
def operator(client, user_with_role):
    client.force_login(user_with_role(Role.OPERATOR, "operator"))
    return client


@pytest.fixture
def viewer(client, user_with_role):
    client.force_login(user_with_role(Role.VIEWER, "viewer"))
    return client


@pytest.fixture
def hosts(db):
    """web-1 and web-2 report cpu_usage every 15 s for ten minutes (web-1 at 40 %, web-2 at
    95 %) and web-1 a byte counter growing by 1000 bytes a second."""
    web1 = Instance.objects.create(agent_id="web-1", name="Web 1")
    web2 = Instance.objects.create(agent_id="web-2", name="Web 2")
    add_samples(web1, "cpu_usage", [40.0] * 41, step=STEP)
    add_samples(web2, "cpu_usage", [95.0] * 41, step=STEP)
    counter = [float(i * 15_000) for i in range(41)]
    add_samples(web1, "network_bytes_total", counter, "bytes", {"interface": "eth0"}, STEP)
    return web1, web2


def board_with(*panels: dict, variables=None) -> Dashboard:
    return Dashboard.create_from_dict(
        {"title": "Web tier", "tags": ["web"], "variables": variables or [], "panels": panels},
        owner=None,
    )


def panel_of(board: Dashboard, client, params=None):
    panel = board.panels.get()
    return client.get(f"/dashboards/{board.pk}/panels/{panel.pk}/", params or {}, headers=HTMX)


CPU = {"expr": "cpu_usage", "legend": "{{instance}}"}
THRESHOLDS = [{"value": 80, "color": "orange"}, {"value": 90, "color": "red"}]


def test_the_list_shows_each_dashboard_with_its_tags_and_panel_count(viewer):
    board_with({"type": "text", "text": "hi"}, {"type": "text", "text": "there"})
    Dashboard.objects.create(title="Databases", tags=["db"])

    response = viewer.get("/dashboards/", {"tag": "web"})

    assert response.status_code == 200
    assert [board.title for board in response.context["dashboards"]] == ["Web tier"]
    assert response.context["dashboards"][0].panel_count == 2
    # Beside the tags of the shipped dashboards.
    assert {"db", "web"} <= set(response.context["all_tags"])


def test_a_dashboard_page_loads_each_panel_with_the_chosen_variables(viewer, hosts):
    board = board_with(
        {"type": "timeseries", "title": "CPU", "queries": [CPU], "width": 8},
        {"type": "stat", "title": "Peak", "queries": [CPU], "width": 4},
        variables=[{"name": "host", "kind": "query", "query": "label_values(cpu_usage, instance)"}],
    )

    response = viewer.get(f"/dashboards/{board.pk}/", {"var-host": "web-2", "range": "15m"})

    assert response.status_code == 200
    for panel in board.panels.all():
        assert re.search(
            f'hx-get="/dashboards/{board.pk}/panels/{panel.pk}/'
            r'\?var-host=web-2&amp;range=15m&amp;load=[0-9a-f]{32}"',
            response.text,
        )
    assert 'class="panel board-panel board-panel-timeseries span-8 rows-4"' in response.text
    # A Viewer gets no edit controls.
    assert "Add panel" not in response.text and "/edit/" not in response.text


def panel_urls(page) -> list[str]:
    """The panels' URLs as a dashboard page gives them to the browser."""
    return [html.unescape(url) for url in re.findall(r'hx-get="([^"]+/panels/[^"]+)"', page.text)]


def shown(client, url) -> list[str]:
    return [value.text for value in client.get(url, headers=HTMX).context["shown"].values]


def test_the_panels_of_one_page_load_share_their_reads_of_samples(viewer, hosts, monkeypatch):
    board = board_with(
        {"type": "stat", "title": "Reporting", "queries": [{"expr": "count(cpu_usage)"}]},
        {"type": "stat", "title": "Peak", "queries": [{"expr": "max(cpu_usage)"}]},
    )
    # A fixed range, so the panels' reads are of one window however slowly the test runs, and
    # reads kept for long enough.
    now = timezone.localtime()
    page = {
        "range": "custom",
        "start": (now - timedelta(hours=1)).strftime(INPUT_FORMAT),
        "end": (now + timedelta(minutes=5)).strftime(INPUT_FORMAT),
    }
    monkeypatch.setattr(shared_reads, "SHARED_READ_SECONDS", 600.0)
    reporting, peak = panel_urls(viewer.get(f"/dashboards/{board.pk}/", page))
    assert shown(viewer, reporting) == ["2"]

    add_samples(Instance.objects.create(agent_id="web-3"), "cpu_usage", [99.0] * 41, step=STEP)

    # The other panel of the load draws the samples read for the first: web-3 is not in them.
    assert shown(viewer, peak) == ["95"]
    # The next load reads again, and so does a request without a load.
    reporting, peak = panel_urls(viewer.get(f"/dashboards/{board.pk}/", page))
    assert shown(viewer, reporting) == ["3"]
    assert shown(viewer, peak.replace("&load=", "&other=")) == ["99"]
    # Once a read is no longer kept (as a refresh finds it), the load's panels read again.
    monkeypatch.setattr(shared_reads, "SHARED_READ_SECONDS", 0.0)
    reporting, _ = panel_urls(viewer.get(f"/dashboards/{board.pk}/", page))
    assert shown(viewer, reporting) == ["3"]
    add_samples(Instance.objects.create(agent_id="web-4"), "cpu_usage", [99.0] * 41, step=STEP)
    assert shown(viewer, reporting) == ["4"]


def test_a_time_series_panel_draws_every_query_with_its_legend_format(viewer, hosts):
    queries = [
        {"expr": 'cpu_usage{instance=~"$host"}', "legend": "{{instance}} cpu"},
        {"expr": "rate(network_bytes_total[$__rate_interval])", "legend": ""},
    ]
    variables = [
        {"name": "host", "kind": "custom", "options": ["web-1", "web-2"], "include_all": True}
    ]
    board = board_with(
        {"type": "timeseries", "queries": queries, "unit": "percent"}, variables=variables
    )

    response = panel_of(board, viewer, {"range": "15m"})

    assert response.status_code == 200
    figure = orjson.loads(response.context["shown"].figure)
    assert [trace["name"] for trace in figure["data"]] == [
        "web-1 cpu",
        "web-2 cpu",
        '{instance="web-1", interface="eth0"}',
    ]
    assert figure["data"][2]["y"][-1] == pytest.approx(1000)
    assert figure["layout"]["yaxis"]["ticksuffix"] == "%"


def test_a_stat_panel_shows_each_latest_value_in_its_threshold_colour(viewer, hosts):
    board = board_with(
        {"type": "stat", "queries": [CPU], "unit": "percent", "thresholds": THRESHOLDS}
    )

    response = panel_of(board, viewer)

    values = response.context["shown"].values
    assert [(value.name, value.text, value.colour) for value in values] == [
        ("web-1", "40 %", ""),
        ("web-2", "95 %", "red"),
    ]
    assert 'class="stat-value threshold-red"' in response.text
    assert orjson.loads(response.context["shown"].figure)["data"][0]["type"] == "scatter"


def test_a_gauge_panel_draws_a_dial_per_series_over_its_range(viewer, hosts):
    board = board_with(
        {"type": "gauge", "queries": [CPU], "unit": "percent", "thresholds": THRESHOLDS}
    )

    figure = orjson.loads(panel_of(board, viewer).context["shown"].figure)

    assert [trace["type"] for trace in figure["data"]] == ["indicator", "indicator"]
    assert [trace["value"] for trace in figure["data"]] == [40, 95]
    assert figure["data"][1]["gauge"]["axis"]["range"] == [0, 100]
    # Red, at or above 90: the theme's colour, which charts.js resolves.
    assert figure["data"][1]["gauge"]["bar"]["color"] == "var(--unhealthy-text)"
    # Two dials share the panel: each labelled at its min and max only (charts.js lays them
    # out, and drops the labels of a dial drawn too small for them).
    assert [trace["title"]["text"] for trace in figure["data"]] == ["web-1", "web-2"]
    assert figure["data"][1]["gauge"]["axis"]["ticktext"] == ["0 %", "", "100 %"]


def test_a_bar_gauge_panel_draws_a_bar_per_series_with_its_value_written(viewer, hosts):
    board = board_with(
        {"type": "bargauge", "queries": [CPU], "decimals": 1, "max": 200, "thresholds": THRESHOLDS}
    )

    figure = orjson.loads(panel_of(board, viewer).context["shown"].figure)

    (bars,) = figure["data"]
    assert bars["y"] == ["web-1", "web-2"] and bars["x"] == [40, 95]
    assert bars["text"] == ["40.0", "95.0"]
    assert figure["layout"]["xaxis"]["range"] == [0, 200]


def test_a_table_panel_has_a_column_per_label_and_the_latest_value(viewer, hosts):
    board = board_with({"type": "table", "queries": [{"expr": "max by (instance) (cpu_usage)"}]})

    shown = panel_of(board, viewer).context["shown"]

    assert shown.columns == ["instance", "Value"]
    assert shown.rows == [["web-1", "40"], ["web-2", "95"]]


def test_a_text_panel_renders_markdown_without_raw_html(viewer):
    board = board_with(
        {"type": "text", "text": "# Runbook\n<script>alert(1)</script> [x](javascript:alert(1))"}
    )

    response = panel_of(board, viewer)

    assert "<h1>Runbook</h1>" in response.text
    assert "<script>" not in response.text and 'href="javascript' not in response.text


def test_a_refused_query_is_the_panel_s_own_error(viewer, hosts):
    board = board_with({"type": "timeseries", "queries": [{"expr": "rate(cpu_usage[5m]"}]})

    response = panel_of(board, viewer)

    assert response.status_code == 400
    assert response["Vigil-Query-Error"] == "bad_data"
    assert 'class="query-error" role="alert"' in response.text


def test_a_panel_saved_through_the_form_is_a_new_version(operator, hosts):
    board = board_with({"type": "text", "title": "Notes", "text": "hello"})

    response = operator.post(
        f"/dashboards/{board.pk}/panels/new/",
        {
            "type": "timeseries",
            "title": "CPU",
            "width": 12,
            "height": 4,
            "queries": "cpu_usage\nmax(cpu_usage)",
            "legends": "{{instance}}",
            "thresholds": "90 red, 80 orange",
            "note": "CPU added",
        },
    )

    assert response.status_code == 302
    board.refresh_from_db()
    cpu = board.panels.get(title="CPU")
    assert cpu.queries == [
        {"expr": "cpu_usage", "legend": "{{instance}}"},
        {"expr": "max(cpu_usage)", "legend": ""},
    ]
    assert cpu.thresholds == THRESHOLDS and cpu.y == 4  # under the text panel
    assert board.version == 2
    kept = board.versions.get()
    assert kept.version == 1 and kept.note == "CPU added"
    audited = AuditEvent.objects.get(action="dashboard.change")
    assert (audited.actor_label, audited.details) == (
        "operator",
        {"version": 2, "note": "CPU added"},
    )
    assert [panel["title"] for panel in kept.data["panels"]] == ["Notes"]


def test_the_panel_form_previews_the_panel_without_saving_it(operator, hosts):
    board = board_with(variables=[{"name": "host", "kind": "custom", "options": ["web-2"]}])
    preview = f"/dashboards/{board.pk}/panels/preview"
    panel = {"type": "stat", "width": 6, "height": 4, "unit": "percent", "thresholds": "90 red"}

    shown = operator.post(
        preview, {**panel, "queries": 'cpu_usage{instance="$host"}'}, headers=HTMX
    )
    refused = operator.post(preview, {**panel, "queries": "rate(cpu_usage[5m]"}, headers=HTMX)
    unfinished = operator.post(preview, {**panel, "queries": ""}, headers=HTMX)

    assert shown.status_code == 200
    assert [(value.text, value.colour) for value in shown.context["shown"].values] == [
        ("95 %", "red")
    ]
    assert refused.status_code == 400 and refused["Vigil-Query-Error"] == "bad_data"
    assert "No preview yet: Queries: A panel other than text needs a query." in unfinished.text
    assert not board.panels.exists() and board.versions.count() == 0


def test_a_rollback_brings_back_an_earlier_version_and_keeps_the_current_one(operator):
    board = board_with({"type": "text", "title": "Notes", "text": "hello"})
    operator.post(
        f"/dashboards/{board.pk}/edit/",
        {
            "title": "Renamed",
            "tags": "a, b",
            "time_range": "6h",
            "refresh": "1m",
            "variables": "[]",
        },
    )
    panel = board.panels.get()
    operator.post(f"/dashboards/{board.pk}/panels/{panel.pk}/delete")

    response = operator.post(f"/dashboards/{board.pk}/versions/1/rollback")

    assert response.status_code == 302
    board.refresh_from_db()
    assert (board.title, board.tags, board.time_range, board.version) == (
        "Web tier",
        ["web"],
        "1h",
        4,
    )
    assert [panel.title for panel in board.panels.all()] == ["Notes"]
    assert list(board.versions.values_list("version", flat=True)) == [3, 2, 1]
    assert DashboardVersion.objects.get(dashboard=board, version=3).data["panels"] == []


def titles(board: Dashboard) -> list[tuple[str, int]]:
    return [(panel.title, panel.width) for panel in board.panels.all()]


def test_the_panel_menu_moves_duplicates_and_resizes_as_new_versions(operator):
    board = board_with(*({"type": "text", "title": name, "text": name} for name in "ABC"))
    a, b, c = board.panels.all()
    arrange = f"/dashboards/{board.pk}/panels/{{}}/arrange".format

    moved = operator.post(arrange(c.pk), {"op": "move:-1"})
    operator.post(arrange(a.pk), {"op": "move:-1"})  # already first: stays
    operator.post(arrange(a.pk), {"op": "duplicate"})
    operator.post(arrange(b.pk), {"op": "width:12"})

    assert moved.status_code == 302
    assert titles(board) == [("A", 6), ("A", 6), ("C", 6), ("B", 12)]
    board.refresh_from_db()
    assert board.version == 5
    assert list(board.versions.values_list("note", flat=True)) == [
        "Panel B 12 columns wide",
        "Panel A duplicated",
        "Panel A moved",
        "Panel C moved",
    ]


def test_a_width_that_is_not_a_preset_is_refused(operator):
    board = board_with({"type": "text", "title": "A", "text": "a"})
    panel = board.panels.get()
    response = operator.post(f"/dashboards/{board.pk}/panels/{panel.pk}/arrange", {"op": "width:7"})
    assert response.status_code == 400
    assert titles(board) == [("A", 6)] and board.versions.count() == 0


def test_an_exported_dashboard_imports_as_a_copy(operator):
    board = board_with(
        {"type": "stat", "title": "CPU", "queries": [CPU], "thresholds": THRESHOLDS},
        variables=[{"name": "mode", "kind": "custom", "options": ["user"]}],
    )
    exported = operator.get(f"/dashboards/{board.pk}/export.json")

    response = operator.post("/dashboards/import/", {"definition": exported.content.decode()})

    assert response.status_code == 302
    copy = Dashboard.objects.exclude(pk=board.pk).get(title=board.title)
    assert copy.to_dict() == board.to_dict() == orjson.loads(exported.content)
    assert AuditEvent.objects.filter(action="dashboard.import").count() == 1


def test_an_import_with_an_unknown_panel_type_is_refused(operator):
    definition = orjson.dumps({"title": "X", "panels": [{"type": "heatmap"}]}).decode()
    response = operator.post("/dashboards/import/", {"definition": definition})
    assert response.status_code == 400
    assert not Dashboard.objects.filter(title="X").exists()


def test_a_viewer_is_refused_every_edit(viewer):
    board = board_with({"type": "text", "text": "hello"})
    panel = board.panels.get()
    edits = [
        ("get", "/dashboards/new/"),
        ("post", "/dashboards/new/"),
        ("post", "/dashboards/import/"),
        ("post", f"/dashboards/{board.pk}/edit/"),
        ("post", f"/dashboards/{board.pk}/delete"),
        ("post", f"/dashboards/{board.pk}/versions/1/rollback"),
        ("post", f"/dashboards/{board.pk}/panels/new/"),
        ("post", f"/dashboards/{board.pk}/panels/preview"),
        ("post", f"/dashboards/{board.pk}/panels/{panel.pk}/edit/"),
        ("post", f"/dashboards/{board.pk}/panels/{panel.pk}/arrange"),
        ("post", f"/dashboards/{board.pk}/panels/{panel.pk}/delete"),
    ]
    assert [getattr(viewer, method)(url).status_code for method, url in edits] == [403] * 11
    assert Panel.objects.filter(pk=panel.pk).exists() and board.versions.count() == 0


def test_a_star_puts_a_dashboard_first_in_its_user_s_list_only(viewer, client, user_with_role):
    board_with({"type": "text", "text": "a"})
    later = Dashboard.objects.create(title="Zebra")

    starred = viewer.post(f"/dashboards/{later.pk}/star", headers=HTMX)
    mine = viewer.get("/dashboards/", {"starred": "1"})
    listed = [board.title for board in viewer.get("/dashboards/").context["dashboards"]]
    client.force_login(user_with_role(Role.VIEWER, "someone-else"))
    theirs = [board.title for board in client.get("/dashboards/").context["dashboards"]]

    assert starred.status_code == 200 and 'aria-pressed="true"' in starred.text
    assert [board.title for board in mine.context["dashboards"]] == ["Zebra"]
    assert listed[0] == "Zebra" and theirs[-1] == "Zebra"
    assert DashboardStar.objects.get().dashboard == later


def test_a_second_star_unstars(viewer):
    board = board_with({"type": "text", "text": "a"})
    viewer.post(f"/dashboards/{board.pk}/star")
    response = viewer.post(f"/dashboards/{board.pk}/star")
    assert response.status_code == 302 and not DashboardStar.objects.exists()


def test_an_import_that_is_not_json_says_so(operator):
    response = operator.post("/dashboards/import/", {"definition": "{title: x"})
    assert response.status_code == 400
    assert "Not JSON" in response.text
