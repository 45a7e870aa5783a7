"""The heartbeat of Vigil's own backups: made by bootstrap on the backup schedule, pinged by real
backup runs, following the schedule when it is edited, and one notification per outage beside
the backups' own alerts."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.core import mail
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from alerts import backup_alerts
from alerts.models import Alert, AlertRule, InhibitRule, NotificationChannel
from backups import dumps
from backups.models import Backup
from backups.schedules import install_default_schedules
from checks import signals
from checks.models import Check, Ping
from checks.runner import claim_due_checks, watch_heartbeats
from instances.models import Series

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def shipped(settings, tmp_path):
    """A default install: the backup schedules (a transactional test before may have flushed
    what the migrations shipped), the heartbeat bootstrap makes, and a mailbox for alerts."""
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    AlertRule.objects.all().delete()
    install_default_schedules(apps)
    NotificationChannel.objects.create(name="ops", kind="email", target="ops@example.com")
    return backup_alerts.ship_backup_heartbeat()


def heartbeat() -> Check:
    return Check.objects.get(watches_backups=True)


def subjects() -> list[str]:
    return sorted(message.subject for message in mail.outbox)


def pass_time_to(moment) -> None:
    _, heartbeat_ids = claim_due_checks(moment)
    watch_heartbeats(heartbeat_ids, moment)


def break_backup_dir(settings, tmp_path) -> None:
    """BACKUP_DIR under a plain file: the run starts, then cannot write its archive."""
    (tmp_path / "not-a-directory").write_text("")
    settings.BACKUP_DIR = tmp_path / "not-a-directory" / "backups"


def test_bootstrap_makes_the_heartbeat_on_the_backup_schedule_once():
    check = heartbeat()
    assert (check.name, check.kind, check.state) == ("Vigil backups", "heartbeat", "new")
    assert (check.cron, check.time_zone, check.grace_seconds) == ("0 2 * * *", "UTC", 7200)
    assert not check.paused and not check.late_alerts
    assert set(InhibitRule.objects.values_list("name", flat=True)) >= {
        "A failed backup mutes the backups heartbeat",
        "The backups heartbeat down mutes no good backup",
    }
    check.name = "Nightly dump"
    check.save()

    backup_alerts.ship_backup_heartbeat()  # as each bootstrap does

    assert Check.objects.get(watches_backups=True).name == "Nightly dump"
    assert Check.objects.count() == 1


def test_a_good_backup_marks_the_heartbeat_up_with_its_run_time():
    backup = dumps.run_backup()

    assert backup.status == Backup.Status.SUCCEEDED
    check = heartbeat()
    assert check.state == Check.State.UP
    start, success = check.pings.order_by("created")
    assert (start.kind, success.kind) == (Ping.Kind.START, Ping.Kind.SUCCESS)
    assert success.user_agent == "Vigil backups"
    assert success.body == f"{backup.file_name}: {backup.size} bytes, sha256 {backup.sha256}"
    # From the start ping to the success ping: the run's own duration, give or take the pings.
    assert success.duration == pytest.approx(backup.duration.total_seconds(), abs=1)
    durations = Series.objects.get(instance=check.instance, name="probe_duration_seconds")
    assert durations.last_value == success.duration
    # Due at the next 02:00 UTC after this run.
    assert check.next_run_at.hour == 2 and check.next_run_at > check.last_ping_at


def test_a_failed_backup_marks_the_heartbeat_down_with_the_error_as_its_log(settings, tmp_path):
    break_backup_dir(settings, tmp_path)

    backup = dumps.run_backup()

    assert backup.status == Backup.Status.FAILED
    check = heartbeat()
    assert check.state == Check.State.DOWN
    failure = check.pings.get(kind=Ping.Kind.FAIL)
    assert failure.body == backup.error and "not-a-directory" in failure.body
    assert failure.duration is not None


def test_a_failed_backup_notifies_once_and_its_recovery_once(settings, tmp_path):
    break_backup_dir(settings, tmp_path)

    dumps.run_backup()
    # A day later it still fails and no backup is good for 26 hours: still the one alert.
    dumps.run_backup()
    dumps.check_freshness(now=timezone.now() + timedelta(hours=27))

    assert subjects() == ["[FIRING] [CRITICAL] backup_failed on Vigil"]
    down = Alert.objects.get(instance=heartbeat().instance, alert_type=signals.DOWN)
    stale = Alert.objects.get(alert_type=backup_alerts.BACKUP_STALE)
    assert down.inhibited and down.is_open and stale.inhibited and stale.is_open
    mail.outbox.clear()

    settings.BACKUP_DIR = tmp_path / "backups"
    assert dumps.run_backup().is_good
    dumps.check_freshness()

    assert subjects() == ["[RESOLVED] backup_failed on Vigil"]
    assert not Alert.objects.filter(resolved_at__isnull=True).exists()
    assert heartbeat().state == Check.State.UP


def test_a_backup_that_never_runs_notifies_once_from_the_heartbeat():
    dumps.run_backup()
    check = heartbeat()
    due = check.next_run_at
    mail.outbox.clear()

    # Late from 02:00 (shown, no alert), down two hours later; then no good backup for 26 h.
    pass_time_to(due + timedelta(minutes=1))
    assert heartbeat().state == Check.State.LATE
    assert not Alert.objects.filter(alert_type=signals.LATE).exists()
    pass_time_to(due + timedelta(hours=2, minutes=1))
    assert heartbeat().state == Check.State.DOWN
    Backup.objects.update(finished_at=timezone.now() - timedelta(hours=27))
    dumps.check_freshness()

    assert subjects() == [f"[FIRING] [CRITICAL] check_down on {check.name}"]
    assert Alert.objects.get(alert_type=backup_alerts.BACKUP_STALE).inhibited


def test_the_heartbeat_follows_the_backup_schedule():
    task = PeriodicTask.objects.get(task="backups.run_backup")
    berlin, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="4", day_of_week="1-5", timezone="Europe/Berlin"
    )
    task.crontab = berlin
    task.save()

    check = heartbeat()
    assert (check.cron, check.time_zone) == ("30 4 * * 1-5", "Europe/Berlin")

    berlin.hour = "5"
    berlin.save()
    assert heartbeat().cron == "30 5 * * 1-5"

    task.enabled = False
    task.save()
    assert heartbeat().state == Check.State.PAUSED

    task.delete()
    assert heartbeat().paused


def test_without_a_backup_schedule_the_heartbeat_is_made_paused():
    Check.objects.all().delete()
    PeriodicTask.objects.filter(task="backups.run_backup").delete()

    check = backup_alerts.ship_backup_heartbeat()

    assert check.paused and check.state == Check.State.PAUSED


def test_the_heartbeat_resumes_when_the_backups_are_scheduled_again_but_a_users_pause_stays():
    task = PeriodicTask.objects.get(task="backups.run_backup")
    task.enabled = False
    task.save()
    assert heartbeat().paused

    task.enabled = True
    task.save()
    assert not heartbeat().paused and heartbeat().state != Check.State.PAUSED

    Check.objects.filter(pk=heartbeat().pk).update(paused=True)  # the user pauses it
    task.crontab.hour = "3"
    task.crontab.save()
    assert heartbeat().cron.startswith("0 3 ") and heartbeat().paused
