"""What checks tell the rest of Vigil, without depending on it.

Checks depend only on instances (PRODUCT.md section 2): a check's problems are announced here
and the alerting app turns them into alerts on the check's instance (alerts/check_alerts.py),
as it does for backups. Every signal is sent with ``instance`` (the check's), ``problem`` (one
of PROBLEMS), and ``message`` (a sentence for people); ``problem_started`` also with ``severity``
(``warning`` or ``critical``).
"""

from django.dispatch import Signal

DOWN = "check_down"
LATE = "check_late"
CERTIFICATE = "check_certificate"
PROBLEMS = (DOWN, LATE, CERTIFICATE)

# A check went down, a heartbeat is late, a certificate is close to expiry (or a repeat of one
# of these with a new message or severity).
problem_started = Signal()
# The problem is over: the check is up again, the heartbeat pinged, the certificate renewed.
problem_ended = Signal()
