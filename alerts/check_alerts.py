"""Check problems as alerts, on the check's own instance.

checks/ announces a check going down, a heartbeat running late and a certificate near expiry
(checks/signals.py) and knows nothing of alerts; this module, connected in AlertsConfig.ready,
opens and resolves their episodes through the same path as backup problems
(backup_alerts.raise_problem / resolve_problem), so they notify, deduplicate and show like any
other alert.
"""

from django.dispatch import receiver

from alerts.backup_alerts import raise_problem, resolve_problem
from checks import signals


@receiver(signals.problem_started, dispatch_uid="alerts.check_problem_started")
def on_problem_started(sender, instance, problem: str, severity: str, message: str, **kwargs):
    raise_problem(problem, message, instance=instance, severity=severity)


@receiver(signals.problem_ended, dispatch_uid="alerts.check_problem_ended")
def on_problem_ended(sender, instance, problem: str, message: str, **kwargs):
    resolve_problem(problem, message, instance=instance)
