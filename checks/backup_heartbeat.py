"""Vigil's own backups as a heartbeat check, as a Healthchecks user would watch a backup job.

Bootstrap makes one "Vigil backups" heartbeat (``ensure_backup_heartbeat``) when no check
watches the backups: renamed, regrouped or paused it stays as it is, and a deleted one is made
again at the next bootstrap (pause it to stop it). Each backup run pings it in-process through
``Check.record_ping``, the method behind ``/ping``: a start when the run begins, then a success
(the archive's name, size and sha256 as its log) or a failure (the error as its log). Its
schedule is the scheduled backup task's (a django-celery-beat row, editable in Django
admin): the crontab with its time zone, or the interval, followed whenever that row or its
schedule is saved; with no enabled backup task it is paused, and resumed when there is one again.

Its ``late`` shows and does not alert (late_alerts off): a run begins at the very minute it is
due, so it is late for as long as the run takes, every night, and the warning would say nothing.
Checks may depend on backups (backups stand alone and know nothing of checks).
"""

import logging
from datetime import timedelta

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from backups import signals as backup_signals
from backups.models import Backup
from checks.models import Check, Ping

logger = logging.getLogger(__name__)

BACKUP_TASK = "backups.run_backup"
NAME = "Vigil backups"
# How long a run may take, and how long past its due time a missing run is only late: the
# "no good backup" alert (BACKUP_MAX_AGE_HOURS, 26 by default, checked hourly) comes about
# when this runs out.
GRACE = timedelta(hours=2)
USER_AGENT = "Vigil backups"
# IntervalSchedule periods in seconds.
PERIOD_SECONDS = {"days": 86_400, "hours": 3_600, "minutes": 60, "seconds": 1}


def backup_schedule() -> dict | None:
    """The heartbeat fields of the enabled scheduled backup task (the oldest, if several):
    its crontab and time zone, or its interval as the period; None without one."""
    task = (
        PeriodicTask.objects.filter(task=BACKUP_TASK, enabled=True)
        .select_related("crontab", "interval")
        .order_by("pk")
        .first()
    )
    if task is None:
        return None
    if task.crontab is not None:
        crontab = task.crontab
        fields = (
            crontab.minute,
            crontab.hour,
            crontab.day_of_month,
            crontab.month_of_year,
            crontab.day_of_week,
        )
        zone = getattr(crontab.timezone, "key", str(crontab.timezone))
        return {"cron": " ".join(fields), "time_zone": zone}
    if task.interval is not None and task.interval.period in PERIOD_SECONDS:
        seconds = task.interval.every * PERIOD_SECONDS[task.interval.period]
        return {"cron": "", "period_seconds": seconds}
    return None


def ensure_backup_heartbeat() -> tuple[Check, bool]:
    """The heartbeat of Vigil's backups, made if no check watches them yet; returns it and
    whether it was made now."""
    existing = Check.objects.filter(watches_backups=True).order_by("created").first()
    if existing is not None:
        return existing, False
    check = Check(
        name=NAME,
        kind=Check.Kind.HEARTBEAT,
        watches_backups=True,
        late_alerts=False,
        grace_seconds=int(GRACE.total_seconds()),
    )
    for field, value in _following(backup_schedule()).items():
        setattr(check, field, value)
    check.full_clean()
    check.save()
    return check, True


def _following(schedule: dict | None) -> dict:
    """What a backups heartbeat's fields are to be for the backups' ``schedule``."""
    if schedule is None:
        return {"paused": True, "paused_without_schedule": True}
    return schedule


def follow_backup_schedule() -> int:
    """Give the backups' heartbeats the backup task's schedule now (paused without one);
    returns how many changed."""
    schedule = backup_schedule()
    changed = 0
    for check in Check.objects.filter(watches_backups=True):
        wanted = _following(schedule)
        if schedule is not None and check.paused_without_schedule:
            wanted = {**wanted, "paused": False, "paused_without_schedule": False}
        if all(getattr(check, field) == value for field, value in wanted.items()):
            continue
        for field, value in wanted.items():
            setattr(check, field, value)
        check.full_clean()
        # Its deadlines from the new schedule (save reschedules only a pause or resume).
        check.reschedule(timezone.now())
        check.save()
        changed += 1
    return changed


def _ping_heartbeats(kind: str, log: str = "") -> None:
    for check in Check.objects.filter(watches_backups=True, kind=Check.Kind.HEARTBEAT):
        try:
            check.record_ping(kind, timezone.now(), log.encode(), user_agent=USER_AGENT)
        except Check.DoesNotExist:  # deleted meanwhile
            continue


@receiver(backup_signals.run_started, dispatch_uid="checks.backup_run_started")
def on_backup_started(sender, backup: Backup, **kwargs) -> None:
    _ping_heartbeats(Ping.Kind.START)


@receiver(backup_signals.run_ended, dispatch_uid="checks.backup_run_ended")
def on_backup_ended(sender, backup: Backup, error: str | None, **kwargs) -> None:
    if error is None:
        log = f"{backup.file_name}: {backup.size} bytes, sha256 {backup.sha256}"
        _ping_heartbeats(Ping.Kind.SUCCESS, log)
    else:
        _ping_heartbeats(Ping.Kind.FAIL, error)


@receiver(post_save, sender=PeriodicTask, dispatch_uid="checks.backup_task_saved")
@receiver(post_delete, sender=PeriodicTask, dispatch_uid="checks.backup_task_deleted")
def on_backup_task_changed(sender, instance: PeriodicTask, **kwargs) -> None:
    if instance.task == BACKUP_TASK:
        follow_backup_schedule()


@receiver(post_save, sender=CrontabSchedule, dispatch_uid="checks.backup_crontab_saved")
@receiver(post_save, sender=IntervalSchedule, dispatch_uid="checks.backup_interval_saved")
def on_schedule_changed(sender, instance, **kwargs) -> None:
    uses = {"crontab": instance} if sender is CrontabSchedule else {"interval": instance}
    if PeriodicTask.objects.filter(task=BACKUP_TASK, **uses).exists():
        follow_backup_schedule()
