"""What a check's samples say over time: its availability over a window and its response times.

Both are read in one query for many checks at once, from the rollups where the window is long
(the samples engine's ``points_of_series`` picks the coarsest resolution that still gives the
buckets asked for): 90 days of a check probed every 20 seconds are a few hundred rows, not
400,000.
"""

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.utils import timezone

from instances.models import Series
from instances.samples import samples_engine

# The availability windows of a check's page, by the label shown.
AVAILABILITY_WINDOWS = {
    "24 h": timedelta(days=1),
    "7 d": timedelta(days=7),
    "30 d": timedelta(days=30),
    "90 d": timedelta(days=90),
}
# Availability is summed over this many buckets of its window: hourly ones for a day.
UPTIME_BUCKETS = 24


def series_by_instance(instance_ids: Sequence, name: str) -> dict:
    """``{instance id: series id}`` of the series ``name`` of these (check) instances."""
    rows = Series.objects.filter(instance_id__in=instance_ids, name=name).values_list(
        "instance_id", "pk"
    )
    return dict(rows)


def uptimes(checks: Sequence, window: timedelta, now: datetime | None = None) -> dict:
    """``{check id: share of its probes (or pings) that succeeded}`` over the window ending
    now; None for a check without any."""
    end = now or timezone.now()
    series = series_by_instance([check.instance_id for check in checks], "probe_success")
    points = samples_engine().points_of_series(
        list(series.values()), end - window, end, UPTIME_BUCKETS
    )
    found = {}
    for check in checks:
        buckets = points.get(series.get(check.instance_id), [])
        count = sum(bucket.count for bucket in buckets)
        successes = sum(bucket.avg * bucket.count for bucket in buckets)
        found[check.pk] = successes / count if count else None
    return found


def response_times(
    checks: Sequence, window: timedelta, buckets: int, now: datetime | None = None
) -> dict:
    """``{check id: [Bucket, ...]}``: each check's probe durations (or heartbeats' run
    times) in about ``buckets`` buckets over the window ending now, oldest first."""
    end = now or timezone.now()
    series = series_by_instance([check.instance_id for check in checks], "probe_duration_seconds")
    points = samples_engine().points_of_series(list(series.values()), end - window, end, buckets)
    return {check.pk: points.get(series.get(check.instance_id), []) for check in checks}
