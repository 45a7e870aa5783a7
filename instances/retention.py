"""Retention: expired data goes a whole partition at a time, never by DELETE over samples."""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from instances import store
from instances.store import BLOCKS, ROLLUP_1H, ROLLUP_1M, ROLLUP_5M, SAMPLES, TimeTable

logger = logging.getLogger(__name__)


def retention_days() -> dict[TimeTable, int]:
    """How many days each time table keeps (settings)."""
    return {
        SAMPLES: settings.RETENTION_RAW_DAYS,
        # Compacted days are raw samples kept smaller: they go after as many days.
        BLOCKS: settings.RETENTION_RAW_DAYS,
        ROLLUP_1M.table: settings.RETENTION_1M_DAYS,
        ROLLUP_5M.table: settings.RETENTION_5M_DAYS,
        ROLLUP_1H.table: settings.RETENTION_1H_DAYS,
    }


@dataclass
class RetentionReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def apply_retention(now: datetime | None = None, dry_run: bool = False) -> RetentionReport:
    """Create the partitions ahead and drop every partition past its table's retention.

    ``dry_run`` only lists what would be dropped (``expired``) and creates nothing.
    """
    now = now or datetime.now(UTC)
    report = RetentionReport()
    if not dry_run:
        report.created = store.ensure_partitions_ahead(now)
    for table, days in retention_days().items():
        for partition in store.expired_partitions(table, days, now):
            report.expired.append(partition)
            if not dry_run:
                store.drop_partition(table, partition)
                report.dropped.append(partition)
    if not dry_run:
        # Staleness markers are few (one per ended series): they go with the raw samples' days.
        store.delete_staleness_markers_before(now - timedelta(days=settings.RETENTION_RAW_DAYS))
    logger.info(
        "retention: created %s; dropped %s",
        ", ".join(report.created) or "nothing",
        ", ".join(report.dropped) or "nothing",
    )
    return report
