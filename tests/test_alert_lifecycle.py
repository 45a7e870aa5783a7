"""alerts/lifecycle.py: every transition from every state, decided from the row as it is, not
from the caller's copy; and the stale-acknowledge race between two connections."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from alerts import lifecycle
from alerts.models import Alert, AlertRule, NotificationChannel, PendingBreach, Silence
from instances.models import Instance

ACTIVE, ACKNOWLEDGED, RESOLVED = "active", "acknowledged", "resolved"


@pytest.fixture(autouse=True)
def mailbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")


def open_alert(agent_id="web-1") -> Alert:
    alert = Alert(
        instance=Instance.register(agent_id),
        source=Alert.Source.SYSTEM,
        alert_type="disk_full",
        severity=Alert.Severity.CRITICAL,
        message="/ is 99% full",
    )
    return lifecycle.open_episode(alert, [], timezone.now())


def put_in(alert: Alert, state: str) -> None:
    """Move the row (not ``alert``, which goes stale) into ``state``, as another process would."""
    fields = {ACTIVE: {}, ACKNOWLEDGED: {"acknowledged_at": timezone.now()}}.get(
        state, {"resolved_at": timezone.now()}
    )
    Alert.objects.filter(pk=alert.pk).update(status=state, **fields)


def audited() -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith="alert.").values_list("action", flat=True)
    )


def sent_subjects() -> list[str]:
    return [message.subject.split("]")[0] + "]" for message in mail.outbox]


def acknowledge(alert):
    lifecycle.acknowledge(alert, note="on it")


def unacknowledge(alert):
    lifecycle.unacknowledge(alert)


def resolve(alert):
    lifecycle.resolve(alert, note="fixed")


def recover(alert):
    lifecycle.recover(alert, timezone.now())


def reopen(alert):
    lifecycle.reopen(alert)


REFUSED = "refused"
# (state, transition) → the state after it and the audit event it leaves (None: none).
TRANSITIONS = {
    (ACTIVE, acknowledge): (ACKNOWLEDGED, "alert.acknowledge"),
    (ACTIVE, unacknowledge): (REFUSED, None),
    (ACTIVE, resolve): (RESOLVED, "alert.resolve"),
    (ACTIVE, recover): (RESOLVED, None),
    (ACTIVE, reopen): (ACTIVE, None),
    (ACKNOWLEDGED, acknowledge): (ACKNOWLEDGED, "alert.acknowledge"),
    (ACKNOWLEDGED, unacknowledge): (ACTIVE, "alert.unacknowledge"),
    (ACKNOWLEDGED, resolve): (RESOLVED, "alert.resolve"),
    (ACKNOWLEDGED, recover): (RESOLVED, None),
    (ACKNOWLEDGED, reopen): (ACTIVE, "alert.reopen"),
    (RESOLVED, acknowledge): (REFUSED, None),
    (RESOLVED, unacknowledge): (REFUSED, None),
    (RESOLVED, resolve): (RESOLVED, None),
    (RESOLVED, recover): (RESOLVED, None),
    (RESOLVED, reopen): (ACTIVE, "alert.reopen"),
}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "transition"), list(TRANSITIONS), ids=[f"{s}-{t.__name__}" for s, t in TRANSITIONS]
)
def test_every_transition_from_every_state_decides_from_the_row_not_the_stale_copy(
    state, transition
):
    alert = open_alert()
    stale = Alert.objects.get(pk=alert.pk)  # read while active, say by a page or an API client
    put_in(alert, state)
    expected, event = TRANSITIONS[(state, transition)]

    if expected == REFUSED:
        with pytest.raises(lifecycle.Refused):
            transition(stale)
        expected = state
    else:
        transition(stale)

    row = Alert.objects.get(pk=alert.pk)
    assert row.status == expected
    assert stale.status == expected  # the caller's copy now shows the row as it is
    assert (row.resolved_at is None) == (expected != RESOLVED)
    if expected != RESOLVED:  # a resolved alert keeps when it was acknowledged
        assert (row.acknowledged_at is not None) == (expected == ACKNOWLEDGED)
    assert audited() == ([event] if event else [])


@pytest.mark.django_db(transaction=True)
def test_opening_notifies_and_only_the_first_resolution_sends_a_resolved_notice():
    alert = open_alert()
    lifecycle.acknowledge(alert)
    lifecycle.resolve(alert, note="fixed")
    lifecycle.recover(alert, timezone.now(), note="recovered")
    lifecycle.resolve(alert)

    assert sent_subjects() == ["[FIRING]", "[RESOLVED]"]
    alert.refresh_from_db()
    assert (alert.status, alert.note) == (RESOLVED, "fixed")


@pytest.mark.django_db(transaction=True)
def test_a_worse_severity_notifies_again_unless_acknowledged():
    alert = open_alert()
    alert.severity = Alert.Severity.WARNING
    Alert.objects.filter(pk=alert.pk).update(severity=Alert.Severity.WARNING)

    assert lifecycle.update_firing(alert, [], timezone.now(), severity="critical", message="99%")
    lifecycle.acknowledge(alert)
    Alert.objects.filter(pk=alert.pk).update(severity=Alert.Severity.WARNING)
    lifecycle.update_firing(alert, [], timezone.now(), severity="critical")
    lifecycle.recover(alert, timezone.now())

    assert sent_subjects() == ["[FIRING]", "[FIRING]", "[RESOLVED]"]
    assert lifecycle.update_firing(alert, [], timezone.now(), severity="warning") is False


@pytest.mark.django_db(transaction=True)
def test_pending_fires_after_its_for_and_a_silenced_alert_opens_marked_and_quiet():
    rule = AlertRule.objects.create(name="Disk", metric="disk_usage", critical_threshold=90)
    instance = Instance.register("db-1")
    now = timezone.now()
    since = now - timedelta(minutes=3)
    breach = PendingBreach.objects.create(
        rule=rule, instance=instance, since=since, severity="critical"
    )
    silence = Silence.objects.create(instance=instance, ends_at=now + timedelta(hours=1))
    firing = lifecycle.Firing(
        rule=rule,
        instance=instance,
        severity="critical",
        value=95,
        labels={},
        message="disk_usage is 95",
        pending_since=since,
        fingerprint="",
        breach_id=breach.pk,
    )

    [alert] = lifecycle.fire([firing], [silence], now)

    alert.refresh_from_db()
    assert (alert.status, alert.silenced, alert.pending_since) == (ACTIVE, True, since)
    assert not PendingBreach.objects.exists()
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_silence_marks_the_alert_and_expiring_it_unmarks_it_and_repeats_resume(
    admin_user, settings
):
    alert = open_alert()
    silence = lifecycle.silence(alert, admin_user, timedelta(hours=1), "maintenance")
    assert alert.silenced is True
    settings.ALERT_REPEAT_INTERVAL_SECONDS = 0
    lifecycle.send_repeats(list(Silence.objects.active()), timezone.now())
    assert sent_subjects() == ["[FIRING]"]  # silenced: no repeat

    lifecycle.expire(silence, admin_user)
    alert.refresh_from_db()
    lifecycle.send_repeats(list(Silence.objects.active()), timezone.now())

    assert alert.silenced is False
    assert sent_subjects() == ["[FIRING]", "[STILL FIRING]"]
    actions = AuditEvent.objects.filter(action__startswith="silence.").values_list("action")
    assert sorted(action for (action,) in actions) == ["silence.create", "silence.end"]


@pytest.mark.django_db
def test_reopening_a_past_episode_while_a_newer_one_is_open_is_refused():
    past = open_alert()
    lifecycle.recover(past, timezone.now())
    open_alert()

    with pytest.raises(lifecycle.Refused, match="newer episode"):
        lifecycle.reopen(past)
    assert Alert.objects.get(pk=past.pk).status == RESOLVED


def blocking_another_connection() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
            "WHERE pg_backend_pid() = ANY (pg_blocking_pids(pid)))"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first", ["evaluation", "operator"])
def test_the_stale_acknowledge_race_ends_resolved(first):
    """Evaluation resolves the alert while an operator acknowledges the copy their page showed
    (open): whichever locks the row first, the other waits for it, and the alert ends resolved,
    never reopened."""
    alert = open_alert()
    page_copy = Alert.objects.get(pk=alert.pk)
    both_started = threading.Barrier(2, timeout=60)
    outcome = {}

    def evaluation():
        try:
            with transaction.atomic():
                if first == "evaluation":
                    lifecycle.recover(Alert.objects.get(pk=alert.pk), timezone.now())
                    both_started.wait()
                    hold_until_the_other_waits()
                else:
                    both_started.wait()
                    lifecycle.recover(Alert.objects.get(pk=alert.pk), timezone.now())
        finally:
            connection.close()

    def operator():
        try:
            with transaction.atomic():
                if first == "operator":
                    lifecycle.acknowledge(page_copy, note="on it")
                    both_started.wait()
                    hold_until_the_other_waits()
                else:
                    both_started.wait()
                    lifecycle.acknowledge(page_copy, note="on it")
            outcome["acknowledged"] = True
        except lifecycle.Refused:
            outcome["acknowledged"] = False
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluation), threading.Thread(target=operator)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    row = Alert.objects.get(pk=alert.pk)
    assert (row.status, row.resolved_at is not None) == (RESOLVED, True)
    assert outcome == {"acknowledged": first == "operator"}
    assert sent_subjects() == ["[FIRING]", "[RESOLVED]"]


def hold_until_the_other_waits() -> None:
    """Keep the row lock until the other connection is queued behind it."""
    checked = threading.Event()
    for _ in range(60_000):
        if blocking_another_connection():
            return
        checked.wait(0.01)
    raise AssertionError("the other connection never queued behind the row lock")
