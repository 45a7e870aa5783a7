"""The alerting configuration as one YAML file: `manage.py alerting_config export` and `import`,
and GET/PUT /api/v1/alerting/config. Round trip, idempotence, all or nothing, paths named in
refusals, secrets as references unless asked for, audit under the token's name."""

from datetime import timedelta
from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import AuditEvent
from alerts import grouping
from alerts.alerting_config import ConfigError, dump, export_config, import_config
from alerts.models import (
    AlertRule,
    InhibitRule,
    NotificationChannel,
    RecordingRule,
    Route,
    Silence,
)
from ingestion.models import IngestToken
from instances.models import Instance

pytestmark = pytest.mark.django_db

Scope = IngestToken.Scope
PAGER_KEY = "R0UTING-KEY-0123456789abcdef"
SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXXSECRETXXXX"


def configured() -> None:
    """A configuration with one of everything, and something off-default in each."""
    web = Instance.register("web-1")
    pager = NotificationChannel.objects.create(
        name="Pager", kind="pagerduty", secret=PAGER_KEY, severities=["critical"]
    )
    NotificationChannel.objects.create(name="Ops chat", kind="slack", target=SLACK_URL)
    NotificationChannel.objects.create(
        name="Team mail", kind="email", target="ops@example.com", config={"info_digest": False}
    )
    disk = AlertRule.objects.create(
        name="Disk full",
        metric="disk_usage",
        label_matchers=[{"label": "mount", "op": "=", "value": "/"}],
        scope=AlertRule.Scope.INSTANCE,
        scope_instance=web,
        warning_threshold=80,
        critical_threshold=95,
        window=timedelta(minutes=5),
        for_duration=timedelta(minutes=10),
    )
    disk.channels.set([pager])
    AlertRule.objects.create(
        name="Error rate",
        expr="job:errors:ratio > 0.05",
        labels={"severity": "critical"},
        annotations={"summary": "{{ $labels.job }} fails {{ $value }}"},
        keep_firing_for=timedelta(minutes=5),
    )
    RecordingRule.objects.create(
        record="job:errors:ratio", expr="sum(rate(errors[5m])) by (job)", labels={"team": "a"}
    )
    InhibitRule.objects.create(
        name="Critical mutes warnings",
        source_matchers=[{"label": "severity", "op": "=", "value": "critical"}],
        target_matchers=[{"label": "severity", "op": "=", "value": "warning"}],
        equal=["instance", "alertname"],
    )
    root = grouping.root_route()
    root.repeat_interval = timedelta(hours=2)
    root.save()
    team = Route.objects.create(
        name="Database team",
        parent=root,
        position=1,
        matchers=[{"label": "team", "op": "=", "value": "db"}],
        group_by=["alertname", "team"],
        group_wait=timedelta(seconds=30),
        group_interval=timedelta(minutes=5),
        continue_matching=True,
    )
    team.channels.set([pager])
    Route.objects.create(
        name="Database pages",
        parent=team,
        matchers=[{"label": "severity", "op": "=", "value": "critical"}],
    )
    now = timezone.now().replace(microsecond=0)
    Silence.objects.create(
        rule=disk,
        instance=web,
        matchers=[{"label": "mount", "op": "=", "value": "/"}],
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        comment="disk swap",
    )


def named(entries: list, name: str) -> dict:
    return next(entry for entry in entries if entry["name"] == name)


def wipe() -> None:
    for model in (Silence, AlertRule, RecordingRule, InhibitRule, Route, NotificationChannel):
        model.objects.all().delete()


def test_export_wipe_import_export_gives_the_same_file(tmp_path):
    configured()
    exported = tmp_path / "alerting.yaml"
    call_command("alerting_config", "export", str(exported), "--include-secrets")
    first = exported.read_text()
    wipe()

    output = StringIO()
    call_command("alerting_config", "import", str(exported), stdout=output)
    call_command("alerting_config", "export", str(exported), "--include-secrets")

    assert exported.read_text() == first
    assert "created: rule Disk full" in output.getvalue()
    assert NotificationChannel.objects.get(name="Pager").secret == PAGER_KEY
    assert AlertRule.objects.get(name="Disk full").scope_instance.agent_id == "web-1"
    assert list(
        AlertRule.objects.get(name="Disk full").channels.values_list("name", flat=True)
    ) == ["Pager"]


def test_the_file_names_things_by_name_and_writes_durations_as_prometheus_does():
    configured()
    document = yaml.safe_load(dump(export_config(include_secrets=True)))

    disk = named(document["rules"], "Disk full")
    error_rate = named(document["rules"], "Error rate")
    assert disk["window"] == "5m" and disk["for"] == "10m"
    assert disk["scope_instance"] == "web-1" and disk["channels"] == ["Pager"]
    assert "metric" not in error_rate and error_rate["keep_firing_for"] == "5m"
    assert document["silences"][0]["rule"] == "Disk full"
    assert document["routes"] == [
        {"name": "root", "group_by": ["..."], "group_wait": "0s", "group_interval": "0s",
         "repeat_interval": "2h"},
        {"name": "Database team", "parent": "root", "position": 1,
         "matchers": [{"label": "team", "op": "=", "value": "db"}],
         "group_by": ["alertname", "team"], "group_wait": "30s", "group_interval": "5m",
         "continue": True, "channels": ["Pager"]},
        {"name": "Database pages", "parent": "Database team",
         "matchers": [{"label": "severity", "op": "=", "value": "critical"}]},
    ]  # fmt: skip
    assert document["recording_rules"] == [
        {
            "record": "job:errors:ratio",
            "expr": "sum(rate(errors[5m])) by (job)",
            "labels": {"team": "a"},
        }
    ]


def test_secrets_are_exported_as_references_and_never_in_clear():
    configured()
    text = dump(export_config())
    channels = {channel["name"]: channel for channel in yaml.safe_load(text)["channels"]}

    assert PAGER_KEY not in text and "XXXXSECRETXXXX" not in text
    assert channels["Pager"]["secret"] == {"env": "VIGIL_CHANNEL_PAGER_SECRET"}
    assert channels["Ops chat"]["target"] == {"env": "VIGIL_CHANNEL_OPS_CHAT_TARGET"}
    # An e-mail channel's addresses are no credential.
    assert channels["Team mail"]["target"] == "ops@example.com"


def test_reimporting_an_export_changes_nothing():
    configured()
    text = dump(export_config())
    before = dump(export_config(include_secrets=True))
    audited = AuditEvent.objects.count()

    report = import_config(text, actor="ci")

    assert report.created == [] and report.updated == [] and report.left == []
    assert {
        "rule Disk full",
        "channel Pager",
        "recording rule job:errors:ratio",
        "inhibit rule Critical mutes warnings",
    } <= set(report.unchanged)
    assert len([name for name in report.unchanged if name.startswith("silence")]) == 1
    assert dump(export_config(include_secrets=True)) == before
    assert AuditEvent.objects.count() == audited


def test_a_reference_takes_its_environment_variable_on_a_fresh_install(monkeypatch):
    configured()
    text = dump(export_config())
    wipe()
    monkeypatch.setenv("VIGIL_CHANNEL_PAGER_SECRET", "from-the-vault-0123")
    monkeypatch.setenv("VIGIL_CHANNEL_OPS_CHAT_TARGET", "https://hooks.slack.example/new")

    import_config(text, actor="ci")

    assert NotificationChannel.objects.get(name="Pager").secret == "from-the-vault-0123"
    assert NotificationChannel.objects.get(name="Ops chat").target == (
        "https://hooks.slack.example/new"
    )


def test_a_reference_with_nothing_behind_it_is_refused_by_path():
    configured()
    text = dump(export_config())
    wipe()

    with pytest.raises(ConfigError) as refused:
        import_config(text, actor="ci")

    paths = [path for path, _ in refused.value.problems]
    assert "channels[1].secret" in paths and "channels[0].target" in paths
    assert NotificationChannel.objects.count() == 0


def test_an_import_changes_and_reports_and_leaves_what_the_file_does_not_name():
    configured()
    document = export_config()
    named(document["rules"], "Disk full")["critical_threshold"] = 99
    document["rules"].remove(named(document["rules"], "Error rate"))
    document["recording_rules"].append({"record": "job:up:sum", "expr": "sum(up) by (job)"})

    report = import_config(dump(document), actor="terraform")

    assert report.updated == ["rule Disk full"]
    assert report.created == ["recording rule job:up:sum"]
    assert report.left == ["rule Error rate"]
    assert AlertRule.objects.get(name="Disk full").critical_threshold == 99
    assert AlertRule.objects.filter(name="Error rate").exists()
    assert AuditEvent.objects.filter(
        action="rule.change", actor_label="terraform", target_label="Disk full"
    ).exists()


def test_one_bad_entry_stores_nothing_and_every_problem_is_named_by_its_path():
    configured()
    document = export_config()
    named(document["rules"], "Disk full")["critical_threshold"] = 99
    named(document["rules"], "Error rate")["trheshold"] = 5
    document["rules"].append({"name": "Broken", "expr": "rate(x[5m]"})
    error_rate = document["rules"].index(named(document["rules"], "Error rate"))
    broken = len(document["rules"]) - 1
    document["recording_rules"].append({"record": "new:rule", "expr": "sum(up)"})
    document["inhibit_rules"].append(
        {
            "name": "Bad",
            "source_matchers": [{"label": "a"}],
            "target_matchers": [{"label": "a", "op": "=", "value": "b"}],
        }
    )
    document["silences"][0]["ends_at"] = "soon"
    document["receivers"] = []

    with pytest.raises(ConfigError) as refused:
        import_config(dump(document), actor="ci")

    paths = [path for path, _ in refused.value.problems]
    assert paths == [
        "receivers",
        f"rules[{error_rate}].trheshold",
        f"rules[{broken}].expr",
        f"inhibit_rules[{len(document['inhibit_rules']) - 1}].source_matchers",
        "silences[0].ends_at",
    ]
    assert AlertRule.objects.get(name="Disk full").critical_threshold == 95
    assert not RecordingRule.objects.filter(record="new:rule").exists()


def test_the_command_refuses_with_the_paths_and_stores_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels:\n  - name: Hook\n    kind: webhook\n    target: ftp://x\n")

    with pytest.raises(CommandError, match=r"channels\[0\]\.target"):
        call_command("alerting_config", "import", str(bad))

    assert not NotificationChannel.objects.exists()


@pytest.fixture
def manager(client):
    token = IngestToken.issue("terraform", [Scope.READ, Scope.MANAGE])[1]
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def test_the_api_reads_the_configuration_as_yaml_without_secrets(manager):
    configured()

    response = manager.get("/api/v1/alerting/config")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    assert PAGER_KEY not in response.content.decode()
    assert yaml.safe_load(response.content) == export_config()


def test_the_api_puts_a_configuration_and_answers_what_it_did(manager):
    configured()
    document = export_config()
    named(document["rules"], "Error rate")["labels"] = {"severity": "warning"}

    response = manager.put(
        "/api/v1/alerting/config", dump(document), content_type="application/yaml"
    )
    again = manager.put("/api/v1/alerting/config", dump(document), content_type="application/yaml")

    assert response.status_code == 200, response.content
    assert response.json()["updated"] == ["rule Error rate"]
    assert again.json()["updated"] == [] and again.json()["created"] == []
    assert AlertRule.objects.get(name="Error rate").promql_severity == "warning"
    assert AuditEvent.objects.filter(action="rule.change", actor_label="terraform").exists()


def test_the_api_refuses_a_bad_configuration_with_a_400_naming_each_path(manager):
    body = "rules:\n  - name: Fast\n    metric: cpu\n    warning_threshold: 1\n    for: soon\n"

    response = manager.put("/api/v1/alerting/config", body, content_type="application/yaml")

    assert response.status_code == 400
    assert [detail["field"] for detail in response.json()["details"]] == ["rules[0].for"]
    assert not AlertRule.objects.filter(name="Fast").exists()


def test_numbers_and_durations_out_of_range_are_refused_by_path():
    body = (
        "rules:\n  - name: Huge\n    metric: cpu\n"
        f"    warning_threshold: {10**400}\n    critical_threshold: .inf\n"
        "    window: 99999999999d\n    for: 20000d\n"
    )

    with pytest.raises(ConfigError) as refused:
        import_config(body, actor="ci")

    paths = [path for path, _ in refused.value.problems]
    assert paths == [
        "rules[0].window", "rules[0].warning_threshold", "rules[0].critical_threshold",
        "rules[0].for",
    ]  # fmt: skip


def test_yaml_aliases_are_refused_before_anything_is_expanded():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + level)}: &{chr(98 + level)} [{', '.join([f'*{chr(97 + level)}'] * 10)}]\n"
        for level in range(8)
    )
    body = laughs + "rules:\n  - name: Laughs\n    metric: cpu\n    labels: {x: *i}\n"

    with pytest.raises(ConfigError, match="aliases"):
        import_config(body, actor="ci")


def test_a_route_is_imported_after_its_parent_and_one_root_is_kept():
    grouping.root_route()
    late_parent = {
        "routes": [
            {"name": "child", "parent": "later"},
            {"name": "later", "parent": "root"},
        ]
    }
    with pytest.raises(ConfigError) as refused:
        import_config(yaml.safe_dump(late_parent), actor="test")
    assert [path for path, _ in refused.value.problems] == ["routes[0].parent"]
    assert list(Route.objects.values_list("name", flat=True)) == ["root"]

    second_root = {"routes": [{"name": "everything", "group_by": ["alertname"]}]}
    with pytest.raises(ConfigError) as refused:
        import_config(yaml.safe_dump(second_root), actor="test")
    assert refused.value.problems == [
        ("routes[0].parent", "There is one root route; pick a parent.")
    ]
