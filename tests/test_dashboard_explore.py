"""Explore runs PromQL over real samples: a line per returned series, a table of latest values,
CSV, the engine's refusals as readable 4xx, the query builder and the query box's suggestions."""

import csv
import io
import re
from datetime import timedelta
from html import unescape

import orjson
import pytest
from django.utils import timezone

from accounts.permissions import Role
from dashboard import explore
from instances import store
from instances.models import Instance
from tests.test_dashboard_pages import HTMX, add_samples, fleet  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

RATES = "sum by (interface) (rate(network_bytes_total[1m]))"
STEP = timedelta(seconds=15)


@pytest.fixture
def viewer(client, user_with_role):
    client.force_login(user_with_role(Role.VIEWER, "viewer"))
    return client


@pytest.fixture
def interfaces(db):
    """edge-1 sends two interfaces' byte counters every 15 s for twenty minutes: eth0 grows by
    100 bytes a second, eth1 by 250."""
    edge = Instance.objects.create(agent_id="edge-1", name="Edge")
    for interface, per_second in (("eth0", 100), ("eth1", 250)):
        values = [float(i * per_second * STEP.seconds) for i in range(81)]
        add_samples(edge, "network_bytes_total", values, "bytes", {"interface": interface}, STEP)
    return edge


def figure_of(response) -> dict:
    return orjson.loads(response.context["result"].figure)


def suggested(client, text: str, cursor: int | None = None) -> list[str]:
    """What the query box offers: each suggestion's inserted text."""
    params = {"promql": text, "range": "1h"}
    if cursor is not None:
        params["cursor"] = cursor
    response = client.get("/explore/suggest", params, headers=HTMX)
    assert response.status_code == 200
    return [unescape(found) for found in re.findall(r'data-insert="([^"]*)"', response.text)]


def test_a_query_draws_a_line_per_returned_series(viewer, interfaces):
    response = viewer.get("/explore/", {"promql": RATES, "range": "15m"})

    assert response.status_code == 200
    traces = figure_of(response)["data"]
    assert [trace["name"] for trace in traces] == ['{interface="eth0"}', '{interface="eth1"}']
    assert [trace["y"][-1] for trace in traces] == [pytest.approx(100), pytest.approx(250)]
    html = response.content.decode()
    assert "2 series" in html and "Download CSV" in html


def test_the_table_shows_each_series_latest_value(viewer, interfaces):
    response = viewer.get("/explore/", {"promql": RATES, "range": "15m"})

    rows = response.context["result"].latest_values()
    assert [row.legend for row in rows] == ['{interface="eth0"}', '{interface="eth1"}']
    assert [float(row.value) for row in rows] == [pytest.approx(100), pytest.approx(250)]
    assert "<code>{interface=&quot;eth1&quot;}</code>" in response.content.decode()


def test_a_series_legend_names_the_metric_and_its_labels(viewer, interfaces):
    response = viewer.get("/explore/", {"promql": 'network_bytes_total{interface="eth0"}'})

    names = [trace["name"] for trace in figure_of(response)["data"]]
    assert names == ['network_bytes_total{instance="edge-1", interface="eth0"}']


def test_a_scalar_is_drawn_under_its_query(viewer, db):
    response = viewer.get("/explore/", {"promql": "1 + 1", "range": "15m"})

    traces = figure_of(response)["data"]
    assert [(trace["name"], trace["y"][-1]) for trace in traces] == [("1 + 1", 2)]


def test_a_malformed_query_answers_400_with_the_engine_message_under_the_box(viewer, db):
    response = viewer.get("/explore/", {"promql": "rate(cpu_usage[5m]"})

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="promql-error"' in html and "bad_data" in html
    assert 'aria-invalid="true"' in html
    assert 'value="rate(cpu_usage[5m]"' in html


def test_a_refused_query_over_htmx_says_so_for_the_page_script(viewer, db):
    response = viewer.get("/explore/", {"promql": '"just a string"'}, headers=HTMX)

    assert response.status_code == 400
    assert response["Vigil-Query-Error"] == "bad_data"
    assert 'invalid expression type "string" for range query' in unescape(response.text)


def test_a_query_over_too_many_samples_answers_422(viewer, interfaces, settings):
    settings.PROMQL_MAX_SAMPLES = 10

    response = viewer.get("/explore/", {"promql": RATES, "range": "15m"})

    assert response.status_code == 422
    assert "too many samples" in response.content.decode()


def test_a_step_can_be_given_and_a_bad_one_is_refused(viewer, interfaces):
    chosen = viewer.get("/explore/", {"promql": RATES, "range": "15m", "step": "1m"})
    bad = viewer.get("/explore/", {"promql": RATES, "range": "15m", "step": "soon"})

    assert chosen.context["result"].step == "1m"
    assert len(figure_of(chosen)["data"][0]["x"]) == 16
    assert bad.status_code == 400
    assert 'cannot parse "soon" to a valid duration' in unescape(bad.text)


def test_the_step_follows_the_range_unless_given(viewer, interfaces):
    response = viewer.get("/explore/", {"promql": RATES, "range": "24h"})

    assert response.context["result"].step == "10m"
    assert 'placeholder="auto: 10m"' in response.content.decode()


def test_an_htmx_run_pushes_the_url_of_the_query(viewer, interfaces):
    response = viewer.get("/explore/", {"promql": RATES, "range": "6h"}, headers=HTMX)

    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="explore">')
    assert response["HX-Push-Url"] == (
        "/explore/?promql=sum+by+%28interface%29+%28rate%28network_bytes_total%5B1m%5D%29%29"
        "&range=6h"
    )


def test_only_the_first_series_are_drawn_and_the_rest_counted(viewer, db):
    web = Instance.objects.create(agent_id="web-1", name="Web One")
    keys = [store.SeriesKey("queue_depth", {"queue": f"q{n:03}"}, "") for n in range(101)]
    ids = store.resolve_series(web.pk, keys)
    minute_ago = timezone.now() - timedelta(minutes=1)
    store.write_samples([(series_id, minute_ago, 1.0) for series_id in ids.values()])

    response = viewer.get("/explore/", {"promql": "queue_depth", "range": "15m"})

    assert len(figure_of(response)["data"]) == explore.MAX_SERIES
    assert "101 series" in response.content.decode()
    assert "the first 100 drawn" in response.content.decode()


@pytest.mark.usefixtures("fleet")
def test_the_builder_writes_the_promql_and_runs_it(viewer):
    response = viewer.get(
        "/explore/",
        {
            "promql": "up",
            "instance": "web-1",
            "metric": "cpu_usage",
            "aggregation": "avg",
            "build": "1",
            "range": "1h",
        },
    )

    assert response.context["query"].promql == 'avg_over_time(cpu_usage{instance="web-1"}[5m])'
    assert 'value="avg_over_time(cpu_usage{instance=&quot;web-1&quot;}[5m])"' in response.text
    assert len(figure_of(response)["data"]) == 1


@pytest.mark.usefixtures("fleet")
def test_a_link_with_only_the_builder_fields_runs_their_query(viewer):
    response = viewer.get(
        "/explore/",
        {"metric": "disk_usage", "labels": "mount=/boot", "aggregation": "max", "range": "1h"},
    )

    assert response.context["query"].promql == 'max_over_time(disk_usage{mount="/boot"}[5m])'
    assert [trace["name"] for trace in figure_of(response)["data"]] == [
        '{instance="web-1", mount="/boot"}'
    ]


@pytest.mark.usefixtures("fleet")
def test_the_builder_lists_the_chosen_instance_metrics(viewer, interfaces):
    response = viewer.get(
        "/explore/", {"instance": "web-1"}, headers={**HTMX, "HX-Target": "builder-metric"}
    )

    assert response.content.decode().startswith('<select name="metric" id="builder-metric">')
    assert response.context["metrics"] == ["cpu_usage", "disk_usage", "memory_usage"]


@pytest.mark.usefixtures("fleet")
def test_without_a_query_the_page_says_how_to_start(viewer):
    response = viewer.get("/explore/")

    assert response.status_code == 200
    assert "Type a PromQL query" in response.content.decode()
    assert "cpu_usage" in response.context["metrics"]


def test_csv_has_a_row_per_series_and_step_with_label_columns(viewer, interfaces):
    response = viewer.get("/explore/data.csv", {"promql": RATES, "range": "15m", "step": "1m"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time_utc", "interface", "value"]
    assert {row[1] for row in rows[1:]} == {"eth0", "eth1"}
    assert float(rows[-1][2]) == pytest.approx(250)
    assert len(rows) == 1 + 2 * 16


def test_csv_of_a_refused_query_is_a_400_with_the_message(viewer, db):
    response = viewer.get("/explore/data.csv", {"promql": "sum by (("})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")


def test_metric_names_are_suggested_as_they_are_typed(viewer, interfaces):
    assert suggested(viewer, "sum(rate(network_b") == ["network_bytes_total"]


def test_function_names_are_suggested_with_their_parenthesis(viewer, interfaces):
    assert "rate(" in suggested(viewer, "rat")
    assert "histogram_quantile(" in suggested(viewer, "histogram_q")


def test_nothing_is_suggested_once_a_name_is_complete(viewer, interfaces):
    assert suggested(viewer, "network_bytes_total") == []


@pytest.mark.usefixtures("fleet")
def test_label_names_are_suggested_after_a_brace(viewer, interfaces):
    assert suggested(viewer, "network_bytes_total{") == ['instance="', 'interface="']
    assert suggested(viewer, 'network_bytes_total{interface="eth0", ins') == ['instance="']


@pytest.mark.usefixtures("fleet")
def test_label_values_are_suggested_after_the_operator(viewer, interfaces):
    assert suggested(viewer, 'network_bytes_total{interface="') == ['eth0"', 'eth1"']
    assert suggested(viewer, 'network_bytes_total{interface="eth') == ['eth0"', 'eth1"']
    assert suggested(viewer, "network_bytes_total{interface=") == ['"eth0"', '"eth1"']
    assert suggested(viewer, 'network_bytes_total{instance="') == ['edge-1"']


@pytest.mark.usefixtures("fleet")
def test_values_are_narrowed_by_the_matchers_before_them(viewer, interfaces):
    assert suggested(viewer, 'cpu_usage{instance="') == ['cache-1"', 'db-1"', 'web-1"']
    assert suggested(viewer, 'disk_usage{mount="/boot", instance="') == ['web-1"']


def test_suggestions_use_the_text_before_the_cursor(viewer, interfaces):
    text = 'network_bytes_total{interface=""}'
    assert suggested(viewer, text, cursor=len(text) - 2) == ['eth0"', 'eth1"']


def test_label_names_are_suggested_in_a_grouping(viewer, interfaces):
    assert suggested(viewer, "sum by (inter") == ["interface"]
    assert suggested(viewer, "sum by (interface) (rate(network_bytes_total[1") == []
