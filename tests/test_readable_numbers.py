"""Numbers, durations and moments as a person reads them: charts in their unit's scale, rule
durations as ``2m 30s``, moments as "3 minutes ago" with the exact time on hover, and a resolved
notice that says it recovered, the value now, how long it lasted and how bad it got."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.permissions import Role
from alerts import lifecycle
from alerts.evaluation import evaluate_rules
from alerts.models import Alert, AlertRule
from config.templatetags.vigil_format import moment
from dashboard.figures import metric_figure, value_format
from instances import humanize
from instances.formats import epoch_ms
from tests.test_notifications import T0, channel, fire, receiver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1928349696.5, "bytes", "1.93 GB"),
        (12.4e6, "bytes/s", "12.4 MB/s"),
        (45, "percent", "45 %"),
        (0.25, "seconds", "250 ms"),
        (250, "ms", "250 ms"),
        (3 * 86400 + 4 * 3600 + 5, "seconds", "3d 4h"),
        (84.2135, "", "84.2"),
        (1234567, "requests", "1.23M requests"),
        (512, "bytes", "512 B"),
    ],
)
def test_a_quantity_reads_in_its_units_scale(value, unit, text):
    assert humanize.quantity(value, unit) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "1m"), (150, "2m 30s"), (3903, "1h 5m"), (0, "0s"), (45, "45s"), (90061, "1d 1h")],
)
def test_a_duration_reads_as_its_two_largest_units(seconds, text):
    assert humanize.duration(timedelta(seconds=seconds)) == text


def test_a_byte_chart_uses_si_prefixes_not_billions():
    axis, hover = value_format("bytes")

    assert (axis["tickformat"], axis["ticksuffix"]) == (".3~s", "B")
    assert hover == "%{y:.3~s}B"
    assert value_format("percent")[0]["ticksuffix"] == "%"
    assert value_format("requests")[0]["exponentformat"] == "SI"


def test_a_metric_chart_carries_its_units_format():
    figure = json.loads(metric_figure("memory_used_bytes", "bytes", [], T0, T0))

    assert figure["layout"]["yaxis"]["tickformat"] == ".3~s"


def test_a_moment_says_how_long_ago_with_the_exact_time_on_hover():
    when = timezone.now() - timedelta(minutes=3, seconds=5)

    html = moment(when)

    assert ">3\xa0minutes ago</time>" in html
    assert f'title="{when:%Y-%m-%d %H:%M:%S} UTC"' in html
    assert moment(None) == "never"


def test_the_rules_page_shows_durations_as_people_say_them(admin_client):
    AlertRule.objects.create(
        name="Slow", metric="latency", warning_threshold=1, for_duration=timedelta(seconds=150)
    )

    html = admin_client.get("/rules/").text

    assert "2m 30s" in html and "0:02:30" not in html


def test_a_rule_alert_says_its_window_in_minutes(api):
    AlertRule.objects.all().delete()
    AlertRule.objects.create(
        name="CPU hot", metric="cpu_usage", critical_threshold=90, for_duration=timedelta(0)
    )
    sample = {"name": "cpu_usage", "value": 99, "ts": epoch_ms(T0)}
    api.post("/api/v1/ingest", {"instance": {"agent_id": "web-1"}, "samples": [sample]})

    evaluate_rules(now=T0)

    assert Alert.objects.get().message == "cpu_usage avg over 1m is 99 (> 90)"


def test_the_resolved_notice_says_it_recovered_the_value_now_how_long_and_how_bad(
    api,
    receiver,  # noqa: F811
):
    AlertRule.objects.all().delete()
    channel("webhook", receiver.url())
    AlertRule.objects.create(
        name="High CPU usage",
        metric="cpu_usage",
        aggregation="last",
        warning_threshold=80,
        critical_threshold=90,
        for_duration=timedelta(0),
    )
    for seconds, value in ((0, 97), (60, 84.21), (150, 42.5)):
        sample = {
            "name": "cpu_usage",
            "value": value,
            "ts": epoch_ms(T0 + timedelta(seconds=seconds)),
        }
        api.post("/api/v1/ingest", {"instance": {"agent_id": "web-1"}, "samples": [sample]})
        evaluate_rules(now=T0 + timedelta(seconds=seconds))

    resolved = receiver.json()
    assert resolved["kind"] == "resolved"
    assert resolved["title"] == "[RESOLVED] High CPU usage on web-1"
    assert resolved["text"] == (
        "Recovered: cpu_usage last over 1m is 42.5 now. "
        "It lasted 2m 30s and reached critical at worst."
    )
    assert Alert.objects.get().severity == "warning"


def test_a_resolved_notice_of_a_manual_resolution_names_who_did_it(
    receiver,  # noqa: F811
    user_with_role,
):
    channel("webhook", receiver.url())
    alert = fire()

    lifecycle.resolve(alert, user_with_role(Role.OPERATOR, "olga"), note="Rebooted the box.")

    assert receiver.json()["text"].startswith("Resolved by olga: Rebooted the box. It lasted ")
