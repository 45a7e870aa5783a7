"""PromQL alerting rules: a Prometheus rule file imported into Vigil gives the alerts real
Prometheus gives with the same file on the same data."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command

from alerts.evaluation import evaluate_rules
from alerts.models import Alert, AlertRule, PendingBreach
from alerts.rule_files import RuleFileError, import_rules
from instances import store
from instances.models import VIGIL_AGENT_ID, Instance, Series
from tests.prometheus_services import needs_node_exporter, needs_prometheus
from tests.promql_compare import (
    SCRAPE_SECONDS,
    differences,
    feeding_vigil,
    get_json,
    results,
    unix,
)

RULES = """
groups:
  - name: hosts
    rules:
      - alert: TargetUp
        expr: up == 1
        labels: {severity: info}
        annotations:
          summary: "{{ $labels.job }} at {{ $labels.instance }} answers"
      - alert: Goroutines
        expr: go_goroutines > 1
        for: 6s
        labels: {severity: warning, team: ops}
        annotations:
          summary: "{{ $labels.instance }} runs goroutines"
      - alert: CpuModes
        expr: sum by (instance, mode) (rate(node_cpu_seconds_total[20s])) >= 0
        for: 4s
        labels: {severity: critical}
      - alert: TargetsCounted
        expr: count(up) > 0
      - alert: UpForLong
        expr: up == 1
        for: 10m
      - alert: NothingAbsent
        expr: absent(up)
      - record: job:up:sum
        expr: sum by (job) (up)
"""


@pytest.mark.django_db(transaction=True)
@needs_prometheus
@needs_node_exporter
def test_imported_rules_fire_and_pend_as_in_prometheus(live_server, token, tmp_path):
    rules_file = tmp_path / "rules.yml"
    rules_file.write_text(RULES)
    call_command("import_rules", str(rules_file))
    AlertRule.objects.filter(expr="").update(enabled=False)
    # Prometheus remote-writes its rules' ALERTS series too; those of `count(up) > 0` carry no
    # job or instance label, which Vigil's remote write needs: the external label gives one.
    extra = f"rule_files: ['{rules_file}']"
    with feeding_vigil(tmp_path, live_server.url, token, 40, extra_config=extra) as fed:
        prometheus_url, end_ms = fed
        # Vigil's evaluation runs over the last 30 s of the data, every scrape interval.
        for back in range(30, -1, -SCRAPE_SECONDS):
            evaluate_rules(now=datetime.fromtimestamp(end_ms / 1000 - back, tz=UTC))
        theirs = get_json(f"{prometheus_url}/api/v1/alerts")["data"]["alerts"]
        # What Vigil recorded (on its own instance: Prometheus remote-writes its recordings
        # too) reads as what Prometheus recorded.
        params = urlencode({"time": unix(end_ms)})
        recorded = {
            "vigil": results(get_json(
                f"{live_server.url}/prometheus/api/v1/query?{params}&"
                + urlencode({"query": f'sum by (job) (job:up:sum{{instance="{VIGIL_AGENT_ID}"}})'}),
                {"Authorization": f"Bearer {token}"},
            )),
            "prometheus": results(get_json(
                f"{prometheus_url}/api/v1/query?{params}&"
                + urlencode({"query": "sum by (job) (job:up:sum)"})
            )),
        }  # fmt: skip
    assert recorded["prometheus"] and differences(recorded["vigil"], recorded["prometheus"]) is None

    expected = {
        (alert["labels"]["alertname"], labels_without_alertname(alert), alert["state"])
        for alert in theirs
    }
    firing = Alert.objects.filter(rule__expr__gt="", resolved_at__isnull=True)
    pending = PendingBreach.objects.filter(rule__expr__gt="")
    ours = {(a.alert_type, frozenset(a.labels.items()), "firing") for a in firing} | {
        (b.rule.name, frozenset(b.labels.items()), "pending") for b in pending
    }
    assert {name for name, _, _ in expected} == {
        "TargetUp", "Goroutines", "CpuModes", "TargetsCounted", "UpForLong",
    }  # fmt: skip
    assert ours == expected
    summaries = {
        (a["labels"]["alertname"], labels_without_alertname(a)): a["annotations"].get("summary")
        for a in theirs
        if a["state"] == "firing" and a["annotations"].get("summary")
    }
    for alert in firing:
        key = (alert.alert_type, frozenset(alert.labels.items()))
        if key in summaries:
            assert alert.message == summaries[key]
    by_name = {alert.alert_type: alert for alert in firing}
    assert by_name["CpuModes"].severity == Alert.Severity.CRITICAL
    assert by_name["TargetUp"].instance.agent_id in {
        label_value for alert in theirs for label_value in [alert["labels"].get("instance")]
    }
    # A series without an instance label is an alert of Vigil itself.
    assert by_name["TargetsCounted"].instance == Instance.vigil()


def labels_without_alertname(alert: dict) -> frozenset:
    return frozenset((k, v) for k, v in alert["labels"].items() if k != "alertname")


T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def disk_usage(db):
    """Two mounts of one host: / at 95 %, /data at 40 %."""
    host = Instance.register("db-1")
    for mount, value in (("/", 95.0), ("/data", 40.0)):
        series = Series.objects.create(
            instance=host, name="disk_used_percent", labels={"mount": mount}
        )
        store.write_samples([(series.pk, T0 + timedelta(seconds=15 * i), value) for i in range(40)])
    AlertRule.objects.filter(expr="").update(enabled=False)
    return host


def test_a_promql_rule_fires_once_per_series_after_its_for_and_resolves_when_it_ends(
    disk_usage,
):
    rule = AlertRule.objects.create(
        name="DiskFull",
        expr="disk_used_percent > 90",
        for_duration=timedelta(minutes=1),
        labels={"severity": "critical"},
        annotations={
            "summary": "{{ $labels.mount }} on {{ $labels.instance }} is {{ $value }}% full"
        },
    )

    evaluate_rules(now=T0 + timedelta(minutes=2))
    assert PendingBreach.objects.filter(rule=rule).count() == 1
    assert not Alert.objects.filter(rule=rule).exists()

    evaluate_rules(now=T0 + timedelta(minutes=3, seconds=5))
    alert = Alert.objects.get(rule=rule)
    assert alert.instance == disk_usage
    assert alert.severity == Alert.Severity.CRITICAL
    assert alert.labels == {"instance": "db-1", "mount": "/", "severity": "critical"}
    assert alert.message == "/ on db-1 is 95% full"

    # The series ends (its samples stop): past the 5-minute lookback the alert resolves.
    evaluate_rules(now=T0 + timedelta(minutes=20))
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_a_rule_file_with_errors_is_refused_whole_naming_the_rule(db):
    bad = RULES.replace("expr: go_goroutines > 1", "expr: go_goroutines >")

    with pytest.raises(RuleFileError, match="Goroutines"):
        import_rules(bad)
    assert not AlertRule.objects.filter(expr__gt="").exists()
    with pytest.raises(RuleFileError, match="groups"):
        import_rules("alert: nothing")
    with pytest.raises(RuleFileError, match="duration"):
        import_rules(RULES.replace("for: 6s", "for: soon"))
    with pytest.raises(RuleFileError, match="limit not supported"):
        import_rules(RULES.replace("for: 6s", "for: 6s\n        limit: 1"))
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_rules", "/nonexistent/rules.yml")


def test_importing_again_updates_the_rules_by_name(db):
    first = import_rules(RULES)
    second = import_rules(RULES.replace("for: 6s", "for: 1m"))

    assert {"Goroutines", "job:up:sum"} <= set(first.created)
    assert "Goroutines" in second.updated and not second.created
    assert AlertRule.objects.get(name="Goroutines").for_duration == timedelta(minutes=1)


def test_a_promql_rule_needs_a_valid_expression_and_severity(db):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="expr"):
        AlertRule(name="Broken", expr="sum(").full_clean()
    with pytest.raises(ValidationError, match="severity"):
        AlertRule(name="Odd", expr="up == 0", labels={"severity": "page"}).full_clean()
    AlertRule(name="Fine", expr="up == 0", labels={"severity": "critical"}).full_clean()


def test_a_recording_rule_stores_what_its_expression_returns(disk_usage):
    from alerts.models import RecordingRule

    RecordingRule.objects.create(
        record="instance:disk_used_percent:max",
        expr="max by (instance) (disk_used_percent)",
        labels={"team": "storage"},
    )
    at = T0 + timedelta(minutes=5)

    evaluate_rules(now=at)

    series = Series.objects.get(name="instance:disk_used_percent:max")
    assert series.instance == disk_usage
    assert series.labels == {"team": "storage"}
    arrays = store.sample_arrays([series.pk], 0, int(at.timestamp() * 1000), limit=10)
    assert arrays.value.tolist() == [95.0]


def test_keep_firing_for_holds_an_alert_after_its_breach_ends_then_resolves(disk_usage):
    import_rules(
        "groups:\n  - name: disks\n    rules:\n      - alert: DiskFull\n"
        "        expr: disk_used_percent > 90\n        keep_firing_for: 10m\n"
    )
    rule = AlertRule.objects.get(name="DiskFull")
    assert rule.keep_firing_for == timedelta(minutes=10)

    evaluate_rules(now=T0 + timedelta(minutes=9))  # the last sample is at 9:45
    alert = Alert.objects.get(rule=rule)
    # Past the 5-minute lookback the expression no longer returns the series: as in
    # Prometheus, it fires on for 10 minutes from that first evaluation, then resolves.
    for minutes, resolved in ((16, False), (25, False), (26.5, True)):
        evaluate_rules(now=T0 + timedelta(minutes=minutes))
        alert.refresh_from_db()
        assert (alert.resolved_at is not None) == resolved, minutes
