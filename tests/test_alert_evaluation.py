"""Rule evaluation: pending → firing → resolved, one alert per episode, instance down, status."""

import importlib
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.apps import apps
from django.db import connection
from django.utils import timezone
from prometheus_client import REGISTRY

from alerts import lifecycle
from alerts.evaluation import RUN_LOCK, evaluate_rules
from alerts.events import ALERTS_GROUP
from alerts.models import Alert, AlertRule, PendingBreach, Silence
from instances import store
from instances.formats import epoch_ms
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

# Ten minutes ago, so that ingest accepts every timestamp the tests derive from it and
# instances (seen "now" by ingest) are not silent at any evaluation time used here.
T0 = (timezone.now() - timedelta(minutes=10)).replace(microsecond=0)
MINUTE = timedelta(minutes=1)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def post(api, agent_id, name, value, when, labels=None, **instance):
    sample = {"name": name, "value": value, "ts": epoch_ms(when), "labels": labels or {}}
    body = {"instance": {"agent_id": agent_id, **instance}, "samples": [sample]}
    response = api.post("/api/v1/ingest", body)
    assert response.status_code == 202, response.content


def post_every_10s(api, agent_id, name, value, start, end, **kwargs):
    for offset in range(int(start), int(end) + 1, 10):
        post(api, agent_id, name, value, at(offset), **kwargs)


def open_alerts():
    return list(Alert.objects.filter(resolved_at__isnull=True))


@pytest.fixture
def cpu_rule():
    """Only this rule: the shipped defaults would fire too."""
    AlertRule.objects.all().delete()
    return AlertRule.objects.create(
        name="CPU hot",
        metric="cpu_usage",
        aggregation="last",
        window=MINUTE,
        comparator=">",
        warning_threshold=80,
        critical_threshold=90,
        for_duration=2 * MINUTE,
    )


@pytest.fixture
def default_rules():
    """The rules the data migration ships (a transactional test's flush removes them)."""
    AlertRule.objects.all().delete()
    migration = importlib.import_module("alerts.migrations.0003_default_rules")
    migration.add_default_rules(apps, None)
    return AlertRule.objects.all()


def test_a_firing_alerts_value_and_message_follow_the_data_at_each_run(api, cpu_rule):
    post_every_10s(api, "web-1", "cpu_usage", 95, 0, 120)
    evaluate_rules(now=at(0))
    evaluate_rules(now=at(120))
    alert = Alert.objects.get()

    post_every_10s(api, "web-1", "cpu_usage", 97, 130, 190)
    evaluate_rules(now=at(190))

    alert.refresh_from_db()
    assert (alert.value, alert.severity, alert.fired_at) == (97, "critical", at(120))
    assert "is 97 (> 90)" in alert.message
    assert Alert.objects.count() == 1


def test_a_breach_stays_pending_for_the_first_minute_then_fires_after_the_for(api, cpu_rule):
    post(api, "web-1", "cpu_usage", 95, at(0))
    evaluate_rules(now=at(0))
    breach = PendingBreach.objects.get()
    assert (breach.since, breach.severity) == (at(0), "critical")
    assert not Alert.objects.exists()

    post_every_10s(api, "web-1", "cpu_usage", 95, 10, 60)
    evaluate_rules(now=at(60))
    assert PendingBreach.objects.get().since == at(0)
    assert not Alert.objects.exists()
    assert api.get("/api/v1/alerts", {"status": "active"}).json()["count"] == 0

    post_every_10s(api, "web-1", "cpu_usage", 95, 70, 120)
    evaluate_rules(now=at(120))
    alert = Alert.objects.get()
    assert (alert.severity, alert.status, alert.source) == ("critical", "active", "rule")
    assert (alert.pending_since, alert.fired_at, alert.rule) == (at(0), at(120), cpu_rule)
    assert alert.value == 95
    assert "cpu_usage last over 1m is 95 (> 90)" in alert.message
    assert not PendingBreach.objects.exists()
    listed = api.get("/api/v1/alerts", {"status": "active"}).json()["items"]
    assert [item["id"] for item in listed] == [str(alert.pk)]
    assert Instance.objects.get(agent_id="web-1").status == "unhealthy"


def test_a_breach_that_recovers_while_pending_never_fires(api, cpu_rule):
    post(api, "web-1", "cpu_usage", 95, at(0))
    evaluate_rules(now=at(0))
    post(api, "web-1", "cpu_usage", 20, at(60))
    evaluate_rules(now=at(60))
    assert not PendingBreach.objects.exists()
    post(api, "web-1", "cpu_usage", 95, at(130))
    evaluate_rules(now=at(130))
    assert not Alert.objects.exists()
    assert PendingBreach.objects.get().since == at(130)


def test_recovery_resolves_and_a_second_breach_opens_a_new_episode(api, cpu_rule):
    post(api, "web-1", "cpu_usage", 85, at(0))
    evaluate_rules(now=at(0))
    post(api, "web-1", "cpu_usage", 85, at(120))
    evaluate_rules(now=at(120))
    first = Alert.objects.get()
    assert first.severity == "warning"
    assert Instance.objects.get(agent_id="web-1").status == "warning"

    post(api, "web-1", "cpu_usage", 30, at(135))
    evaluate_rules(now=at(135))
    first.refresh_from_db()
    assert (first.status, first.resolved_at) == ("resolved", at(135))
    assert Instance.objects.get(agent_id="web-1").status == "healthy"

    post(api, "web-1", "cpu_usage", 99, at(150))
    evaluate_rules(now=at(150))
    assert open_alerts() == []
    post(api, "web-1", "cpu_usage", 99, at(270))
    evaluate_rules(now=at(270))
    second = Alert.objects.get(resolved_at__isnull=True)
    assert second.pk != first.pk
    assert second.fingerprint == first.fingerprint
    assert (second.pending_since, second.fired_at) == (at(150), at(270))
    assert Alert.objects.count() == 2


def test_evaluating_again_at_the_same_moment_changes_nothing(api, cpu_rule):
    cpu_rule.for_duration = timedelta(0)
    cpu_rule.save()
    post(api, "web-1", "cpu_usage", 95, at(0))
    for _ in range(3):
        evaluate_rules(now=at(0))
    assert Alert.objects.count() == 1


def test_two_evaluators_at_once_fire_one_alert(api, cpu_rule):
    cpu_rule.for_duration = timedelta(0)
    cpu_rule.save()
    for agent_id in ("web-1", "web-2", "web-3"):
        post(api, agent_id, "cpu_usage", 95, at(0))
    start = threading.Barrier(2)
    results = []

    def evaluator():
        try:
            start.wait()
            results.append(evaluate_rules(now=at(0)))
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    assert Alert.objects.count() == 3
    assert sorted(Alert.objects.values_list("instance__agent_id", flat=True)) == [
        "web-1",
        "web-2",
        "web-3",
    ]


def test_a_second_evaluator_skips_its_run_while_the_first_holds_it(cpu_rule):
    holder_ready, release = threading.Event(), threading.Event()

    def holder():
        try:
            with store.session_lock(RUN_LOCK) as held:
                assert held
                holder_ready.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    holder_ready.wait(10)
    try:
        assert evaluate_rules(now=at(0)) is None
    finally:
        release.set()
        thread.join()
    assert evaluate_rules(now=at(0)) is not None


def test_default_rules_raise_a_critical_alert_for_cpu_at_99_within_two_and_a_half_minutes(
    api, default_rules
):
    assert default_rules.filter(metric="cpu_usage").exists()
    for second in range(0, 151, 10):
        post(api, "busy-1", "cpu_usage", 99, at(second))
        if second % 15 == 0 or second % 15 == 5:
            evaluate_rules(now=at(second))
    evaluate_rules(now=at(150))
    body = api.get("/api/v1/alerts", {"status": "active"}).json()
    assert [(item["alertType"], item["severity"]) for item in body["items"]] == [
        ("High CPU usage", "critical")
    ]
    assert Instance.objects.get(agent_id="busy-1").status == "unhealthy"


def test_the_worst_matching_series_decides_and_names_itself(api, cpu_rule):
    AlertRule.objects.all().delete()
    rule = AlertRule.objects.create(
        name="Disk full",
        metric="disk_usage",
        label_matchers=[{"label": "mount", "op": "=~", "value": "/(data|var)?"}],
        aggregation="last",
        window=5 * MINUTE,
        warning_threshold=85,
        critical_threshold=95,
        for_duration=timedelta(0),
    )
    post(api, "db-1", "disk_usage", 90, at(0), labels={"mount": "/"})
    post(api, "db-1", "disk_usage", 97, at(0), labels={"mount": "/data"})
    post(api, "db-1", "disk_usage", 99, at(0), labels={"mount": "/boot"})
    evaluate_rules(now=at(10))
    alert = Alert.objects.get(rule=rule)
    assert (alert.severity, alert.value, alert.labels) == ("critical", 97, {"mount": "/data"})
    assert 'disk_usage{mount="/data"}' in alert.message


def test_a_ratio_rule_compares_matching_series_over_all(api, default_rules):
    for second in range(0, 301, 60):
        count = second / 60
        post(
            api, "api-1", "api_requests_total", 90 * count, at(second), labels={"status": "success"}
        )
        post(api, "api-1", "api_requests_total", 10 * count, at(second), labels={"status": "error"})
    evaluate_rules(now=at(300))
    breach = PendingBreach.objects.get(rule__name="LowSuccessRate")
    assert breach.value == pytest.approx(0.9)
    assert breach.severity == "critical"


def test_a_rule_scoped_to_a_region_ignores_other_regions(api, cpu_rule):
    cpu_rule.scope, cpu_rule.scope_value = AlertRule.Scope.REGION, "nyc1"
    cpu_rule.for_duration = timedelta(0)
    cpu_rule.save()
    post(api, "web-nyc", "cpu_usage", 99, at(0), region="nyc1")
    post(api, "web-ams", "cpu_usage", 99, at(0), region="ams3")
    evaluate_rules(now=at(0))
    assert [alert.instance.agent_id for alert in Alert.objects.all()] == ["web-nyc"]


@pytest.mark.parametrize(
    "behaviour, expected",
    [("ok", "resolved"), ("keep", "active"), ("alert", "active")],
)
def test_no_data_follows_the_rule(api, cpu_rule, behaviour, expected):
    cpu_rule.for_duration, cpu_rule.no_data = timedelta(0), behaviour
    cpu_rule.save()
    post(api, "web-1", "cpu_usage", 95, at(0))
    evaluate_rules(now=at(0))
    evaluate_rules(now=at(120))  # the window (one minute) holds no sample any more
    alert = Alert.objects.get()
    assert alert.status == expected
    if behaviour == "alert":
        assert alert.message.startswith("no data for cpu_usage")


def test_an_instance_silent_for_three_intervals_is_down_until_it_reports(api, settings, cpu_rule):
    post(api, "quiet-1", "cpu_usage", 10, at(0))
    later = timezone.now() + timedelta(seconds=3 * settings.AGENT_INTERVAL_SECONDS + 1)
    evaluate_rules(now=later)
    down = Alert.objects.get()
    assert (down.alert_type, down.severity, down.source) == ("instance_down", "critical", "system")
    assert Instance.objects.get(agent_id="quiet-1").status == "unknown"
    evaluate_rules(now=later + MINUTE)
    assert Alert.objects.count() == 1

    post(api, "quiet-1", "cpu_usage", 10, timezone.now())
    evaluate_rules(now=timezone.now())
    down.refresh_from_db()
    assert down.status == "resolved"
    assert Instance.objects.get(agent_id="quiet-1").status == "healthy"


def test_an_agent_alert_counts_for_the_instance_status(api, cpu_rule):
    post(api, "web-1", "cpu_usage", 10, at(0))
    api.post("/api/v1/alerts", {"instanceId": "web-1", "alertType": "disk", "severity": "high"})
    evaluate_rules(now=timezone.now())
    assert Instance.objects.get(agent_id="web-1").status == "warning"


def test_a_silence_marks_the_alerts_it_covers(api, cpu_rule):
    cpu_rule.for_duration = timedelta(0)
    cpu_rule.save()
    post(api, "web-1", "cpu_usage", 95, at(0))
    post(api, "web-2", "cpu_usage", 95, at(0))
    Silence.objects.create(
        instance=Instance.objects.get(agent_id="web-1"), starts_at=at(-60), ends_at=at(600)
    )
    evaluate_rules(now=at(0))
    silenced = dict(Alert.objects.values_list("instance__agent_id", "silenced"))
    assert silenced == {"web-1": True, "web-2": False}
    Silence.objects.update(ends_at=at(5))
    evaluate_rules(now=at(10))
    assert not Alert.objects.filter(silenced=True).exists()


def test_an_alert_change_is_announced_on_the_alerts_group(api, cpu_rule):
    cpu_rule.for_duration = timedelta(0)
    cpu_rule.save()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(ALERTS_GROUP, channel)
    try:
        post(api, "web-1", "cpu_usage", 95, at(0))
        evaluate_rules(now=at(0))
        alert = Alert.objects.get()
        event = async_to_sync(layer.receive)(channel)
        # Alerts fire together, announced as the instances they are on.
        assert event == {"type": "alerts.changed", "instance_ids": [str(alert.instance_id)]}
        lifecycle.acknowledge(alert, note="on it")
        assert async_to_sync(layer.receive)(channel)["status"] == "acknowledged"
    finally:
        async_to_sync(layer.group_discard)(ALERTS_GROUP, channel)


def test_each_run_is_timed_for_the_metrics_endpoint(client, cpu_rule):
    before = REGISTRY.get_sample_value("vigil_alert_evaluation_seconds_count") or 0
    summary = evaluate_rules(now=at(0))
    assert summary.rules == 1 and summary.seconds > 0
    assert REGISTRY.get_sample_value("vigil_alert_evaluation_seconds_count") == before + 1
    assert b"vigil_alert_evaluation_seconds_bucket" in client.get("/metrics").content


def test_a_disabled_rule_resolves_its_open_alerts(api, cpu_rule):
    cpu_rule.for_duration = timedelta(0)
    cpu_rule.save()
    post(api, "web-1", "cpu_usage", 95, at(0))
    evaluate_rules(now=at(0))
    AlertRule.objects.update(enabled=False)
    evaluate_rules(now=at(10))
    assert Alert.objects.get().status == "resolved"


def test_window_values_returns_one_row_per_matching_series_with_or_without_data(api):
    post(api, "web-1", "disk_usage", 50, at(0), labels={"mount": "/"})
    post(api, "web-1", "disk_usage", 70, at(-300), labels={"mount": "/data"})
    post(api, "web-1", "disk_usage", 90, at(0), labels={"mount": "/boot"})
    rows = store.window_values(
        "disk_usage",
        [{"label": "mount", "op": "!=", "value": "/boot"}],
        None,
        at(-60),
        at(0),
        "max",
    )
    assert sorted((row.labels["mount"], row.value) for row in rows) == [("/", 50), ("/data", None)]
