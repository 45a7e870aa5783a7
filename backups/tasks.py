from celery import shared_task
from django.db import InterfaceError, OperationalError

from backups import dumps, offsite, verification
from backups.models import Backup

# The database being unreachable before a run could record anything is worth retrying; a run
# that failed is recorded (and alerted on) and left for the next schedule or a person.
RETRY_POLICY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 60,
    "retry_backoff_max": 900,
    "max_retries": 3,
}


@shared_task(name="backups.run_backup", ignore_result=True, **RETRY_POLICY)
def run_backup(kind: str = Backup.Kind.SCHEDULED) -> int | None:
    """Back up now (skipped while another backup runs); returns the Backup id."""
    backup = dumps.run_backup(kind)
    return backup.pk if backup else None


@shared_task(name="backups.prune", ignore_result=True, **RETRY_POLICY)
def prune() -> int:
    """Delete backups past their retention (files and rows together), then the off-site
    copies past theirs."""
    return dumps.prune() + offsite.prune()


@shared_task(name="backups.verify_latest", ignore_result=True, **RETRY_POLICY)
def verify_latest() -> int | None:
    """Restore the newest good backup into a scratch database and compare its row counts."""
    backup = verification.verify_latest()
    return backup.pk if backup else None


@shared_task(name="backups.check_freshness", ignore_result=True, **RETRY_POLICY)
def check_freshness() -> bool:
    """Clean up after dead runs; raise the alarm when no good backup is recent enough."""
    return dumps.check_freshness()
