import time
from datetime import UTC, datetime, timedelta

import pytest

from instances.models import Instance

NOW_MS = int(time.time() * 1000)
HOUR_MS = 3_600_000


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def post_metrics(api, instance_id, name, values, **tags):
    """``values`` as ``{epoch ms: value}``."""
    batch = [
        {
            "instanceId": instance_id,
            "metricName": name,
            "metricValue": value,
            "timestamp": ts,
            "tags": tags,
        }
        for ts, value in values.items()
    ]
    assert api.post("/api/v1/metrics", batch).status_code == 201


def post_alert(api, instance_id, severity, status="active"):
    body = {"instanceId": instance_id, "alertType": f"t_{severity}", "severity": severity}
    alert = api.post("/api/v1/alerts", body).json()
    if status != "active":
        assert api.put(f"/api/v1/alerts/{alert['id']}", {"status": status}).status_code == 200
    return alert


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_of_an_empty_vigil_is_all_zeros(api):
    response = api.get("/api/v1/analytics/dashboard")
    assert response.status_code == 200
    assert response.json() == {
        "summary": {
            "totalInstances": 0,
            "healthyInstances": 0,
            "activeAlerts": 0,
            "criticalAlerts": 0,
            "avgLatency": 0,
        },
        "instances": [],
        "recentAlerts": [],
        "recentMetrics": [],
    }


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_summarises_instances_alerts_and_latency(api):
    post_metrics(api, "web-1", "response_time", {NOW_MS - 60_000: 999, NOW_MS: 100})
    post_metrics(api, "web-2", "latency", {NOW_MS: 200})
    post_metrics(api, "web-2", "cpu_usage", {NOW_MS - 1000: 50})
    Instance.register("quiet")
    post_alert(api, "web-1", "critical")
    post_alert(api, "web-1", "warning")
    post_alert(api, "web-2", "critical", status="resolved")
    post_alert(api, "web-2", "high", status="acknowledged")
    body = api.get("/api/v1/analytics/dashboard").json()
    assert body["summary"] == {
        "totalInstances": 3,
        "healthyInstances": 2,
        "activeAlerts": 2,
        "criticalAlerts": 1,
        "avgLatency": 150,
    }
    assert {item["agentId"] for item in body["instances"]} == {"web-1", "web-2", "quiet"}
    assert [a["alertType"] for a in body["recentAlerts"]] == [
        "t_high",
        "t_critical",
        "t_warning",
        "t_critical",
    ]
    assert [m["metricValue"] for m in body["recentMetrics"]] == [100, 200, 50, 999]
    assert set(body["recentMetrics"][0]) == {
        "id", "instanceId", "metricName", "metricValue", "unit", "timestamp", "tags"
    }  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_the_dashboard_shows_the_newest_10_alerts_and_20_metrics(api):
    post_metrics(api, "web-1", "cpu_usage", {NOW_MS - i * 1000: i for i in range(25)})
    for n in range(12):  # twelve problems: one problem posted again stays one alert
        body = {"instanceId": "web-1", "alertType": f"t_info_{n}", "severity": "info"}
        assert api.post("/api/v1/alerts", body).status_code == 201
    body = api.get("/api/v1/analytics/dashboard").json()
    assert len(body["recentAlerts"]) == 10
    assert [m["metricValue"] for m in body["recentMetrics"]] == list(range(20))


@pytest.mark.django_db(transaction=True)
def test_analytics_aggregates_each_instance_metric_over_the_last_day_by_default(api):
    post_metrics(api, "web-1", "cpu_usage", {NOW_MS - 2000: 10, NOW_MS - 1000: 30}, core="0")
    post_metrics(api, "web-1", "cpu_usage", {NOW_MS - 1500: 20, NOW_MS - 500: 40}, core="1")
    post_metrics(api, "web-1", "cpu_usage", {NOW_MS - 25 * HOUR_MS: 99})
    post_metrics(api, "web-2", "memory_usage", {NOW_MS: 70})
    web_1 = str(Instance.objects.get(agent_id="web-1").pk)
    response = api.get("/api/v1/analytics")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert datetime.fromisoformat(body["endDate"]) - datetime.fromisoformat(
        body["startDate"]
    ) == timedelta(hours=24)
    cpu = next(item for item in body["items"] if item["metricName"] == "cpu_usage")
    assert cpu == {
        "instanceId": web_1,
        "metricName": "cpu_usage",
        "count": 4,
        "min": 10,
        "max": 40,
        "avg": 25,
        "latest": 40,
    }


@pytest.mark.django_db(transaction=True)
def test_analytics_filters_by_window_instance_and_metric(api):
    post_metrics(api, "web-1", "cpu_usage", {NOW_MS - 3 * HOUR_MS: 1, NOW_MS - HOUR_MS: 2})
    post_metrics(api, "web-1", "memory_usage", {NOW_MS - HOUR_MS: 3})
    post_metrics(api, "web-2", "cpu_usage", {NOW_MS - HOUR_MS: 4})

    def items(**params):
        response = api.get("/api/v1/analytics", params)
        assert response.status_code == 200, response.content
        return {(i["metricName"], i["count"], i["latest"]) for i in response.json()["items"]}

    window = {"startDate": iso(NOW_MS - 4 * HOUR_MS), "endDate": iso(NOW_MS - 2 * HOUR_MS)}
    assert items(**window) == {("cpu_usage", 1, 1)}
    assert items(instanceId="web-1") == {("cpu_usage", 2, 2), ("memory_usage", 1, 3)}
    assert items(metricName="cpu_usage") == {("cpu_usage", 2, 2), ("cpu_usage", 1, 4)}
    assert items(instanceId="web-2", metricName="memory_usage") == set()
    assert items(instanceId="nobody") == set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "params, field",
    [
        ({"startDate": "2026-01-02T00:00:00Z", "endDate": "2026-01-01T00:00:00Z"}, "startDate"),
        ({"startDate": "2026-01-02T00:00:00"}, "startDate"),
        ({"endDate": "soon"}, "endDate"),
        ({"endDate": "0001-01-01T00:00:00.0Z"}, "endDate"),
        ({"startDate": "1969-12-31T23:59:59Z"}, "startDate"),
        ({"endDate": "9999-12-31T23:59:59-01:00"}, "endDate"),
    ],
)
def test_a_bad_window_is_400_naming_the_field(api, params, field):
    response = api.get("/api/v1/analytics", params)
    assert response.status_code == 400
    assert [detail["field"] for detail in response.json()["details"]] == [field]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "params",
    [
        {"startDate": "1970-01-01T00:00:00Z", "endDate": "1970-01-02T00:00:00Z"},
        {"endDate": "9999-12-31T23:59:59.999Z"},
    ],
)
def test_the_first_and_last_moments_a_window_may_name_answer_200(api, params):
    response = api.get("/api/v1/analytics", params)
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["/api/v1/analytics", "/api/v1/analytics/dashboard"])
def test_analytics_need_a_token_and_a_read_token_is_enough(client, read_token, path):
    assert client.get(path).status_code == 401
    reader = {"Authorization": f"Bearer {read_token}"}
    assert client.get(path, headers=reader).status_code == 200
