from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from checks import runner

# Probes: a batch per this many checks, so a thousand due at once spread over the workers.
BATCH_SIZE = 50


@shared_task(name="checks.dispatch_due_checks", ignore_result=True)
def dispatch_due_checks() -> int:
    """Claim the due checks and send their probes out in batches; judge due heartbeats.
    Not retried: the next tick, a second later, claims whatever this one could not."""
    now = timezone.now()
    due_at, heartbeat_ids = runner.claim_due_checks(now)
    probe_ids = list(due_at)
    for start in range(0, len(probe_ids), BATCH_SIZE):
        run_checks.delay({pk: due_at[pk] for pk in probe_ids[start : start + BATCH_SIZE]})
    runner.watch_heartbeats(heartbeat_ids, now)
    runner.keep_check_instances_seen(now)
    return len(probe_ids) + len(heartbeat_ids)


@shared_task(
    name="checks.run_checks",
    ignore_result=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=2,
)
def run_checks(due_at: dict[str, float]) -> int:
    """Probe these checks (ids, with when each was due, as epoch seconds) and record the
    results (retried only when the database was away)."""
    return runner.run_checks(due_at)
