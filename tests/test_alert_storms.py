"""Evaluation storms: thousands of pairs pending and hundreds of alerts firing in one run are
decided and written set-based, each alert opened once and each notified once."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from celery.signals import task_postrun, task_prerun
from channels.layers import get_channel_layer
from django.core import mail
from django.db import connection
from django.utils import timezone

from alerts import lifecycle
from alerts.evaluation import evaluate_rules
from alerts.events import ALERTS_GROUP
from alerts.models import Alert, AlertRule, Notification, NotificationChannel, PendingBreach
from instances import store
from instances.models import Instance

pytestmark = pytest.mark.django_db(transaction=True)

INSTANCES = 20
RULES = 100
# One rule in four has a 1-minute ``for``: 25 rules × 20 instances fire a minute later.
FIRING_RULES = 25
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def storm(settings):
    """20 instances reporting one metric over every threshold, 100 rules on it: 2,000 pairs."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    AlertRule.objects.all().delete()
    NotificationChannel.objects.create(name="on call", kind="email", target="oncall@example.com")
    rows = []
    for n in range(INSTANCES):
        instance = Instance.register(f"storm-{n}")
        key = store.SeriesKey("queue_depth", {})
        series_id = store.resolve_series(instance.pk, [key])[(key.name, key.labels_key)]
        rows += [(series_id, NOW - timedelta(seconds=seconds), 50.0) for seconds in (0, 30, 60)]
    store.write_samples(rows)
    AlertRule.objects.bulk_create(
        AlertRule(
            name=f"Queue deep {n}",
            metric="queue_depth",
            aggregation="max",
            window=timedelta(minutes=5),
            comparator=">",
            warning_threshold=10,
            for_duration=timedelta(minutes=1 if n < FIRING_RULES else 60),
        )
        for n in range(RULES)
    )


def evaluate_at(moment):
    Instance.objects.update(last_seen=moment)  # the agents keep reporting
    return evaluate_rules(now=moment)


class Statements:
    """SQL statements of evaluation itself, apart from those of the Celery tasks it queues
    (here run in-process at commit; in production, by a worker), and the tasks it queued."""

    def __init__(self):
        # Tasks in progress: an eager task queuing another runs it inside itself.
        self.count, self.tasks, self.running = 0, [], 0

    def __call__(self, execute, sql, params, many, context):
        self.count += not self.running
        return execute(sql, params, many, context)

    def started(self, task=None, **kwargs):
        self.tasks.append(task.name)
        self.running += 1

    def ended(self, **kwargs):
        self.running -= 1


def test_a_storm_opens_each_alert_once_and_queues_its_notices_in_one_task(storm):
    assert evaluate_at(NOW).pending == INSTANCES * RULES
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(ALERTS_GROUP, channel)
    statements = Statements()
    task_prerun.connect(statements.started)
    task_postrun.connect(statements.ended)
    try:
        with connection.execute_wrapper(statements):
            summary = evaluate_at(NOW + timedelta(minutes=1))
        event = async_to_sync(layer.receive)(channel)
    finally:
        task_prerun.disconnect(statements.started)
        task_postrun.disconnect(statements.ended)
        async_to_sync(layer.group_discard)(ALERTS_GROUP, channel)

    fired = INSTANCES * FIRING_RULES
    assert (summary.fired, summary.pending) == (fired, INSTANCES * (RULES - FIRING_RULES))
    alerts = list(Alert.objects.select_related("rule"))
    assert len({(alert.rule_id, alert.instance_id) for alert in alerts}) == len(alerts) == fired
    assert {alert.rule.for_duration for alert in alerts} == {timedelta(minutes=1)}
    assert {(alert.status, alert.pending_since, alert.fired_at) for alert in alerts} == {
        (Alert.Status.ACTIVE, NOW, NOW + timedelta(minutes=1))
    }
    assert all(alert.message == alert.rule.describe(50.0, "warning", {}) for alert in alerts)
    assert {alert.value for alert in alerts} == {50.0}
    assert not PendingBreach.objects.filter(rule__alerts__isnull=False).exists()
    assert PendingBreach.objects.count() == INSTANCES * (RULES - FIRING_RULES)
    # One notification task for the 500 alerts, one live event for their 20 instances.
    assert statements.tasks.count("alerts.notify_alerts") == 1
    assert event["type"] == "alerts.changed" and len(event["instance_ids"]) == INSTANCES
    sent = Notification.objects.filter(kind="firing", status="sent")
    assert sorted(sent.values_list("alert_id", flat=True)) == sorted(a.pk for a in alerts)
    assert len(mail.outbox) == fired
    # Set-based: a few dozen statements for 2,000 pairs and 500 openings, not some per pair.
    assert statements.count <= 60

    again = evaluate_at(NOW + timedelta(minutes=1, seconds=15))

    assert (again.fired, Alert.objects.count(), len(mail.outbox)) == (0, fired, fired)


def test_a_breach_whose_episode_is_already_open_opens_nothing_and_leaves_no_pending(storm):
    evaluate_at(NOW)
    evaluate_at(NOW + timedelta(minutes=1))
    alert = Alert.objects.select_related("rule", "instance").first()
    breach = PendingBreach.objects.create(
        rule=alert.rule, instance=alert.instance, since=NOW, severity="warning"
    )
    again = lifecycle.Firing(
        rule=alert.rule,
        instance=alert.instance,
        severity="warning",
        value=50.0,
        labels={},
        message=alert.message,
        pending_since=NOW,
        fingerprint="",
        breach_id=breach.pk,
    )

    assert lifecycle.fire([again], [], NOW + timedelta(minutes=2)) == []
    assert Alert.objects.filter(fingerprint=alert.fingerprint).count() == 1
    assert not PendingBreach.objects.filter(pk=breach.pk).exists()
