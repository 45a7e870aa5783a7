import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from accounts.permissions import Role
from ingestion.federation import parse_selector
from tests.prometheus_services import needs_prometheus, prometheus, query, wait_until

NOW_MS = int(time.time() * 1000)


def ingest(api, agent_id, samples):
    body = {"instance": {"agent_id": agent_id}, "samples": samples}
    assert api.post("/api/v1/ingest", body).status_code == 202


def sample(name, value, ts=None, **labels):
    return {"name": name, "value": value, "ts": NOW_MS if ts is None else ts, "labels": labels}


@pytest.fixture(autouse=True)
def fresh_now(monkeypatch):
    """Each test's "now": federation looks back minutes, and a long suite outlasts that."""
    monkeypatch.setattr(sys.modules[__name__], "NOW_MS", int(time.time() * 1000))


def federate(client, *selectors, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get("/federate", {"match[]": list(selectors)}, headers=headers)


def exposed(response) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): (s.value, s.timestamp)
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }


def test_a_selector_parses_into_matchers():
    assert parse_selector('node_load1{job="node", mode!="idle",cpu=~"1|2", x!~\'a"b\'}') == [
        {"label": "__name__", "op": "=", "value": "node_load1"},
        {"label": "job", "op": "=", "value": "node"},
        {"label": "mode", "op": "!=", "value": "idle"},
        {"label": "cpu", "op": "=~", "value": "1|2"},
        {"label": "x", "op": "!~", "value": 'a"b'},
    ]
    assert parse_selector('{__name__=~"node_.*"}') == [
        {"label": "__name__", "op": "=~", "value": "node_.*"}
    ]
    assert parse_selector(' up{instance="a\\\\b\\"c",} ') == [
        {"label": "__name__", "op": "=", "value": "up"},
        {"label": "instance", "op": "=", "value": 'a\\b"c'},
    ]


@pytest.mark.parametrize(
    "selector",
    ['{job=~".*"}', "{}", "up{job=node}", 'up{job="node"', "up extra", 'up{job~"x"}', '{a=~"("}'],
)
def test_malformed_or_match_everything_selectors_are_refused(selector, client, token):
    with pytest.raises(ValueError):
        parse_selector(selector)
    assert federate(client, selector, token=token).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_federate_gives_the_latest_value_of_matching_series_in_text_format(api, client, token):
    ingest(api, "web-1", [
        sample("cpu_usage", 10, NOW_MS - 20_000), sample("cpu_usage", 12.5),
        sample("disk_usage", 40, mount="/"), sample("disk_usage", 70, mount="/var"),
        sample("memory_usage", 50),
    ])  # fmt: skip
    ingest(api, "web-2", [sample("cpu_usage", 99, path='a\\b"c\nd')])
    response = federate(client, "cpu_usage", 'disk_usage{mount!="/"}', token=token)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert exposed(response) == {
        ("cpu_usage", (("instance", "web-1"),)): (12.5, NOW_MS / 1000),
        ("cpu_usage", (("instance", "web-2"), ("path", 'a\\b"c\nd'))): (99.0, NOW_MS / 1000),
        ("disk_usage", (("instance", "web-1"), ("mount", "/var"))): (70.0, NOW_MS / 1000),
    }
    assert response.content.decode().count("# TYPE cpu_usage untyped") == 1


@pytest.mark.django_db(transaction=True)
def test_instance_and_regex_matchers(api, client, token):
    ingest(api, "web-1", [sample("cpu_usage", 1), sample("memory_usage", 2)])
    ingest(api, "db-1", [sample("cpu_usage", 3)])
    response = federate(client, '{__name__=~"cpu_.*|memory_usage", instance="web-1"}', token=token)
    assert set(exposed(response)) == {
        ("cpu_usage", (("instance", "web-1"),)),
        ("memory_usage", (("instance", "web-1"),)),
    }


@pytest.mark.django_db
def test_federate_needs_a_token_or_a_session(client, user_with_role, read_token):
    assert federate(client, "up").status_code == 401
    assert federate(client, "up", token="vgl_not-a-token").status_code == 401
    assert federate(client, "up", token=read_token).status_code == 200
    client.force_login(user_with_role(None))
    assert federate(client, "up").status_code == 401
    client.force_login(user_with_role(Role.VIEWER, "viewer"))
    assert federate(client, "up").status_code == 200


@pytest.mark.django_db
def test_federate_without_match_is_400(client, token):
    assert client.get("/federate", headers={"Authorization": f"Bearer {token}"}).status_code == 400


@needs_prometheus
@pytest.mark.django_db(transaction=True)
def test_a_prometheus_scraping_federate_gets_vigils_series(api, live_server, token, tmp_path):
    ingest(api, "fed-host", [sample("memory_usage", 42.5, int(time.time() * 1000))])
    host = live_server.url.removeprefix("http://")
    config = f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vigil
    honor_labels: true
    metrics_path: /federate
    params:
      'match[]': ['memory_usage', 'cpu_usage']
    authorization:
      credentials: {token}
    static_configs:
      - targets: ['{host}']
"""
    with prometheus(tmp_path, config) as url:
        result = wait_until(
            lambda: query(url, 'memory_usage{instance="fed-host"}'),
            timeout=60,
            what="Prometheus to hold memory_usage from Vigil's /federate",
        )
    assert result[0]["metric"] == {
        "__name__": "memory_usage", "instance": "fed-host", "job": "vigil"
    }  # fmt: skip
    assert float(result[0]["value"][1]) == 42.5
