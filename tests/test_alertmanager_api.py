"""The Alertmanager API v2: Prometheus sends Vigil its alerts, amtool lists them and silences.

The end-to-end test runs Debian's Prometheus with an alerting rule and `alerting.alertmanagers`
pointed at a live Vigil, and Debian's amtool against Vigil: the alert shows, amtool lists it, a
silence amtool adds mutes it, and the alert resolves when its condition clears.
"""

import http.server
import subprocess
import threading
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.utils import timezone

from alerts.evaluation import evaluate_rules
from alerts.models import Alert, AlertRule, InhibitRule, Silence
from instances.models import Instance
from tests.prometheus_services import (
    AMTOOL,
    free_port,
    needs_amtool,
    needs_prometheus,
    prometheus,
    wait_until,
)

API = "/alertmanager/api/v2"


def am_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def prometheus_alert(name="DiskFull", ends_in=timedelta(minutes=4), **labels) -> dict:
    now = timezone.now()
    return {
        "labels": {"alertname": name, "instance": "db-1:9100", "severity": "critical", **labels},
        "annotations": {"summary": "Disk / is 95% full"},
        "startsAt": am_time(now - timedelta(minutes=1)),
        "endsAt": am_time(now + ends_in),
        "generatorURL": "http://prometheus:9090/graph",
    }


def post(api, body, path="alerts"):
    return api.client.post(
        f"{API}/{path}",
        orjson.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api.token}"},
    )


@pytest.mark.django_db
def test_a_prometheus_alert_opens_one_episode_however_often_it_is_sent(api):
    for _ in range(3):
        assert post(api, [prometheus_alert()]).status_code == 200

    alert = Alert.objects.get()
    assert alert.source == Alert.Source.PROMETHEUS
    assert alert.alert_type == "DiskFull" and alert.severity == Alert.Severity.CRITICAL
    assert alert.instance == Instance.objects.get(agent_id="db-1:9100")
    assert alert.message == "Disk / is 95% full"
    assert alert.labels["instance"] == "db-1:9100"


@pytest.mark.django_db
def test_an_alert_sent_with_endsat_past_resolves_its_episode(api):
    post(api, [prometheus_alert(), prometheus_alert(mount="/data")])
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 2

    post(api, [prometheus_alert(ends_in=-timedelta(seconds=1))])

    open_alerts = Alert.objects.filter(resolved_at__isnull=True)
    assert [alert.labels.get("mount") for alert in open_alerts] == ["/data"]


@pytest.mark.django_db
def test_an_alert_without_instance_or_job_is_vigils_own(api):
    raw = prometheus_alert()
    del raw["labels"]["instance"]
    post(api, [raw])

    assert Alert.objects.get().instance == Instance.vigil()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"labels": {"alertname": "x"}},
        [{"labels": {"severity": "critical"}}],
        [{"labels": {"alertname": "x", "bad-name": "y"}}],
        [{"labels": {"alertname": "x"}, "endsAt": "tomorrow"}],
        ["not an alert"],
    ],
)
def test_bad_alerts_are_400_and_store_nothing(api, body):
    response = post(api, body)

    assert response.status_code == 400
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_posting_needs_a_write_token_and_reading_any_token(client, api, read_token):
    anonymous = client.post(f"{API}/alerts", b"[]", content_type="application/json")
    read_only = client.post(
        f"{API}/alerts", b"[]", content_type="application/json",
        headers={"Authorization": f"Bearer {read_token}"},
    )  # fmt: skip
    listing = client.get(f"{API}/alerts", headers={"Authorization": f"Bearer {read_token}"})

    assert anonymous.status_code == 401
    assert read_only.status_code == 403
    assert listing.status_code == 200 and listing.json() == []


@pytest.mark.django_db
def test_a_silence_mutes_matching_alerts_until_it_is_expired(api):
    post(api, [prometheus_alert(), prometheus_alert(name="HighLoad")])
    now = timezone.now()
    created = post(
        api,
        {
            "matchers": [
                {"name": "alertname", "value": "Disk.*", "isRegex": True, "isEqual": True}
            ],
            "startsAt": am_time(now),
            "endsAt": am_time(now + timedelta(hours=1)),
            "createdBy": "ops",
            "comment": "replacing the disk",
        },
        path="silences",
    )
    silence_id = created.json()["silenceID"]
    evaluate_rules()

    silenced = {alert.alert_type: alert.silenced for alert in Alert.objects.all()}
    assert silenced == {"DiskFull": True, "HighLoad": False}
    listed = api.get(f"{API}/silences").json()
    assert [(s["id"], s["status"]["state"]) for s in listed] == [(silence_id, "active")]
    states = {
        a["labels"]["alertname"]: a["status"]["state"] for a in api.get(f"{API}/alerts").json()
    }
    assert states == {"DiskFull": "suppressed", "HighLoad": "active"}

    assert api.delete(f"{API}/silence/{silence_id}").status_code == 200
    evaluate_rules()
    assert not Alert.objects.filter(silenced=True).exists()
    assert api.get(f"{API}/silence/{silence_id}").json()["status"]["state"] == "expired"


def node_down_muting_its_other_alerts(api) -> dict:
    """NodeDown on db-1 inhibits DiskFull there (an inhibition rule), a silence mutes HighLoad
    on db-2; returns the silence's id and the fingerprints the API lists, by alert name."""
    InhibitRule.objects.create(
        name="Node down mutes its other alerts",
        source_matchers=[{"label": "alertname", "op": "=", "value": "NodeDown"}],
        target_matchers=[{"label": "alertname", "op": "!=", "value": "NodeDown"}],
        equal=["instance"],
    )
    post(api, [
        prometheus_alert(name="NodeDown"),
        prometheus_alert(name="DiskFull"),
        prometheus_alert(name="HighLoad", instance="db-2:9100", severity="warning"),
    ])  # fmt: skip
    now = timezone.now()
    silence = {
        "matchers": [{"name": "alertname", "value": "HighLoad", "isRegex": False}],
        "startsAt": am_time(now),
        "endsAt": am_time(now + timedelta(hours=1)),
        "createdBy": "ops",
        "comment": "load test",
    }
    listed = api.get(f"{API}/alerts").json()
    return {
        "silence": post(api, silence, path="silences").json()["silenceID"],
        **{alert["labels"]["alertname"]: alert["fingerprint"] for alert in listed},
    }


@pytest.mark.django_db
def test_listed_alerts_say_which_alerts_inhibit_them_and_which_silences_mute_them(api):
    muting = node_down_muting_its_other_alerts(api)

    listed = {a["labels"]["alertname"]: a["status"] for a in api.get(f"{API}/alerts").json()}

    assert listed == {
        "NodeDown": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        "DiskFull": {"state": "suppressed", "silencedBy": [], "inhibitedBy": [muting["NodeDown"]]},
        "HighLoad": {"state": "suppressed", "silencedBy": [muting["silence"]], "inhibitedBy": []},
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("flags", "names"),
    [
        ({"silenced": "false"}, {"NodeDown", "DiskFull"}),
        ({"inhibited": "false"}, {"NodeDown", "HighLoad"}),
        ({"active": "false"}, {"DiskFull", "HighLoad"}),
        ({"active": "true", "silenced": "false", "inhibited": "false"}, {"NodeDown"}),
    ],
)
def test_the_active_silenced_and_inhibited_flags_leave_alerts_out_as_alertmanager_does(
    api, flags, names
):
    node_down_muting_its_other_alerts(api)

    listed = api.get(f"{API}/alerts", flags).json()

    assert {alert["labels"]["alertname"] for alert in listed} == names


@pytest.mark.django_db
def test_a_flag_that_is_not_a_boolean_is_400(api):
    response = api.get(f"{API}/alerts", {"inhibited": "maybe"})

    assert response.status_code == 400
    assert "inhibited must be true or false" in response.content.decode()


@needs_amtool
@pytest.mark.django_db(transaction=True)
def test_amtool_lists_inhibited_and_silenced_alerts_when_asked_with_what_mutes_them(
    live_server, api, tmp_path
):
    muting = node_down_muting_its_other_alerts(api)
    http_config = tmp_path / "amtool-http.yml"
    http_config.write_text(f"authorization:\n  credentials: {api.token}\n")

    def query(*flags: str) -> dict:
        done = subprocess.run(
            [AMTOOL, f"--alertmanager.url={live_server.url}/alertmanager",
             f"--http.config.file={http_config}", "alert", "query", "-o", "json", *flags],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return {alert["labels"]["alertname"]: alert for alert in orjson.loads(done.stdout)}

    assert set(query()) == {"NodeDown"}
    inhibited = query("--inhibited")
    assert set(inhibited) == {"DiskFull"}
    assert inhibited["DiskFull"]["status"] == {
        "state": "suppressed",
        "silencedBy": [],
        "inhibitedBy": [muting["NodeDown"]],
    }
    silenced = query("--silenced")
    assert set(silenced) == {"HighLoad"}
    assert silenced["HighLoad"]["status"]["silencedBy"] == [muting["silence"]]
    assert set(query("--active", "--silenced", "--inhibited")) == {
        "NodeDown",
        "DiskFull",
        "HighLoad",
    }


class FlakyTarget:
    """A /metrics page Prometheus scrapes, answering only once started (its port is held)."""

    def __init__(self):
        self.port = free_port()
        self.server = None

    def start(self) -> None:
        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"flaky_value 1\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Page)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@needs_prometheus
@needs_amtool
@pytest.mark.django_db(transaction=True)
def test_prometheus_sends_its_alert_and_amtool_lists_and_silences_it(live_server, token, tmp_path):
    AlertRule.objects.update(enabled=False)
    target = FlakyTarget()
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: flaky\n    rules:\n      - alert: FlakyDown\n"
        '        expr: up{job="flaky"} == 0\n        labels: {severity: critical}\n'
        '        annotations: {summary: "{{ $labels.instance }} does not answer"}\n'
    )
    host, port = live_server.url.removeprefix("http://").split(":")
    config = f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ['{rules}']
scrape_configs:
  - job_name: flaky
    static_configs:
      - targets: ['127.0.0.1:{target.port}']
alerting:
  alertmanagers:
    - api_version: v2
      path_prefix: /alertmanager
      authorization:
        credentials: {token}
      static_configs:
        - targets: ['{host}:{port}']
"""
    http_config = tmp_path / "amtool-http.yml"
    http_config.write_text(f"authorization:\n  credentials: {token}\n")
    amtool = [
        AMTOOL, f"--alertmanager.url={live_server.url}/alertmanager",
        f"--http.config.file={http_config}",
    ]  # fmt: skip
    try:
        with prometheus(tmp_path, config):
            alert = wait_until(
                lambda: Alert.objects.filter(alert_type="FlakyDown").first(),
                60,
                what="Prometheus's alert in Vigil",
            )
            assert alert.source == Alert.Source.PROMETHEUS
            assert alert.message == f"127.0.0.1:{target.port} does not answer"

            listed = subprocess.run(
                [*amtool, "alert", "query"], capture_output=True, text=True, timeout=30
            )
            assert listed.returncode == 0, listed.stderr
            assert "FlakyDown" in listed.stdout

            added = subprocess.run(
                [*amtool, "silence", "add", "alertname=FlakyDown", "--comment=known",
                 "--duration=1h", "--author=ops"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert added.returncode == 0, added.stderr
            silence = Silence.objects.get(pk=int(added.stdout.strip()))
            evaluate_rules()
            alert.refresh_from_db()
            assert alert.silenced
            queried = subprocess.run(
                [*amtool, "silence", "query", "-o", "json"], capture_output=True, text=True,
                timeout=30,
            )  # fmt: skip
            assert [s["id"] for s in orjson.loads(queried.stdout)] == [str(silence.pk)]

            target.start()
            wait_until(
                lambda: Alert.objects.get(pk=alert.pk).resolved_at is not None,
                60,
                what="the resolved alert from Prometheus",
            )
    finally:
        target.stop()
