from celery import shared_task

from alerts.instance_status import derive_statuses
from instances import store
from instances.compaction import compact_samples as compact_samples_now
from instances.retention import apply_retention as apply_retention_now
from instances.rollups import record_lag
from instances.rollups import refresh_rollups as refresh_rollups_now


@shared_task(name="instances.ensure_partitions_ahead", ignore_result=True)
def ensure_partitions_ahead() -> list[str]:
    """Create tomorrow's (and the next days') partitions before data needs them."""
    return store.ensure_partitions_ahead()


@shared_task(name="instances.apply_retention", ignore_result=True)
def apply_retention() -> list[str]:
    """Drop the partitions past retention (and make the ones ahead); returns the dropped."""
    return apply_retention_now().dropped


@shared_task(name="instances.compact_samples", ignore_result=True)
def compact_samples() -> int:
    """Compact the closed days of raw samples into blocks; returns the raw samples folded (0
    when another compaction is running)."""
    report = compact_samples_now()
    return sum(report.days.values()) if report else 0


@shared_task(name="instances.refresh_rollups", ignore_result=True)
def refresh_rollups() -> int:
    """Fold the samples stored since the last run into the rollups; returns the rows written.

    Then, whether the refresh went through, failed or was skipped (another still running),
    record how far the rollups lag: the shipped "RollupsLagging" rule watches that sample.
    """
    try:
        report = refresh_rollups_now()
    finally:
        record_lag()
    return sum(report.rows.values()) if report else 0


@shared_task(name="instances.mark_silent_instances", ignore_result=True)
def mark_silent_instances() -> int:
    """The dead man's switch between evaluation runs: instances that stopped reporting become
    `unknown` (their statuses derived again); returns how many changed."""
    return derive_statuses()
