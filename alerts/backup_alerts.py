"""Backup problems as alerts, raised on the instance that stands for Vigil itself.

backups/ announces failures and recoveries as signals (backups/signals.py) and knows nothing of
alerts; this module, connected in AlertsConfig.ready, turns them into critical alerts through
the usual episode path, so they notify (and resolve) like any other alert. Each kind of problem
is one open episode at a time (one fingerprint); a repeat only updates its message.
raise_problem and resolve_problem serve the checks' problems too (alerts/check_alerts.py).

The heartbeat of Vigil's backups (checks/backup_heartbeat.py) sees the same outages as these
alerts, so it ships with two inhibition rules that keep one outage to one notification: a
failed backup mutes the heartbeat's alerts (the backup alert carries the error), and the
heartbeat being down (the job failed, or never ran) mutes "no good backup for 26 hours", which
would only say it again later. Both stay shown, marked inhibited; both are the admin's to edit.
"""

import logging

from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.utils import timezone

from alerts import lifecycle
from alerts.models import Alert, InhibitRule, Silence, fingerprint
from backups import signals
from checks import signals as check_signals
from checks.backup_heartbeat import ensure_backup_heartbeat
from checks.models import Check
from instances.models import VIGIL_AGENT_ID, Instance

logger = logging.getLogger(__name__)

BACKUP_FAILED = "backup_failed"
BACKUP_VERIFICATION_FAILED = "backup_verification_failed"
BACKUP_STALE = "backup_stale"
BACKUP_OFFSITE_FAILED = "backup_offsite_failed"


def raise_problem(
    alert_type: str,
    message: str,
    instance: Instance | None = None,
    severity: str = Alert.Severity.CRITICAL,
) -> Alert:
    """Open an episode of ``alert_type`` on ``instance`` (Vigil's own by default), or refresh
    the open one's message and severity (notifying again when it got worse)."""
    instance, now = instance or Instance.vigil(), timezone.now()
    try:
        with transaction.atomic():
            alert = _open_alerts(instance, alert_type).first()
            if alert is not None:
                if (alert.message, alert.severity) != (message, severity):
                    silences = list(Silence.objects.active(now))
                    lifecycle.update_firing(
                        alert, silences, now, message=message, severity=severity
                    )
                return alert
            alert = Alert(
                instance=instance,
                source=Alert.Source.SYSTEM,
                alert_type=alert_type,
                severity=severity,
                message=message,
                created_at=now,
                fired_at=now,
            )
            lifecycle.open_episode(alert, list(Silence.objects.active(now)), now)
            return alert
    except IntegrityError:
        # Someone else opened the episode at the same moment: it is open, which is the point.
        return _open_alerts(instance, alert_type).get()


def resolve_problem(alert_type: str, note: str, instance: Instance | None = None) -> int:
    """Resolve the open episode of ``alert_type`` on ``instance`` (Vigil's own by default), if
    there is one."""
    instance = instance or Instance.objects.filter(agent_id=VIGIL_AGENT_ID).first()
    if instance is None:
        return 0
    now = timezone.now()
    with transaction.atomic():
        alerts = list(_open_alerts(instance, alert_type))
        for alert in alerts:
            lifecycle.recover(alert, now, note=note)
    return len(alerts)


def ship_backup_heartbeat() -> Check:
    """Make the heartbeat of Vigil's backups if none watches them, with the inhibition rules
    that keep each outage to one notification; a heartbeat already there is left as it is."""
    with transaction.atomic():
        check, created = ensure_backup_heartbeat()
        if created:
            heartbeat = {"label": "instance", "op": "=", "value": check.agent_id}
            InhibitRule.objects.update_or_create(
                name="A failed backup mutes the backups heartbeat",
                defaults={
                    "source_matchers": [{"label": "alertname", "op": "=", "value": BACKUP_FAILED}],
                    "target_matchers": [heartbeat],
                    "equal": [],
                },
            )
            down = {"label": "alertname", "op": "=", "value": check_signals.DOWN}
            InhibitRule.objects.update_or_create(
                name="The backups heartbeat down mutes no good backup",
                defaults={
                    "source_matchers": [down, heartbeat],
                    "target_matchers": [{"label": "alertname", "op": "=", "value": BACKUP_STALE}],
                    "equal": [],
                },
            )
    return check


def _open_alerts(instance: Instance, alert_type: str):
    return Alert.objects.select_for_update().filter(
        fingerprint=fingerprint(instance.pk, alert_type),
        source=Alert.Source.SYSTEM,
        resolved_at__isnull=True,
    )


@receiver(signals.backup_failed, dispatch_uid="alerts.backup_failed")
def on_backup_failed(sender, message: str, **kwargs):
    raise_problem(BACKUP_FAILED, message)


@receiver(signals.backup_stale, dispatch_uid="alerts.backup_stale")
def on_backup_stale(sender, message: str, **kwargs):
    raise_problem(BACKUP_STALE, message)


@receiver(signals.backup_succeeded, dispatch_uid="alerts.backup_succeeded")
def on_backup_succeeded(sender, message: str, **kwargs):
    resolve_problem(BACKUP_FAILED, message)
    resolve_problem(BACKUP_STALE, message)


@receiver(signals.verification_failed, dispatch_uid="alerts.verification_failed")
def on_verification_failed(sender, message: str, **kwargs):
    raise_problem(BACKUP_VERIFICATION_FAILED, message)


@receiver(signals.verification_succeeded, dispatch_uid="alerts.verification_succeeded")
def on_verification_succeeded(sender, message: str, **kwargs):
    resolve_problem(BACKUP_VERIFICATION_FAILED, message)


@receiver(signals.offsite_failed, dispatch_uid="alerts.offsite_failed")
def on_offsite_failed(sender, message: str, **kwargs):
    raise_problem(BACKUP_OFFSITE_FAILED, message)


@receiver(signals.offsite_succeeded, dispatch_uid="alerts.offsite_succeeded")
def on_offsite_succeeded(sender, message: str, **kwargs):
    resolve_problem(BACKUP_OFFSITE_FAILED, message)
