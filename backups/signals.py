"""What backups tell the rest of Vigil, without depending on it.

Backups stand alone (PRODUCT.md section 2): they announce failures and recoveries here, and the
alerting app, which may depend on backups, turns them into alerts (alerts/backup_alerts.py).
Every signal is sent with ``message`` (a sentence for people) and, where there is one, ``backup``.
"""

from django.dispatch import Signal

# A backup run failed (pg_dump error, disk full, a run that died).
backup_failed = Signal()
# A backup succeeded: a failed or stale backup problem is over.
backup_succeeded = Signal()
# Restoring the newest good backup into a scratch database failed or lost rows.
verification_failed = Signal()
verification_succeeded = Signal()
# No good backup for BACKUP_MAX_AGE_HOURS.
backup_stale = Signal()
# Encrypting or uploading a good backup's off-site copy failed.
offsite_failed = Signal()
offsite_succeeded = Signal()
# A backup run began, and ended (``error`` None when it succeeded): what a heartbeat of the
# backup job hears (checks/backup_heartbeat.py). A failed run's end is sent after
# ``backup_failed`` and a good run's before ``backup_succeeded``, so the backup alert is open
# whenever the heartbeat's is.
run_started = Signal()
run_ended = Signal()
