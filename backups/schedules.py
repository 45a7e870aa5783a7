"""The backup jobs' default schedules (PRODUCT.md section 9), as django-celery-beat rows.

They are installed once by a migration and are then the admin's to edit, disable or delete:
unlike CELERY_BEAT_SCHEDULE entries, which beat writes back at every start, nothing resets them.
"""

# name: (task, crontab fields), UTC.
DEFAULT_SCHEDULES = {
    "Backup: daily at 02:00 UTC": ("backups.run_backup", {"minute": "0", "hour": "2"}),
    "Backup: prune past retention": ("backups.prune", {"minute": "0", "hour": "3"}),
    "Backup: weekly restore test": (
        "backups.verify_latest",
        {"minute": "30", "hour": "3", "day_of_week": "0"},
    ),
    "Backup: hourly freshness check": ("backups.check_freshness", {"minute": "15"}),
}


def install_default_schedules(apps) -> None:
    """Create the schedules that do not exist yet; never touch existing ones."""
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, (task, fields) in DEFAULT_SCHEDULES.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        cron = {"minute": "*", "hour": "*", "day_of_week": "*", "day_of_month": "*"}
        cron |= {"month_of_year": "*", "timezone": "UTC"} | fields
        schedule = CrontabSchedule.objects.filter(**cron).first()
        if schedule is None:
            schedule = CrontabSchedule.objects.create(**cron)
        PeriodicTask.objects.create(name=name, task=task, crontab=schedule)
