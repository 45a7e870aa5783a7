"""Running checks when they are due: claim, run, record (the Healthchecks sendalerts loop).

Beat asks every second for due checks (``dispatch_due_checks``); the claim locks due rows with
SKIP LOCKED and moves their ``next_run_at`` on in the same transaction, so two dispatchers (or
a slow one and the next tick) never run a check twice. Claimed probes go out to workers in
batches; a batch runs its probes in a bounded thread pool, each bounded by its own timeout, and
records each result as it comes. Heartbeats due are deadlines passing: they are judged at once.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from checks import metrics
from checks.models import Check
from checks.probes import ProbeResult, run_probe
from instances.models import Instance

logger = logging.getLogger(__name__)

# At most this many checks are claimed per dispatch: the rest are claimed at the next tick.
CLAIM_LIMIT = 2_000


def claim_due_checks(now: datetime) -> tuple[dict[str, float], list]:
    """Claim the due checks: ``({probe id: when it was due, as epoch seconds}, heartbeat
    ids)``. Probes are moved on to their next run, heartbeats' deadlines cleared until they
    are judged."""
    with transaction.atomic():
        due = list(
            Check.objects.select_for_update(skip_locked=True)
            .filter(next_run_at__lte=now, paused=False)
            .order_by("next_run_at")
            .only("pk", "kind", "interval_seconds", "jitter_seconds", "next_run_at")[:CLAIM_LIMIT]
        )
        probes = [check for check in due if not check.is_heartbeat]
        due_at = {str(check.pk): check.next_run_at.timestamp() for check in probes}
        for check in probes:
            check.next_run_at = check.next_probe_at(now)
        Check.objects.bulk_update(probes, ["next_run_at"])
        heartbeats = [check.pk for check in due if check.is_heartbeat]
        Check.objects.filter(pk__in=heartbeats).update(next_run_at=None)
    return due_at, heartbeats


def run_checks(due_at: dict[str, float]) -> int:
    """Probe the given checks (ids, with when each was due), at most CHECKS_CONCURRENCY at
    once, then record the results together; and how late each probe started."""
    checks = list(Check.objects.filter(pk__in=due_at, paused=False))
    if not checks:
        return 0
    workers = min(settings.CHECKS_CONCURRENCY, len(checks))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        results = list(pool.map(_probe_now, checks))
    recorded = Check.record_probes(
        [
            (check.pk, datetime.fromtimestamp(started, UTC), result)
            for check, (started, result) in zip(checks, results, strict=True)
        ]
    )
    lags = [
        max(started - due_at[str(check.pk)], 0.0)
        for check, (started, _) in zip(checks, results, strict=True)
    ]
    successes = sum(result.success for _, result in results)
    metrics.observe_batch(lags, successes, len(results) - successes)
    return recorded


def _probe_now(check: Check) -> tuple[float, ProbeResult]:
    return time.time(), run_probe(check)


def watch_heartbeats(check_ids: list, now: datetime) -> None:
    for check in Check.objects.filter(pk__in=check_ids).select_related("instance"):
        check.watch_heartbeat(now)


def keep_check_instances_seen(now: datetime) -> int:
    """Check instances are reported on by Vigil's own workers: while checks run, their
    instances are not silent, however long a heartbeat's period or a probe's interval.
    Touches each row at most once per agent interval."""
    stale = now - timedelta(seconds=settings.AGENT_INTERVAL_SECONDS)
    return Instance.objects.filter(
        Q(last_seen__lt=stale) | Q(last_seen__isnull=True), uptime_check__paused=False
    ).update(last_seen=now)
